"""Contributions: the list (filters, totals per kind, paging) and the form that records one."""

from datetime import timedelta
from decimal import Decimal

import pytest
from flask import url_for
from sqlalchemy import event, func, select

from app import clock
from app.extensions import db
from app.models import Contribution, Event
from app.services import contributions
from tests import factories
from tests.factories import SYSTEM

HX = {"HX-Request": "true"}
TODAY = clock.today()
D1, D2, D3 = (TODAY - timedelta(days=n) for n in (30, 20, 10))


@pytest.fixture
def paid(member):
    """Deposit 1,500 cash (D1), share capital 5,000 M-Pesa (D2), deposit 250.50 bank (D3)."""
    record = contributions.record_contribution
    return [
        record(member.id, "1500", "deposit", "cash", None, SYSTEM, D1),
        record(member.id, "5000", "share_capital", "mpesa", "rkt55abc", SYSTEM, D2),
        record(member.id, "250.50", "deposit", "bank", "DEP-77", SYSTEM, D3),
    ]


def rows(html: str) -> int:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return body.count("<tr>")


def count() -> int:
    return db.session.scalar(select(func.count(Contribution.id)))


# --- the list ---------------------------------------------------------------------------------


def test_list_full_page(admin_client, paid, member):
    response = admin_client.get("/contributions/")
    assert response.status_code == 200
    html = response.text
    assert "<html" in html
    assert 'id="contributions-results"' in html
    assert 'hx-get="/contributions/"' in html and 'hx-trigger="change, submit"' in html
    assert 'hx-target="#contributions-results"' in html and 'hx-push-url="true"' in html
    assert "HX-Request" in response.headers["Vary"]
    assert rows(html) == 3
    with admin_client.application.test_request_context():
        assert f'href="{url_for("members.detail", member_id=member.id)}"' in html
    assert member.member_number in html and member.full_name in html
    assert "Share capital" in html and "RKT55ABC" in html and "250.50" in html


def test_list_partial(admin_client, paid):
    response = admin_client.get("/contributions/", headers=HX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<section id="contributions-results"')
    assert rows(response.text) == 3


def test_totals_per_kind(admin_client, paid):
    html = admin_client.get("/contributions/", headers=HX).text
    assert "Total KES 6,750.50" in html
    assert "Deposit KES 1,750.50 (2)" in html
    assert "Share capital KES 5,000.00 (1)" in html


def test_kind_filter(admin_client, paid):
    html = admin_client.get("/contributions/?kind=deposit", headers=HX).text
    assert rows(html) == 2 and "RKT55ABC" not in html
    assert "Total KES 1,750.50" in html
    assert "Share capital KES 0.00 (0)" in html


def test_date_filter(admin_client, paid):
    html = admin_client.get(f"/contributions/?date_from={D2}&date_to={D2}", headers=HX).text
    assert rows(html) == 1 and "RKT55ABC" in html
    assert "Total KES 5,000.00" in html
    html = admin_client.get(f"/contributions/?date_from={D2}", headers=HX).text
    assert rows(html) == 2 and "Total KES 5,250.50" in html


def test_member_filter(admin_client, paid):
    other = factories.member()
    contributions.record_contribution(other.id, "10", "deposit", "cash", None, SYSTEM, D3)
    html = admin_client.get(f"/contributions/?member_id={other.id}").text
    assert rows(html) == 1 and "Total KES 10.00" in html
    assert f'<input type="hidden" name="member_id" value="{other.id}">' in html


def test_totals_service(paid):
    totals = contributions.contribution_totals(kind="share_capital")
    assert totals["amount"] == Decimal("5000.00") and totals["count"] == 1
    assert totals["by_kind"]["deposit"] == {"count": 0, "amount": Decimal("0.00")}
    assert contributions.contribution_totals()["amount"] == Decimal("6750.50")


def test_pager_keeps_the_filters(admin_client, paid):
    html = admin_client.get("/contributions/?kind=deposit&per_page=1", headers=HX).text
    assert rows(html) == 1 and "Page 1 of 2" in html
    assert "/contributions/?page=2&amp;per_page=1&amp;kind=deposit" in html
    assert "Total KES 1,750.50" in html  # the total covers every page


def test_no_match(admin_client, paid):
    html = admin_client.get(f"/contributions/?date_to={D1 - timedelta(days=1)}", headers=HX).text
    assert "No contributions match these filters." in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date_from=31-01-2026", "Paid from: Enter a date as YYYY-MM-DD."),
        ("date_to=2026-02-30", "Paid to: Enter a date as YYYY-MM-DD."),
        ("date_from=2026-03-01&date_to=2026-02-01", "The end date is before the start date."),
        ("kind=loan", "Kind: Not a valid choice."),
        ("page=-3", "Page: Number must be between 1 and 100000."),
        ("member_id=x", "Member: Not a valid integer value."),
    ],
)
def test_bad_filters(admin_client, paid, query, message):
    page = admin_client.get(f"/contributions/?{query}")
    assert page.status_code == 422 and "<html" in page.text and message in page.text
    partial = admin_client.get(f"/contributions/?{query}", headers=HX)
    assert partial.status_code == 422 and "<html" not in partial.text and message in partial.text


