"""The member page's "Request M-Pesa payment": the form (full page and partial) with the account
reference prefilled, the request queued (its job not run), bad input as 422, duplicates refused,
and the live status until the payment arrives — also end to end through the Daraja sandbox."""

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.jobs import get_queue
from app.models import Contribution, MpesaStatus, MpesaTransaction, Repayment
from tests.blueprints.mpesa_admin.conftest import HX, is_page


def url(member) -> str:
    return f"/members/{member.id}/mpesa-payment"


def transactions() -> list[MpesaTransaction]:
    db.session.expire_all()
    return list(db.session.scalars(select(MpesaTransaction).order_by(MpesaTransaction.id)))


def test_member_page_has_the_button_for_staff_who_record_payments(
    officer_client, viewer_client, member
):
    assert f'hx-get="{url(member)}"' in officer_client.get(f"/members/{member.id}").text
    page = viewer_client.get(f"/members/{member.id}")
    assert f'hx-get="{url(member)}"' not in page.text
    assert f"/integrations/mpesa/transactions?member={member.member_number}" in page.text


def test_form_full_page_and_partial_for_a_member_without_loans(officer_client, member):
    partial = officer_client.get(url(member), headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<form id="payment-request"')
    assert f'value="{member.phone}"' in partial.text
    assert f'value="{member.member_number}"' in partial.text  # the account reference
    assert '<option selected value="contribution">' in partial.text
    assert 'name="contribution_kind"' in partial.text and 'name="loan_id"' not in partial.text

    page = officer_client.get(url(member))
    assert page.status_code == 200 and is_page(page)
    assert 'id="member-detail"' in page.text and 'id="payment-request"' in page.text


def test_form_for_a_loan_repayment_prefills_the_loan_account(officer_client, member, active_loan):
    partial = officer_client.get(url(member), headers=HX)
    assert '<option selected value="loan_repayment">' in partial.text
    assert f"Loan #{active_loan.id} · balance KES" in partial.text
    assert f'value="LN{active_loan.id:06d}"' in partial.text
    # Choosing a purpose re-renders the form with the matching reference.
    assert 'hx-trigger="change"' in partial.text
    chosen = officer_client.get(url(member), query_string={"payment_purpose": "contribution",
                                                           "amount": "500"}, headers=HX)  # fmt: skip
    assert f'value="{member.member_number}"' in chosen.text and 'value="500"' in chosen.text


def test_request_queues_the_push_and_shows_its_live_status(officer_client, member, active_loan):
    data = {
        "phone": member.phone,
        "amount": "1,500",
        "payment_purpose": "loan_repayment",
        "loan_id": str(active_loan.id),
        "contribution_kind": "deposit",
        "account_reference": f"LN{active_loan.id:06d}",
    }
    response = officer_client.post(url(member), data=data, headers=HX)
    assert response.status_code == 200, response.text
    (txn,) = transactions()
    assert (txn.transaction_type, txn.status, txn.amount) == ("stk_push", "queued", Decimal("1500"))
    assert (txn.member_id, txn.loan_id, txn.payment_purpose) == (member.id, active_loan.id,
                                                                 "loan_repayment")  # fmt: skip
    assert txn.contribution_kind is None and txn.requested_by_id == officer_client.user.id
    assert txn.phone_number.startswith("2547") and txn.description == "Loan payment"
    # The sending job waits in the queue; it is not run here.
    jobs = [j for j in get_queue("high").jobs if j.func_name == "app.jobs.mpesa.send_stk_push"]
    assert [j.args for j in jobs] == [(txn.id,)]

    assert response.text.lstrip().startswith(f'<div id="mpesa-live-{txn.id}"')
    assert 'hx-trigger="every 2s"' in response.text and "Queued" in response.text
    assert "Payment request of KES 1,500 queued" in response.text  # the flash, out of band

    status = officer_client.get(
        "/integrations/mpesa/transactions/live", query_string={"transaction_id": txn.id},
        headers=HX,
    )  # fmt: skip
    assert status.status_code == 200 and "being sent to M-Pesa" in status.text


def test_request_without_htmx_shows_the_member_page(officer_client, member):
    data = {"phone": member.phone, "amount": "300", "payment_purpose": "contribution",
            "contribution_kind": "share_capital", "account_reference": member.member_number}  # fmt: skip
    response = officer_client.post(url(member), data=data)
    assert response.status_code == 200 and is_page(response)
    assert 'id="member-detail"' in response.text and "mpesa-live-" in response.text
    (txn,) = transactions()
    assert txn.contribution_kind == "share_capital" and txn.loan_id is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": "0"}, "Enter from KES 1 to KES 250,000."),
        ({"amount": "10.50"}, "M-Pesa takes whole shillings only."),
        ({"phone": "12345"}, "Enter a Kenyan mobile number"),
        ({"account_reference": "DST<b>!"}, "Use letters, digits, spaces and hyphens only."),
        ({"account_reference": "A" * 13}, "Use at most 12 characters."),
        ({"payment_purpose": "loan_repayment", "loan_id": ""}, "Choose one of the member"),
        ({"contribution_kind": "shares"}, "Choose deposit or share capital."),
    ],
)
def test_bad_input_is_422_with_the_message(officer_client, member, changes, message):
    data = {"phone": member.phone, "amount": "300", "payment_purpose": "contribution",
            "contribution_kind": "deposit", "account_reference": member.member_number} | changes  # fmt: skip
    response = officer_client.post(url(member), data=data, headers=HX)
    assert response.status_code == 422
    assert message in response.text and 'id="payment-request"' in response.text
    assert transactions() == []


