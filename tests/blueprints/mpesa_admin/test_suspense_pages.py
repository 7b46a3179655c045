"""Integrations > M-Pesa > Suspense queue: the list (full page and htmx partial, filters), crediting
an item onto a loan or a member after a confirmation, dismissing it with a note, 422 for a bad
choice; admin and accountant only."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Contribution, Repayment, Role, SuspenseItem, SuspenseStatus
from app.services.mpesa import suspense
from tests.services.mpesa.statement_data import nairobi

BASE = "/integrations/mpesa/suspense"
HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"


def is_page(response) -> bool:
    return "<html" in response.text


def held(receipt="RCS0000001", amount="1000", source="c2b", reason=None) -> SuspenseItem:
    item = suspense.hold(
        source,
        Decimal(amount),
        reason or "Account DST999999 names no member",
        receipt=receipt,
        phone_number="2547****5678",
        account_reference="DST999999",
        paid_at=nairobi(2026, 3, 3, 9, 30),
    )
    db.session.commit()
    return item


def test_queue_full_page_and_partial(accountant_client):
    item = held(reason=XSS)
    held("RCS0000002", source="statement")
    page = accountant_client.get(BASE)
    assert page.status_code == 200 and is_page(page)
    assert "RCS0000001" in page.text and "2 open, KES 2,000.00" in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert f'id="suspense-item-{item.id}"' in page.text
    partial = accountant_client.get(BASE, query_string={"source": "statement"}, headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert "HX-Request" in partial.headers["Vary"]
    assert "RCS0000002" in partial.text and "RCS0000001" not in partial.text
    resolved = accountant_client.get(BASE, query_string={"status": "resolved"}, headers=HX)
    assert "No resolved items." in resolved.text


def test_credit_onto_a_loan_after_confirmation(accountant_client, active_loan):
    item = held()
    form = accountant_client.get(BASE + "/resolve", query_string={"item_id": item.id}, headers=HX)
    assert form.status_code == 200 and 'id="suspense-form"' in form.text and not is_page(form)
    full_form = accountant_client.get(BASE + "/resolve", query_string={"item_id": item.id})
    assert is_page(full_form) and 'id="suspense-form"' in full_form.text

    choice = {"item_id": item.id, "loan_id": str(active_loan.id), "member": "", "note": "Phoned"}
    confirm = accountant_client.post(BASE + "/resolve", data=choice, headers=HX)
    assert confirm.status_code == 200
    assert f"Credit KES 1,000.00 as a repayment on loan {active_loan.id}" in confirm.text
    assert 'name="confirmed" value="yes"' in confirm.text
    assert db.session.scalar(select(func.count(Repayment.id))) == 0  # nothing yet

    done = accountant_client.post(BASE + "/resolve", data=choice | {"confirmed": "yes"}, headers=HX)
    assert done.status_code == 200
    assert done.headers["HX-Retarget"] == "#suspense" and done.headers["HX-Reswap"] == "outerHTML"
    assert '<section id="suspense"' in done.text and "resolved" in done.text
    repayment = db.session.scalars(select(Repayment)).one()
    assert (
        repayment.reference == "RCS0000001"
        and repayment.recorded_by_id == accountant_client.user.id
    )
    db.session.expire_all()
    assert db.session.get(SuspenseItem, item.id).status == SuspenseStatus.RESOLVED

    twice = accountant_client.post(
        BASE + "/resolve", data=choice | {"confirmed": "yes"}, headers=HX
    )
    assert twice.status_code == 409 and "resolved already" in twice.text
    assert db.session.scalar(select(func.count(Repayment.id))) == 1


def test_credit_onto_a_member_by_member_number(accountant_client, member):
    item = held(amount="250")
    choice = {"item_id": item.id, "member": member.member_number.lower(), "confirmed": "yes"}
    done = accountant_client.post(BASE + "/resolve", data=choice)
    assert done.status_code == 200 and is_page(done)
    contribution = db.session.scalars(select(Contribution)).one()
    assert contribution.member_id == member.id and contribution.amount == Decimal("250.00")


@pytest.mark.parametrize(
    "choice, message",
    [
        ({}, "Give either a loan number or a member number."),
        ({"loan_id": "12a"}, "Enter the loan&#39;s number"),
        ({"loan_id": "999999"}, "There is no loan 999999."),
        ({"member": "DST999999"}, "There is no member DST999999."),
        ({"loan_id": "1", "member": "DST000001"}, "Give either a loan number or a member number."),
    ],
)
def test_a_bad_choice_is_a_422_with_the_form(accountant_client, choice, message):
    item = held()
    for confirmed in ("", "yes"):
        response = accountant_client.post(
            BASE + "/resolve",
            data={"item_id": item.id, "confirmed": confirmed} | choice,
            headers=HX,
        )
        assert response.status_code == 422 and 'id="suspense-form"' in response.text
        assert message in response.text
    assert db.session.get(SuspenseItem, item.id).status == SuspenseStatus.OPEN


def test_dismiss_with_a_note(accountant_client):
    item = held()
    form = accountant_client.get(BASE + "/dismiss", query_string={"item_id": item.id}, headers=HX)
    assert form.status_code == 200 and "Why is it dismissed?" in form.text and not is_page(form)
    full_form = accountant_client.get(BASE + "/dismiss", query_string={"item_id": item.id})
    assert is_page(full_form) and "Why is it dismissed?" in full_form.text
    no_note = accountant_client.post(BASE + "/dismiss", data={"item_id": item.id}, headers=HX)
    assert no_note.status_code == 422 and "Say why" in no_note.text
    done = accountant_client.post(
        BASE + "/dismiss", data={"item_id": item.id, "note": "Refunded"}, headers=HX
    )
    assert done.status_code == 200 and done.headers["HX-Retarget"] == "#suspense"
    db.session.expire_all()
    assert db.session.get(SuspenseItem, item.id).status == SuspenseStatus.DISMISSED
    closed = accountant_client.get(BASE + "/resolve", query_string={"item_id": item.id}, headers=HX)
    assert closed.status_code == 409
    missing = accountant_client.get(BASE + "/dismiss", query_string={"item_id": "x"}, headers=HX)
    assert missing.status_code == 404


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.VIEWER])
def test_officers_and_viewers_are_refused(login, role):
    item = held()
    browser = login(role)
    for method, path in [
        ("GET", ""),
        ("GET", "/resolve"),
        ("POST", "/resolve"),
        ("GET", "/dismiss"),
        ("POST", "/dismiss"),
    ]:
        response = browser.open(
            BASE + path, method=method, query_string={"item_id": item.id}, headers=HX
        )
        assert response.status_code == 403, (method, path)
    assert db.session.get(SuspenseItem, item.id).status == SuspenseStatus.OPEN


def test_admin_may_allocate(admin_client):
    held()
    assert admin_client.get(BASE).status_code == 200