def test_list_readable_by_every_role_and_not_signed_out(login, client, paid):
    for role in ("admin", "loan_officer", "accountant", "viewer"):
        assert login(role).get("/contributions/").status_code == 200
    assert client.get("/contributions/").status_code == 302


def test_list_query_count_is_constant(admin_client):
    for _ in range(50):
        contributions.record_contribution(
            factories.member().id, "100", "deposit", "cash", None, SYSTEM, D3
        )
    counts = []
    for per_page in (10, 50):
        statements = []

        def listener(conn, cursor, statement, *args):
            statements.append(statement)  # noqa: B023

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            response = admin_client.get(f"/contributions/?per_page={per_page}", headers=HX)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert rows(response.text) == per_page
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 5


def test_member_name_escaped_on_list(admin_client):
    evil = factories.member(first_name="<script>alert(1)</script>", last_name="Njoroge")
    contributions.record_contribution(evil.id, "100", "deposit", "cash", None, SYSTEM, D3)
    for headers in ({}, HX):
        html = admin_client.get("/contributions/", headers=headers).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert(1)" not in html


# --- the form ---------------------------------------------------------------------------------


def new_url(member_id) -> str:
    return f"/contributions/new?member_id={member_id}"


def valid(**overrides) -> dict:
    data = {"amount": "2,500", "kind": "share_capital", "method": "mpesa", "reference": "sgh12kl9",
            "paid_on": D3.isoformat()}  # fmt: skip
    data.update(overrides)
    return data


def test_form_full_page(officer_client, member):
    response = officer_client.get(new_url(member.id))
    assert response.status_code == 200
    html = response.text
    assert "<html" in html and 'id="contribution-form"' in html
    assert f'hx-post="/contributions/new?member_id={member.id}"' in html
    assert member.full_name in html and member.member_number in html
    assert f'value="{clock.today().isoformat()}"' in html  # paid on defaults to today
    for option in ('value="deposit"', 'value="share_capital"', 'value="mpesa"', 'value="checkoff"'):
        assert option in html


