"""The loan page's "Disburse via M-Pesa" (loan officers and administrators): the confirmation with
amount, phone and member name, the request (once), its live status, the reason of a failed
attempt and the wait for a second approval — also end to end through the Daraja sandbox."""

from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.jobs import get_queue
from app.models import Loan, LoanStatus, Member, MpesaStatus, MpesaTransaction
from app.services.mpesa import disbursements
from app.services.validation import normalize_phone
from tests import factories
from tests.blueprints.mpesa_admin.conftest import HX, XSS, is_page
from tests.factories import SYSTEM


@pytest.fixture
def approved(member, product):
    return factories.approved_loan(member, product, Decimal("12000"))


def url(loan) -> str:
    return f"/loans/{loan.id}/mpesa-disbursement"


def disbursements_of(loan) -> list[MpesaTransaction]:
    db.session.expire_all()
    return list(db.session.scalars(select(MpesaTransaction).filter_by(loan_id=loan.id)))


def test_approved_loan_page_offers_it_to_loan_staff(officer_client, admin_client, approved):
    for browser in (officer_client, admin_client):
        page = browser.get(f"/loans/{approved.id}")
        assert 'id="mpesa-disbursement"' in page.text and f'hx-get="{url(approved)}"' in page.text
        assert "Disburse via M-Pesa" in page.text


@pytest.mark.parametrize("role", ["accountant", "viewer"])
def test_other_roles_neither_see_nor_use_it(login, role, approved):
    browser = login(role)
    page = browser.get(f"/loans/{approved.id}")
    assert f'hx-get="{url(approved)}"' not in page.text
    assert browser.get(url(approved)).status_code == 403
    assert browser.post(url(approved)).status_code == 403
    assert disbursements_of(approved) == []


