"""The repayments list: full page and partial, filters, totals, paging, bad input, query count."""

from datetime import timedelta
from decimal import Decimal

import pytest
from flask import url_for
from sqlalchemy import event

from app import clock
from app.extensions import db
from app.services import repayments
from tests import factories
from tests.factories import SYSTEM

HX = {"HX-Request": "true"}
TODAY = clock.today()
D1, D2, D3 = (TODAY - timedelta(days=n) for n in (30, 20, 10))


@pytest.fixture
def paid(member, active_loan):
    """Three repayments on one loan: cash 1,000 (D1), M-Pesa 2,000 (D2), bank 500 (D3)."""
    return [
        repayments.record_repayment(active_loan.id, Decimal("1000"), "cash", None, SYSTEM, D1),
        repayments.record_repayment(
            active_loan.id, Decimal("2000"), "mpesa", "qab123xyz", SYSTEM, D2
        ),
        repayments.record_repayment(active_loan.id, Decimal("500"), "bank", "SLIP-9", SYSTEM, D3),
    ]


def rows(html: str) -> int:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return body.count("<tr>")


def test_full_page_has_filters_and_results(admin_client, paid, member, active_loan):
    response = admin_client.get("/repayments/")
    assert response.status_code == 200
    html = response.text
    assert "<html" in html
    assert 'id="repayments-results"' in html
    assert 'hx-get="/repayments/"' in html
    assert 'hx-trigger="change, submit"' in html
    assert 'hx-target="#repayments-results"' in html
    assert 'hx-push-url="true"' in html
    assert "HX-Request" in response.headers["Vary"]
    assert rows(html) == 3
    with admin_client.application.test_request_context():
        assert f'href="{url_for("loans.detail", loan_id=active_loan.id)}"' in html
        assert f'href="{url_for("members.detail", member_id=member.id)}"' in html
    assert member.member_number in html and member.full_name in html
    assert "QAB123XYZ" in html and "SLIP-9" in html and "M-Pesa" in html
    # Principal and interest of the first repayment: interest due first.
    first = paid[0]
    assert f"{first.principal_amount:,.2f}" in html and f"{first.interest_amount:,.2f}" in html
    assert first.principal_amount + first.interest_amount == Decimal("1000.00")