def test_a_duplicate_request_is_refused(officer_client, member):
    data = {"phone": member.phone, "amount": "300", "payment_purpose": "contribution",
            "contribution_kind": "deposit", "account_reference": member.member_number}  # fmt: skip
    assert officer_client.post(url(member), data=data, headers=HX).status_code == 200
    again = officer_client.post(url(member), data=data, headers=HX)
    assert again.status_code == 422
    assert "wait before sending the same request again" in again.text
    assert "Same request sent moments ago." in again.text
    assert len(transactions()) == 1


def test_roles(viewer_client, accountant_client, member):
    for browser in (viewer_client, accountant_client):
        assert browser.get(url(member)).status_code == 403
        assert browser.post(url(member), data={"amount": "300"}).status_code == 403
    assert transactions() == []


def test_end_to_end_through_the_sandbox(
    officer_client, member, active_loan, sandbox_settings, run_jobs
):
    """The push goes to the Daraja sandbox, the member pays, the sandbox's callback reaches the
    app over HTTP, the job credits the loan, and the live status shows the receipt (286)."""
    data = {"phone": member.phone, "amount": "2000", "payment_purpose": "loan_repayment",
            "loan_id": str(active_loan.id), "account_reference": f"LN{active_loan.id:06d}"}  # fmt: skip
    response = officer_client.post(url(member), data=data, headers=HX)
    assert response.status_code == 200, response.text
    txn_id = int(re.search(r'id="mpesa-live-(\d+)"', response.text).group(1))
    live = {"transaction_id": txn_id}

    run_jobs()  # sends the push
    sent = officer_client.get("/integrations/mpesa/transactions/live", query_string=live,
                              headers=HX)  # fmt: skip
    assert sent.status_code == 200 and "waiting for them to enter their PIN" in sent.text

    deliveries = sandbox_settings.flush()  # the member pays; the callback is posted to us
    assert [d["status_code"] for d in deliveries] == [200]
    run_jobs()  # processes the callback
    paid = officer_client.get("/integrations/mpesa/transactions/live", query_string=live,
                              headers=HX)  # fmt: skip
    assert paid.status_code == 286 and "Paid: receipt" in paid.text
    txn = db.session.get(MpesaTransaction, txn_id)
    assert txn.status == MpesaStatus.COMPLETED
    repayment = db.session.get(Repayment, txn.repayment_id)
    assert repayment.amount == Decimal("2000.00") and repayment.loan_id == active_loan.id
    assert txn.mpesa_receipt_number in paid.text
    assert db.session.scalars(select(Contribution)).all() == []
