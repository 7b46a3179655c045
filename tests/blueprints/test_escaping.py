"""A member's name is data, never markup: it is shown escaped on every page that shows members."""

import pytest

from app.services import contributions, repayments
from tests import factories
from tests.factories import SYSTEM

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def hostile_loan(product):
    member = factories.member(first_name=SCRIPT, last_name=SCRIPT)
    loan = factories.active_loan(member, product)
    repayments.record_repayment(loan.id, "100", "cash", None, SYSTEM)
    contributions.record_contribution(member.id, "500", "deposit", "cash", None, SYSTEM)
    return loan


def pages(loan):
    member_id = loan.member_id
    return [
        "/members/",
        f"/members/?q={SCRIPT}",
        f"/members/{member_id}",
        f"/members/{member_id}/edit",
        "/loans/",
        f"/loans/{loan.id}",
        f"/loans/new?member_id={member_id}",
        f"/loans/{loan.id}/repayments/new",
        "/repayments/",
        "/contributions/",
        f"/contributions/new?member_id={member_id}",
    ]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_member_name_is_escaped_everywhere(admin_client, hostile_loan, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    for url in pages(hostile_loan):
        response = admin_client.get(url, headers=headers)
        body = response.get_data(as_text=True)
        assert response.status_code == 200, url
        assert SCRIPT not in body, url
        if not htmx:  # some partials (a form, say) do not show the name at all
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url