def test_partial_for_htmx(admin_client, paid):
    response = admin_client.get("/repayments/", headers=HX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<section id="repayments-results"')
    assert rows(response.text) == 3
    assert "Total KES 3,500.00" in response.text


def test_newest_first(admin_client, paid):
    html = admin_client.get("/repayments/", headers=HX).text
    assert html.index("SLIP-9") < html.index("QAB123XYZ")


def test_method_filter_and_total(admin_client, paid):
    html = admin_client.get("/repayments/?method=mpesa", headers=HX).text
    assert rows(html) == 1
    assert "QAB123XYZ" in html and "SLIP-9" not in html
    assert "Total KES 2,000.00" in html
    assert "from 1 repayment" in html


def test_date_filter_and_total(admin_client, paid):
    html = admin_client.get(f"/repayments/?date_from={D2}&date_to={D3}", headers=HX).text
    assert rows(html) == 2
    assert "Total KES 2,500.00" in html
    principal = sum(r.principal_amount for r in paid[1:])
    interest = sum(r.interest_amount for r in paid[1:])
    assert f"principal {principal:,.2f}, interest {interest:,.2f}" in html


def test_total_covers_every_page_not_only_the_shown_one(admin_client, paid):
    html = admin_client.get("/repayments/?per_page=1", headers=HX).text
    assert rows(html) == 1
    assert "Total KES 3,500.00" in html
    assert "Page 1 of 3" in html


def test_no_match(admin_client, paid):
    html = admin_client.get("/repayments/?method=checkoff", headers=HX).text
    assert "No repayments match these filters." in html


def test_totals_service_matches_rows(paid):
    totals = repayments.repayment_totals(date_from=D1, date_to=D2)
    assert totals == {
        "count": 2,
        "amount": Decimal("3000.00"),
        "principal": paid[0].principal_amount + paid[1].principal_amount,
        "interest": paid[0].interest_amount + paid[1].interest_amount,
    }
    empty = repayments.repayment_totals(method="checkoff")
    assert empty["amount"] == Decimal("0") and empty["count"] == 0


def test_pager_keeps_the_filters(admin_client, paid):
    html = admin_client.get(f"/repayments/?per_page=1&page=2&date_from={D1}", headers=HX).text
    assert "Page 2 of 3" in html
    assert f"/repayments/?page=1&amp;date_from={D1}&amp;per_page=1" in html
    assert f"/repayments/?page=3&amp;date_from={D1}&amp;per_page=1" in html
    assert 'hx-target="#repayments-results"' in html


def test_page_past_the_end_shows_the_pager(admin_client, paid):
    html = admin_client.get("/repayments/?page=9", headers=HX).text
    assert rows(html) == 0
    assert "Page 9 of 1" in html and "Previous" in html


def test_loan_and_member_filters(admin_client, paid, product):
    other = factories.active_loan(factories.member(), product)
    repayments.record_repayment(other.id, Decimal("700"), "cash", None, SYSTEM, D3)
    assert rows(admin_client.get("/repayments/", headers=HX).text) == 4
    html = admin_client.get(f"/repayments/?loan_id={other.id}").text
    assert rows(html) == 1 and "Total KES 700.00" in html
    assert f'<input type="hidden" name="loan_id" value="{other.id}">' in html
    html = admin_client.get(f"/repayments/?member_id={other.member_id}", headers=HX).text
    assert rows(html) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date_from=2026-13-45", "Paid from: Enter a date as YYYY-MM-DD."),
        ("date_to=yesterday", "Paid to: Enter a date as YYYY-MM-DD."),
        ("date_from=2026-03-01&date_to=2026-02-01", "The end date is before the start date."),
        ("method=bitcoin", "Method: Not a valid choice."),
        ("page=abc", "Page: Not a valid integer value."),
        ("page=0", "Page: Number must be between 1 and 100000."),
        ("page=99999999999999999999999", "Page: Number must be between 1 and 100000."),
        ("per_page=100000", "Rows per page: Number must be between 1 and 100."),
        ("loan_id=-1", "Loan: Number must be at least 1."),
    ],
)
def test_bad_filters_are_refused_with_a_message(admin_client, paid, query, message):
    page = admin_client.get(f"/repayments/?{query}")
    assert page.status_code == 422
    assert "<html" in page.text and message in page.text
    partial = admin_client.get(f"/repayments/?{query}", headers=HX)
    assert partial.status_code == 422
    assert "<html" not in partial.text and message in partial.text


def test_blank_filters_are_ignored(admin_client, paid):
    response = admin_client.get("/repayments/?date_from=&date_to=&method=&page=", headers=HX)
    assert response.status_code == 200
    assert rows(response.text) == 3


def test_every_role_may_read(login, paid):
    for role in ("admin", "loan_officer", "accountant", "viewer"):
        assert login(role).get("/repayments/").status_code == 200


def test_signed_out(client):
    response = client.get("/repayments/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    response = client.get("/repayments/", headers=HX)
    assert response.status_code == 401 and "/auth/login" in response.headers["HX-Redirect"]


def test_member_name_is_escaped(admin_client, product):
    evil = factories.member(first_name="<script>alert(1)</script>", last_name="Otieno")
    loan = factories.active_loan(evil, product)
    repayments.record_repayment(loan.id, Decimal("100"), "cash", None, SYSTEM, D3)
    for headers in ({}, HX):
        html = admin_client.get("/repayments/", headers=headers).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert(1)" not in html


def _count_queries(client, url: str) -> int:
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get(url, headers=HX)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(statements), response


def test_query_count_does_not_grow_with_the_page(admin_client, product):
    for _ in range(50):
        loan = factories.active_loan(factories.member(), product)
        repayments.record_repayment(loan.id, Decimal("100"), "cash", None, SYSTEM, D3)
    small, response = _count_queries(admin_client, "/repayments/?per_page=10")
    assert rows(response.text) == 10
    large, response = _count_queries(admin_client, "/repayments/?per_page=50")
    assert rows(response.text) == 50
    assert small == large
    assert large <= 5  # signed-in user, page count, page rows with members, totals