def test_confirmation_full_page_and_partial(officer_client, approved, member):
    partial = officer_client.get(url(approved), headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<div id="mpesa-disbursement"')
    assert "KES 12,000.00" in partial.text and member.full_name in partial.text
    assert normalize_phone(member.phone) in partial.text and "Confirm and send" in partial.text
    assert f'hx-post="{url(approved)}"' in partial.text
    assert disbursements_of(approved) == []  # nothing happens before the confirmation

    page = officer_client.get(url(approved))
    assert page.status_code == 200 and is_page(page)
    assert 'id="loan-detail"' in page.text and "Confirm and send" in page.text


def test_confirmation_says_when_a_second_approval_is_needed(
    officer_client, approved, save_settings
):
    save_settings(b2c_second_approval_above="10000")
    partial = officer_client.get(url(approved), headers=HX)
    assert "another staff member must approve it" in partial.text
    assert "Ask for approval" in partial.text


def test_a_phone_that_cannot_receive_mpesa_is_said_before_confirming(
    officer_client, member, approved
):
    # A record imported from the previous system, before phone numbers were checked.
    db.session.execute(update(Member).where(Member.id == member.id).values(phone="0202345678"))
    db.session.commit()
    loan = approved
    partial = officer_client.get(url(loan), headers=HX)
    assert "phone number cannot receive M-Pesa" in partial.text
    assert "Confirm and send" not in partial.text
    response = officer_client.post(url(loan), headers=HX)
    assert response.status_code == 422 and "cannot receive M-Pesa" in response.text
    assert disbursements_of(loan) == []


def test_request_queues_it_once_and_shows_the_live_status(officer_client, login, approved):
    response = officer_client.post(url(approved), headers=HX)
    assert response.status_code == 200, response.text
    (txn,) = disbursements_of(approved)
    assert (txn.transaction_type, txn.status, txn.amount) == ("b2c", "queued", Decimal("12000"))
    assert txn.requested_by_id == officer_client.user.id
    assert f'id="mpesa-live-{txn.id}"' in response.text and 'hx-trigger="every 2s"' in response.text
    assert "Disbursement of KES 12,000.00" in response.text and "queued" in response.text
    jobs = [j.args for j in get_queue("high").jobs if j.func_name == "app.jobs.mpesa.send_b2c"]
    assert jobs == [(txn.id,)]

    # A second click, or a second officer, is refused: it is paid only once.
    for browser in (officer_client, login("loan_officer")):
        again = browser.post(url(approved), headers=HX)
        assert again.status_code == 409
        assert "already has an M-Pesa disbursement (queued); it is paid only once" in again.text
    assert len(disbursements_of(approved)) == 1

    page = officer_client.get(f"/loans/{approved.id}")
    assert f'id="mpesa-live-{txn.id}"' in page.text and "Disburse via M-Pesa</a>" not in page.text
    # A confirmation asked for from a stale page shows the disbursement under way instead.
    stale = officer_client.get(url(approved), headers=HX)
    assert f'id="mpesa-live-{txn.id}"' in stale.text and "Confirm and send" not in stale.text


def test_only_an_approved_loan(officer_client, member, product):
    pending = factories.pending_loan(member, product)
    for method in ("get", "post"):
        response = getattr(officer_client, method)(url(pending), headers=HX)
        assert response.status_code == 409
        assert "only an approved loan is disbursed" in response.text


def test_a_failed_disbursement_shows_its_reason_and_may_be_tried_again(
    officer_client, viewer_client, approved, save_settings
):
    save_settings(b2c_second_approval_above="5000")
    txn = disbursements.request_disbursement(approved.id, SYSTEM)
    disbursements.reject(txn.id, SYSTEM, f"Member asked for cash {XSS}")
    page = officer_client.get(f"/loans/{approved.id}")
    assert (
        "The last M-Pesa disbursement" in page.text and "failed: Refused: Member asked" in page.text
    )
    assert XSS not in page.text and "Try again via M-Pesa" in page.text
    viewer_page = viewer_client.get(f"/loans/{approved.id}")
    assert "failed: Refused: Member asked" in viewer_page.text
    assert "Try again via M-Pesa" not in viewer_page.text


def test_awaiting_approval_says_who_asked(officer_client, viewer_client, approved, save_settings):
    save_settings(b2c_second_approval_above="5000")
    response = officer_client.post(url(approved), headers=HX)
    assert response.status_code == 200
    assert "is waiting for a second approval" in response.text
    (txn,) = disbursements_of(approved)
    assert txn.status == MpesaStatus.AWAITING_APPROVAL
    for browser in (officer_client, viewer_client):
        page = browser.get(f"/loans/{approved.id}")
        assert "Waiting for a second approval: asked for by" in page.text
        assert officer_client.user.email in page.text


def test_end_to_end_through_the_sandbox(officer_client, approved, sandbox_settings, run_jobs):
    """Confirmed, sent to the Daraja sandbox, paid; its result callback reaches the app over HTTP
    and the loan becomes active with the receipt; the live status stops polling (286)."""
    response = officer_client.post(url(approved), headers=HX)
    assert response.status_code == 200, response.text
    (txn,) = disbursements_of(approved)
    run_jobs()  # sends the B2C request
    assert disbursements_of(approved)[0].status == MpesaStatus.PENDING
    deliveries = sandbox_settings.flush()
    assert [d["status_code"] for d in deliveries] == [200]
    run_jobs()  # processes the result
    live = officer_client.get("/integrations/mpesa/transactions/live",
                              query_string={"transaction_id": txn.id}, headers=HX)  # fmt: skip
    assert live.status_code == 286 and "Disbursed" in live.text
    db.session.expire_all()
    loan = db.session.get(Loan, approved.id)
    done = db.session.get(MpesaTransaction, txn.id)
    assert loan.status == LoanStatus.ACTIVE and loan.disbursement_method == "mpesa"
    assert loan.disbursement_reference == done.mpesa_receipt_number
    assert done.mpesa_receipt_number in live.text
