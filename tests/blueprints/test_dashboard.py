"""The dashboard: four cards loaded lazily by htmx, each showing figures computed in SQL."""

from datetime import timedelta
from decimal import Decimal

import pytest

from app import clock
from app.extensions import db
from app.models import LoanStatus, MemberStatus
from app.services import repayments
from tests import factories
from tests.factories import SYSTEM

HX = {"HX-Request": "true"}
CARDS = ("members", "active-loans", "portfolio", "repayments-month")
TODAY = clock.today()
FIRST_OF_MONTH = TODAY.replace(day=1)
LAST_MONTH = FIRST_OF_MONTH - timedelta(days=1)


def card(client, name: str, htmx: bool = True) -> str:
    response = client.get(f"/dashboard/cards/{name}", headers=HX if htmx else {})
    assert response.status_code == 200
    return response.text


@pytest.fixture
def portfolio(product):
    """Loans in four states: active (part repaid), defaulted, completed, pending; with repayments
    this month and last month."""
    active = factories.active_loan(factories.member(), product, Decimal("12000"), 6)
    defaulted = factories.active_loan(factories.member(), product, Decimal("30000"), 12)
    completed = factories.active_loan(factories.member(), product, Decimal("5000"), 2)
    pending = factories.pending_loan(factories.member(), product, Decimal("8000"), 4)
    repayments.record_repayment(active.id, Decimal("1500.25"), "cash", None, SYSTEM, TODAY)
    repayments.record_repayment(active.id, Decimal("999.75"), "mpesa", "ABC123", SYSTEM, LAST_MONTH)
    repayments.record_repayment(completed.id, completed.balance, "bank", "B1", SYSTEM, TODAY)
    defaulted.status = LoanStatus.DEFAULTED
    db.session.commit()
    return {"active": active, "defaulted": defaulted, "completed": completed, "pending": pending}


def test_page_lists_the_four_lazy_cards(admin_client):
    response = admin_client.get("/dashboard")
    assert response.status_code == 200
    html = response.text
    assert "<html" in html
    for name in CARDS:
        assert f'id="card-{name}"' in html
        assert f'hx-get="/dashboard/cards/{name}"' in html
    assert html.count('hx-trigger="load"') == 4


def test_root_redirects_to_the_dashboard(admin_client):
    response = admin_client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"


@pytest.mark.parametrize("name", CARDS)
def test_each_card_full_page_and_partial(admin_client, name):
    partial = admin_client.get(f"/dashboard/cards/{name}", headers=HX)
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert partial.text.lstrip().startswith(f'<article id="card-{name}"')
    assert "HX-Request" in partial.headers["Vary"]
    page = admin_client.get(f"/dashboard/cards/{name}")
    assert page.status_code == 200
    assert "<html" in page.text
    # The asked-for card is filled in; the others still load lazily.
    assert f'hx-get="/dashboard/cards/{name}"' not in page.text
    assert page.text.count('hx-trigger="load"') == 3


def test_cards_with_nothing_recorded(admin_client):
    assert '<p class="figure">0</p>' in card(admin_client, "members")
    assert '<p class="figure">0</p>' in card(admin_client, "active-loans")
    assert "KES 0.00" in card(admin_client, "portfolio")
    assert "KES 0.00" in card(admin_client, "repayments-month")


def test_members_card(admin_client):
    for _ in range(3):
        factories.member()
    dormant = factories.member()
    dormant.status = MemberStatus.DORMANT
    db.session.commit()
    html = card(admin_client, "members")
    assert '<p class="figure">4</p>' in html
    assert "3 active" in html
    assert 'href="/members/"' in html


def test_active_loans_card(admin_client, portfolio):
    html = card(admin_client, "active-loans")
    assert '<p class="figure">1</p>' in html  # the completed and pending loans do not count
    assert "1 defaulted" in html
    assert 'href="/loans/?status=active"' in html


def test_portfolio_is_the_balance_of_active_and_defaulted_loans(admin_client, portfolio):
    active, defaulted = portfolio["active"], portfolio["defaulted"]
    db.session.refresh(active)
    expected = active.balance + defaulted.balance
    assert active.balance == active.total_payable - Decimal("2500.00")
    assert (
        portfolio["pending"].balance > 0
    )  # owed once disbursed, but not part of the portfolio yet
    html = card(admin_client, "portfolio")
    assert f"KES {expected:,.2f}" in html


def test_repayments_this_month(admin_client, portfolio):
    completed = portfolio["completed"]
    expected = Decimal("1500.25") + completed.total_payable  # last month's 999.75 is left out
    html = card(admin_client, "repayments-month")
    assert f"KES {expected:,.2f}" in html
    assert "2 repayments since" in html
    assert f'href="/repayments/?date_from={FIRST_OF_MONTH.isoformat()}"' in html


def test_repayments_card_link_lists_the_same_total(admin_client, portfolio):
    html = card(admin_client, "repayments-month")
    link = html.split('href="', 2)[1].split('"', 1)[0].replace("&amp;", "&")
    expected = Decimal("1500.25") + portfolio["completed"].total_payable
    assert f"Total KES {expected:,.2f}" in admin_client.get(link, headers=HX).text


def test_unknown_card_is_404(admin_client):
    assert admin_client.get("/dashboard/cards/nonsense").status_code == 404
    response = admin_client.get("/dashboard/cards/nonsense", headers=HX)
    assert response.status_code == 404 and "<html" not in response.text


@pytest.mark.parametrize("role", ["admin", "loan_officer", "accountant", "viewer"])
def test_every_role_sees_the_dashboard(login, role):
    client = login(role)
    assert client.get("/dashboard").status_code == 200
    for name in CARDS:
        assert client.get(f"/dashboard/cards/{name}", headers=HX).status_code == 200


def test_signed_out(client):
    response = client.get("/dashboard")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    response = client.get(
        "/dashboard/cards/members", headers={**HX, "HX-Current-URL": "http://localhost/dashboard"}
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/auth/login?next=/dashboard"


def test_member_name_never_on_the_dashboard_unescaped(admin_client):
    factories.member(first_name="<script>alert(1)</script>", last_name="Achieng")
    for name in CARDS:
        assert "<script>alert(1)" not in card(admin_client, name, htmx=False)