def test_form_partial(officer_client, member):
    response = officer_client.get(new_url(member.id), headers=HX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<form id="contribution-form"')
    assert member.member_number in response.text


def test_form_escapes_member_name(officer_client):
    evil = factories.member(first_name="<script>alert(1)</script>", last_name="Mwangi")
    html = officer_client.get(new_url(evil.id)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html


def test_unknown_member_is_404(officer_client):
    assert officer_client.get(new_url(999999)).status_code == 404
    assert officer_client.post(new_url(999999), data=valid()).status_code == 404
    assert officer_client.get(new_url(999999), headers=HX).status_code == 404


def test_missing_member_is_400(officer_client):
    response = officer_client.get("/contributions/new")
    assert response.status_code == 400 and "Choose the member first" in response.text
    assert officer_client.get("/contributions/new?member_id=abc").status_code == 400


def test_record_redirects_to_the_member_with_a_flash(officer_client, member):
    response = officer_client.post(new_url(member.id), data=valid())
    assert response.status_code == 303
    assert response.headers["Location"] == f"/members/{member.id}"
    saved = db.session.scalars(select(Contribution)).one()
    assert saved.amount == Decimal("2500.00") and saved.kind == "share_capital"
    assert saved.method == "mpesa" and saved.reference == "SGH12KL9" and saved.paid_on == D3
    assert saved.member_id == member.id and saved.recorded_by_id == officer_client.user.id
    assert (
        db.session.scalar(
            select(func.count(Event.id)).where(Event.event_type == "contribution.received")
        )
        == 1
    )
    page = officer_client.get(response.headers["Location"])
    assert "Recorded a share capital of KES 2,500.00" in page.text


def test_record_with_htmx_sends_hx_redirect(admin_client, member):
    response = admin_client.post(
        new_url(member.id), data=valid(method="cash", reference=""), headers=HX
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/members/{member.id}"
    assert count() == 1


def test_paid_on_defaults_to_today(admin_client, member):
    response = admin_client.post(new_url(member.id), data=valid(paid_on=""))
    assert response.status_code == 303
    assert db.session.scalars(select(Contribution)).one().paid_on == clock.today()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"amount": "0"}, "amount", "Enter an amount greater than zero."),
        ({"amount": "-5"}, "amount", "Enter an amount greater than zero."),
        ({"amount": "abc"}, "amount", "Enter an amount in shillings"),
        ({"amount": "10.555"}, "amount", "Use at most two decimal places."),
        ({"amount": ""}, "amount", "Enter an amount in shillings"),
        (
            {"paid_on": (TODAY + timedelta(days=2)).isoformat()},  # future even past midnight
            "paid_on",
            "The payment date cannot be in the future.",
        ),
        ({"paid_on": "2026-02-31"}, "paid_on", "Enter a date as YYYY-MM-DD."),
        ({"method": "mpesa", "reference": ""}, "reference", "Enter the M-Pesa receipt number."),
        ({"method": "paypal"}, "method", "Choose M-Pesa, cash, bank or check-off."),
        ({"kind": "loan"}, "kind", "Choose deposit or share capital."),
        ({"reference": "X" * 41}, "reference", "Use at most 40 characters."),
    ],
)
def test_invalid_input_is_422_with_the_message_by_its_field(
    officer_client, member, overrides, field, message
):
    for headers in ({}, HX):
        response = officer_client.post(new_url(member.id), data=valid(**overrides), headers=headers)
        assert response.status_code == 422
        assert ("<html" in response.text) is (not headers)
        assert f'<small id="{field}-error" class="field-error">{message}' in response.text
        assert f'id="{field}" ' in response.text and 'aria-invalid="true"' in response.text
    assert count() == 0


def test_several_errors_at_once(officer_client, member):
    response = officer_client.post(
        new_url(member.id), data=valid(amount="0", reference="", kind="x"), headers=HX
    )
    assert response.status_code == 422
    for field in ("amount", "reference", "kind"):
        assert f'id="{field}-error"' in response.text


def test_duplicate_reference(officer_client, member):
    assert officer_client.post(new_url(member.id), data=valid()).status_code == 303
    response = officer_client.post(
        new_url(member.id), data=valid(reference=" SGH12KL9 "), headers=HX
    )
    assert response.status_code == 422
    assert "A mpesa payment with reference SGH12KL9 is already recorded." in response.text
    assert 'id="reference-error"' in response.text
    assert member.member_number in response.text
    assert count() == 1


def test_entered_values_are_kept_after_an_error(officer_client, member):
    html = officer_client.post(
        new_url(member.id), data=valid(amount="0", reference="abc1"), headers=HX
    ).text
    assert 'value="abc1"' in html and '<option selected value="share_capital">' in html


def test_exited_member_is_409(officer_client, member):
    member.status = "exited"
    db.session.commit()
    page = officer_client.get(new_url(member.id))
    assert page.status_code == 200 and "contributions are closed" in page.text
    for headers in ({}, HX):
        response = officer_client.post(new_url(member.id), data=valid(), headers=headers)
        assert response.status_code == 409
        assert (
            f"Member {member.member_number} has exited; contributions are closed." in response.text
        )
    assert count() == 0


@pytest.mark.parametrize("role", ["viewer", "accountant"])
def test_roles_without_record_payments_are_refused(login, member, role):
    client = login(role)
    assert client.get(new_url(member.id)).status_code == 403
    assert client.get(new_url(member.id), headers=HX).status_code == 403
    assert client.post(new_url(member.id), data=valid()).status_code == 403
    assert client.post(new_url(member.id), data=valid(), headers=HX).status_code == 403
    assert count() == 0


def test_viewer_sees_no_record_link_but_admin_does(viewer_client, admin_client, member):
    assert "/contributions/new" not in viewer_client.get(f"/members/{member.id}").text
    assert new_url(member.id) in admin_client.get(f"/members/{member.id}").text


def test_form_signed_out(client, member):
    response = client.get(new_url(member.id))
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    response = client.post(new_url(member.id), data=valid(), headers=HX)
    assert response.status_code == 401 and "HX-Redirect" in response.headers
    assert count() == 0
