"""The loans pages: list and filters, application with schedule preview, detail, decisions,
manual disbursement and repayments; each page as a full page and as its htmx partial."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from app import clock
from app.extensions import db as _db
from app.models import Loan, LoanStatus, Repayment, Role
from app.services import loans, repayments
from tests import factories
from tests.factories import SYSTEM

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"


def is_page(response) -> bool:
    return "<html" in response.text


@pytest.fixture
def accountant_client(login):
    return login(Role.ACCOUNTANT)


@pytest.fixture
def pending(member, product):
    return factories.pending_loan(member, product)


@pytest.fixture
def approved(member, product):
    return factories.approved_loan(member, product)


def loan_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/loans/(\d+)"', html)]


def reload(loan_id: int) -> Loan:
    _db.session.expire_all()
    return _db.session.get(Loan, loan_id)


# --- list -------------------------------------------------------------------------------------


def test_index_full_page_and_partial(viewer_client, pending):
    page = viewer_client.get("/loans/")
    assert page.status_code == 200 and is_page(page)
    assert 'id="loans-results"' in page.text and 'id="loan-filters"' in page.text
    assert 'hx-trigger="change"' in page.text and 'hx-push-url="true"' in page.text
    assert pending.member_number in page.text and "HX-Request" in page.headers["Vary"]

    partial = viewer_client.get("/loans/", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<div id="loans-results"')
    assert f"/members/{pending.member_id}" in partial.text
    assert f"/loans/{pending.id}" in partial.text
    assert pending.product.name in partial.text and "12,000.00" in partial.text


def test_index_filters(viewer_client, member, product):
    other_product = factories.product()
    old = factories.pending_loan(member, product, applied_on=date(2025, 3, 1))
    new = factories.pending_loan(member, other_product, applied_on=date(2026, 2, 1))
    approved = factories.approved_loan(member, product)

    def ids(**params):
        response = viewer_client.get("/loans/", query_string=params, headers=HX)
        assert response.status_code == 200, response.text
        return set(loan_links(response.text))

    assert ids() == {old.id, new.id, approved.id}
    assert ids(status="approved") == {approved.id}
    assert ids(status="pending") == {old.id, new.id}
    assert ids(product_id=other_product.id) == {new.id}
    assert ids(date_from="2026-01-01") == {new.id, approved.id}
    assert ids(date_from="2025-01-01", date_to="2025-12-31") == {old.id}
    assert ids(status="declined") == set()


def test_index_pages_keep_the_filters(viewer_client, member, product):
    for _ in range(12):
        factories.pending_loan(member, product)
    response = viewer_client.get("/loans/?status=pending&per_page=10", headers=HX)
    assert "Page 1 of 2" in response.text
    assert "/loans/?page=2&amp;status=pending&amp;per_page=10" in response.text
    second = viewer_client.get("/loans/?status=pending&per_page=10&page=2", headers=HX)
    assert "Page 2 of 2" in second.text and len(loan_links(second.text)) == 2


@pytest.mark.parametrize(
    "query, message",
    [
        ("date_from=notadate", "Enter a date as YYYY-MM-DD."),
        ("date_to=2026-13-45", "Enter a date as YYYY-MM-DD."),
        ("status=bogus", "Choose one of the listed statuses."),
        ("product_id=abc", "Choose one of the listed products."),
        ("product_id=99999999999999999999999", "Choose one of the listed products."),
        ("per_page=7", "Choose 10, 25, 50 or 100 per page."),
        ("date_from=2026-02-01&date_to=2026-01-01", "The end date is before the start date."),
        ("date_from=%00", "Enter a date as YYYY-MM-DD."),
    ],
)
def test_bad_filters_are_a_422_with_the_reason(viewer_client, pending, query, message):
    for headers in ({}, HX):
        response = viewer_client.get(f"/loans/?{query}", headers=headers)
        assert response.status_code == 422
        assert message in response.text
        assert f'href="/loans/{pending.id}"' not in response.text


@pytest.mark.parametrize("page", ["abc", "-3", "0", "99999999999999999999999"])
def test_odd_page_numbers_are_harmless(viewer_client, pending, page):
    response = viewer_client.get(f"/loans/?page={page}", headers=HX)
    assert response.status_code == 200


def test_list_runs_the_same_number_of_queries_whatever_the_page_size(viewer_client, product):
    members = [factories.member() for _ in range(5)]
    for n in range(55):
        factories.pending_loan(members[n % 5], product)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries(per_page: int) -> int:
        statements.clear()
        event.listen(_db.engine, "before_cursor_execute", count)
        try:
            response = viewer_client.get(f"/loans/?per_page={per_page}", headers=HX)
        finally:
            event.remove(_db.engine, "before_cursor_execute", count)
        assert response.status_code == 200
        assert len(loan_links(response.text)) == per_page
        return len(statements)

    assert queries(10) == queries(50)


# --- application ------------------------------------------------------------------------------


def test_new_full_page_and_partial_prefilled_with_the_member(officer_client, member, product):
    page = officer_client.get(f"/loans/new?member_id={member.id}")
    assert page.status_code == 200 and is_page(page)
    assert member.full_name in page.text and member.member_number in page.text
    assert f'value="{member.id}"' in page.text
    assert 'id="schedule-preview"' in page.text and product.name in page.text

    partial = officer_client.get(f"/loans/new?member_id={member.id}", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<form id="loan-form"')
    assert member.member_number in partial.text


def test_new_without_a_member_asks_for_a_member_number(officer_client, product):
    page = officer_client.get("/loans/new")
    assert page.status_code == 200 and 'name="member_number"' in page.text
    assert officer_client.get("/loans/new?member_id=999999").status_code == 404
    assert officer_client.get("/loans/new?member_id=abc").status_code == 200


def test_preview_gives_the_schedule(officer_client, product):
    data = {"product_id": product.id, "amount": "12000", "term_months": "6"}
    response = officer_client.post("/loans/preview", data=data, headers=HX)
    assert response.status_code == 200 and not is_page(response)
    assert response.text.lstrip().startswith('<section id="schedule-preview"')
    expected = loans.preview_schedule(product.id, "12000", 6)
    assert f"KES {expected.monthly_payment:,.2f}" in response.text
    assert f"KES {expected.total_interest:,.2f}" in response.text
    assert f"KES {expected.total_payable:,.2f}" in response.text
    assert response.text.count("<tr>") == 1 + 6  # header and six instalments

    page = officer_client.post("/loans/preview", data=data)
    assert page.status_code == 200 and is_page(page) and 'id="loan-form"' in page.text


def test_preview_of_bad_terms_is_a_422_with_the_messages(officer_client, product):
    data = {"product_id": product.id, "amount": "500", "term_months": "99"}
    response = officer_client.post("/loans/preview", data=data, headers=HX)
    assert response.status_code == 422 and not is_page(response)
    assert 'id="schedule-preview"' in response.text
    assert "lends from KES 1,000.00 to KES 1,000,000.00" in response.text
    assert "runs from 1 to 60 months" in response.text

    garbage = {"product_id": "x", "amount": "1e999999", "term_months": "\x00"}
    response = officer_client.post("/loans/preview", data=garbage, headers=HX)
    assert response.status_code == 422 and "Choose a loan product." in response.text


def test_submit_creates_a_pending_loan_and_opens_it(officer_client, member, product):
    data = {
        "member_id": member.id,
        "product_id": product.id,
        "amount": "15,000",
        "term_months": "12",
        "purpose": "Dairy cow",
    }
    response = officer_client.post("/loans/new", data=data)
    loan = _db.session.query(Loan).one()
    assert response.status_code == 303
    assert response.headers["Location"] == f"/loans/{loan.id}"
    assert loan.status == LoanStatus.PENDING and loan.amount == Decimal("15000.00")
    assert loan.member_id == member.id and loan.purpose == "Dairy cow"
    detail = officer_client.get(response.headers["Location"])
    assert f"Loan application {loan.id} for {member.full_name}" in detail.text


def test_submit_through_htmx_by_member_number(officer_client, member, product):
    data = {
        "member_number": member.member_number.lower(),
        "product_id": product.id,
        "amount": "5000",
        "term_months": "3",
        "purpose": "Stock",
    }
    response = officer_client.post("/loans/new", data=data, headers=HX)
    loan = _db.session.query(Loan).one()
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/loans/{loan.id}"


def test_invalid_application_is_the_form_again_with_422(officer_client, member, product):
    data = {
        "member_id": member.id,
        "product_id": product.id,
        "amount": "abc",
        "term_months": "6",
        "purpose": "",
    }
    response = officer_client.post("/loans/new", data=data, headers=HX)
    assert response.status_code == 422 and not is_page(response)
    assert response.text.lstrip().startswith('<form id="loan-form"')
    assert "Enter an amount in shillings" in response.text
    assert "Say what the loan is for." in response.text
    assert member.full_name in response.text  # still the same member
    assert _db.session.query(Loan).count() == 0

    page = officer_client.post("/loans/new", data=data)
    assert page.status_code == 422 and is_page(page)


def test_application_for_an_unknown_or_inactive_member(officer_client, product):
    data = {
        "member_number": "DST999999",
        "product_id": product.id,
        "amount": "5000",
        "term_months": "3",
        "purpose": "Stock",
    }
    response = officer_client.post("/loans/new", data=data, headers=HX)
    assert response.status_code == 422
    assert "Enter the number of an existing member" in response.text

    dormant = factories.member(status="dormant")
    data = dict(data, member_number="", member_id=dormant.id)
    response = officer_client.post("/loans/new", data=data, headers=HX)
    assert response.status_code == 422
    assert "only active members may borrow" in response.text


# --- detail -----------------------------------------------------------------------------------


def test_detail_of_a_pending_loan_full_and_partial(officer_client, pending):
    page = officer_client.get(f"/loans/{pending.id}")
    assert page.status_code == 200 and is_page(page)
    for text in (
        "12,000.00",
        "School fees",
        "Projected schedule",
        'id="loan-actions"',
        "hx-confirm",
        "Approve",
        "Decline",
        pending.member_number,
    ):
        assert text in page.text

    partial = officer_client.get(f"/loans/{pending.id}", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<section id="loan-detail"')
    assert "Projected schedule" in partial.text


def test_detail_of_an_active_loan_shows_the_stored_schedule_and_repayments(
    officer_client, active_loan
):
    repayments.record_repayment(
        active_loan.id, Decimal("1000"), "cash", None, SYSTEM, date(2026, 1, 20)
    )
    response = officer_client.get(f"/loans/{active_loan.id}", headers=HX)
    assert response.status_code == 200
    assert "Projected schedule" not in response.text
    assert "05 Feb 2026" in response.text  # the first instalment, a month after disbursement
    assert "badge-partial" in response.text and "1,000.00" in response.text
    assert "Record a repayment" in response.text
    assert "/approve" not in response.text


def test_viewer_sees_no_actions(viewer_client, pending):
    response = viewer_client.get(f"/loans/{pending.id}", headers=HX)
    assert response.status_code == 200
    assert 'id="loan-actions"' in response.text
    assert "/approve" not in response.text and "/decline" not in response.text


def test_unknown_loan_is_a_404(viewer_client):
    assert viewer_client.get("/loans/999999").status_code == 404


# --- decisions --------------------------------------------------------------------------------


def test_officer_approves_through_htmx(officer_client, pending):
    response = officer_client.post(f"/loans/{pending.id}/approve", headers=HX)
    assert response.status_code == 200 and not is_page(response)
    assert response.headers["HX-Retarget"] == "#loan-detail"
    assert response.text.lstrip().startswith('<section id="loan-detail"')
    assert f"Loan {pending.id} approved." in response.text
    loan = reload(pending.id)
    assert loan.status == LoanStatus.APPROVED and loan.decided_by_id == officer_client.user.id
    assert officer_client.user.email in officer_client.get(f"/loans/{pending.id}").text


def test_officer_approves_with_a_plain_post(officer_client, pending):
    response = officer_client.post(f"/loans/{pending.id}/approve")
    assert response.status_code == 303 and response.headers["Location"] == f"/loans/{pending.id}"
    assert reload(pending.id).status == LoanStatus.APPROVED


def test_officer_declines_with_a_reason(officer_client, pending):
    response = officer_client.post(
        f"/loans/{pending.id}/decline", data={"reason": "No guarantor"}, headers=HX
    )
    assert response.status_code == 200
    assert "No guarantor" in response.text and "badge-declined" in response.text
    loan = reload(pending.id)
    assert loan.status == LoanStatus.DECLINED and loan.decision_reason == "No guarantor"


def test_decline_without_a_reason_is_a_422(officer_client, pending):
    response = officer_client.post(
        f"/loans/{pending.id}/decline", data={"reason": "  "}, headers=HX
    )
    assert response.status_code == 422 and not is_page(response)
    assert response.text.lstrip().startswith('<section id="loan-actions"')
    assert "Give the reason for declining." in response.text
    page = officer_client.post(f"/loans/{pending.id}/decline", data={"reason": ""})
    assert page.status_code == 422 and is_page(page)
    assert reload(pending.id).status == LoanStatus.PENDING


def test_approving_a_declined_loan_is_a_409_with_the_reason(officer_client, pending):
    loans.decline(pending.id, "Too high", SYSTEM)
    for headers in ({}, HX):
        response = officer_client.post(f"/loans/{pending.id}/approve", headers=headers)
        assert response.status_code == 409
        assert f"Loan {pending.id} is declined; it cannot be approved" in response.text
    assert reload(pending.id).status == LoanStatus.DECLINED


# --- manual disbursement ----------------------------------------------------------------------


def disbursement(reference="TRF123", on=None):
    return {
        "method": "bank",
        "reference": reference,
        "disbursed_on": (on or clock.today()).isoformat(),
    }


def test_admin_records_a_manual_disbursement(admin_client, approved):
    page = admin_client.get(f"/loans/{approved.id}")
    assert "Record a manual disbursement" in page.text
    response = admin_client.post(f"/loans/{approved.id}/disburse", data=disbursement(), headers=HX)
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#loan-detail"
    loan = reload(approved.id)
    assert loan.status == LoanStatus.ACTIVE and loan.disbursement_reference == "TRF123"
    assert len(loan.installments) == 6 and "TRF123" in response.text


def test_disbursing_twice_is_a_409(admin_client, approved):
    assert (
        admin_client.post(f"/loans/{approved.id}/disburse", data=disbursement()).status_code == 303
    )
    response = admin_client.post(
        f"/loans/{approved.id}/disburse", data=disbursement("TRF999"), headers=HX
    )
    assert response.status_code == 409
    assert "it cannot be disbursed" in response.text


def test_invalid_disbursement_is_a_422(admin_client, approved):
    data = {
        "method": "checkoff",
        "reference": "",
        "disbursed_on": (clock.today() + timedelta(days=3)).isoformat(),
    }
    response = admin_client.post(f"/loans/{approved.id}/disburse", data=data, headers=HX)
    assert response.status_code == 422 and 'id="loan-actions"' in response.text
    assert "Choose M-Pesa, cash or bank." in response.text
    assert "Enter the disbursement&#39;s reference" in response.text
    assert "cannot be in the future" in response.text
    response = admin_client.post(
        f"/loans/{approved.id}/disburse", data=disbursement(on=None) | {"disbursed_on": "x"}
    )
    assert response.status_code == 422 and "Enter a date as YYYY-MM-DD." in response.text
    assert reload(approved.id).status == LoanStatus.APPROVED


def test_loan_officer_may_not_record_a_manual_disbursement(officer_client, approved):
    assert "Record a manual disbursement" not in officer_client.get(f"/loans/{approved.id}").text
    response = officer_client.post(f"/loans/{approved.id}/disburse", data=disbursement())
    assert response.status_code == 403
    assert reload(approved.id).status == LoanStatus.APPROVED


# --- repayments -------------------------------------------------------------------------------


def test_repayment_form_full_page_and_partial(officer_client, active_loan):
    page = officer_client.get(f"/loans/{active_loan.id}/repayments/new")
    assert page.status_code == 200 and is_page(page)
    assert 'id="loan-detail"' in page.text and 'id="repayment-form"' in page.text

    partial = officer_client.get(f"/loans/{active_loan.id}/repayments/new", headers=HX)
    assert partial.status_code == 200 and not is_page(partial)
    assert partial.text.lstrip().startswith('<form id="repayment-form"')
    assert f"KES {active_loan.balance:,.2f}" in partial.text


def test_record_a_repayment_through_htmx(officer_client, active_loan):
    data = {"amount": "2,500", "method": "mpesa", "reference": "sgh12abc", "paid_on": "2026-02-01"}
    response = officer_client.post(f"/loans/{active_loan.id}/repayments/new", data=data, headers=HX)
    assert response.status_code == 200, response.text
    assert response.headers["HX-Retarget"] == "#loan-detail"
    assert "Repayment of KES 2,500.00 recorded" in response.text and "SGH12ABC" in response.text
    repayment = _db.session.query(Repayment).one()
    assert (
        repayment.amount == Decimal("2500.00")
        and repayment.recorded_by_id == officer_client.user.id
    )


def test_record_a_repayment_with_a_plain_post(officer_client, active_loan):
    data = {"amount": "1000", "method": "cash", "reference": "", "paid_on": ""}
    response = officer_client.post(f"/loans/{active_loan.id}/repayments/new", data=data)
    assert (
        response.status_code == 303 and response.headers["Location"] == f"/loans/{active_loan.id}"
    )
    assert reload(active_loan.id).paid_amount == Decimal("1000.00")


def test_repayment_over_the_balance_is_a_422_naming_the_balance(officer_client, active_loan):
    balance = active_loan.balance
    data = {"amount": str(balance + 1), "method": "cash", "paid_on": "2026-02-01"}
    response = officer_client.post(f"/loans/{active_loan.id}/repayments/new", data=data, headers=HX)
    assert response.status_code == 422 and not is_page(response)
    assert response.text.lstrip().startswith('<form id="repayment-form"')
    assert f"more than the loan&#39;s balance of KES {balance:,.2f}" in response.text
    assert _db.session.query(Repayment).count() == 0

    page = officer_client.post(f"/loans/{active_loan.id}/repayments/new", data=data)
    assert page.status_code == 422 and is_page(page) and f"KES {balance:,.2f}" in page.text


def test_invalid_repayment_fields_are_a_422(officer_client, active_loan):
    data = {"amount": "-5", "method": "barter", "reference": "x" * 41, "paid_on": "soon"}
    response = officer_client.post(f"/loans/{active_loan.id}/repayments/new", data=data, headers=HX)
    assert response.status_code == 422
    for message in (
        "Enter an amount greater than zero.",
        "Choose M-Pesa, cash, bank or check-off.",
        "Use at most 40 characters.",
        "Enter a date as YYYY-MM-DD.",
    ):
        assert message in response.text


def test_repayment_on_a_pending_loan_is_a_409(officer_client, pending):
    data = {"amount": "100", "method": "cash"}
    response = officer_client.post(f"/loans/{pending.id}/repayments/new", data=data, headers=HX)
    assert response.status_code == 409
    assert "repayments are taken only on active or defaulted loans" in response.text
    form = officer_client.get(f"/loans/{pending.id}/repayments/new", headers=HX)
    assert form.status_code == 200 and "only on active or defaulted loans" in form.text


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ACCOUNTANT])
def test_read_only_roles_are_refused_every_change(login, member, product, role):
    pending = factories.pending_loan(member, product)
    approved = factories.approved_loan(member, product)
    active = factories.active_loan(member, product)
    client = login(role)
    assert client.get(f"/loans/{pending.id}").status_code == 200
    refused = [
        client.get("/loans/new"),
        client.get(f"/loans/new?member_id={member.id}", headers=HX),
        client.post(
            "/loans/new",
            data={
                "member_id": member.id,
                "product_id": product.id,
                "amount": "5000",
                "term_months": "3",
                "purpose": "x",
            },
        ),
        client.post(
            "/loans/preview", data={"product_id": product.id, "amount": "5000", "term_months": "3"}
        ),
        client.post(f"/loans/{pending.id}/approve", headers=HX),
        client.post(f"/loans/{pending.id}/decline", data={"reason": "no"}),
        client.post(f"/loans/{approved.id}/disburse", data=disbursement()),
        client.get(f"/loans/{active.id}/repayments/new"),
        client.post(f"/loans/{active.id}/repayments/new", data={"amount": "100", "method": "cash"}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert reload(pending.id).status == LoanStatus.PENDING
    assert reload(approved.id).status == LoanStatus.APPROVED
    assert _db.session.query(Repayment).count() == 0
    assert _db.session.query(Loan).count() == 3


def test_signed_out_visitors_are_sent_to_sign_in(client, pending):
    response = client.get(f"/loans/{pending.id}")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert (
        client.post(f"/loans/{pending.id}/approve", headers=HX)
        .headers["HX-Redirect"]
        .startswith("/auth/login")
    )
    assert reload(pending.id).status == LoanStatus.PENDING


# --- escaping ---------------------------------------------------------------------------------


def test_a_hostile_member_name_is_escaped_on_list_and_detail(officer_client, product):
    hostile = factories.member(first_name=XSS, last_name=XSS)
    loan = factories.pending_loan(hostile, product)
    pages = [
        officer_client.get("/loans/"),
        officer_client.get("/loans/", headers=HX),
        officer_client.get(f"/loans/{loan.id}"),
        officer_client.get(f"/loans/{loan.id}", headers=HX),
        officer_client.get(f"/loans/new?member_id={hostile.id}"),
    ]
    for response in pages:
        assert response.status_code == 200
        assert XSS not in response.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


# --- CSRF -------------------------------------------------------------------------------------


@pytest.fixture
def csrf_on(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


def test_every_loan_form_carries_the_csrf_token(
    officer_client, admin_client, member, product, csrf_on
):
    pending = factories.pending_loan(member, product)
    approved = factories.approved_loan(member, product)
    active = factories.active_loan(member, product)
    pages = [
        officer_client.get(f"/loans/new?member_id={member.id}"),
        officer_client.get(f"/loans/{pending.id}"),
        admin_client.get(f"/loans/{approved.id}"),
        officer_client.get(f"/loans/{active.id}/repayments/new"),
    ]
    for page in pages:
        assert page.status_code == 200
        posting_forms = page.text.count('method="post"') - 1  # less the sign-out form
        assert posting_forms >= 1
        assert page.text.count('name="csrf_token"') == posting_forms + 1

    refused = officer_client.post(f"/loans/{pending.id}/approve")
    assert refused.status_code == 400
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', pages[1].text).group(1)
    accepted = officer_client.post(f"/loans/{pending.id}/approve", data={"csrf_token": token})
    assert accepted.status_code == 303
    assert reload(pending.id).status == LoanStatus.APPROVED
