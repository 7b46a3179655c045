"""Every staff route against every role, and signed out: a role without the permission gets 403,
signed out gets sent to sign in, and no combination answers 500."""

import pytest
from flask import url_for

from app.auth import PERMISSIONS
from app.models import Role
from tests import factories

PUBLIC = {"static", "auth.login", "auth.logout", "dashboard.root"}
# Machines' routes, which authenticate otherwise (API keys, callback secrets and signatures, the
# metrics token) or answer anyone (health checks): tested in tests/api, tests/mpesa, tests/ops.
MACHINE_PREFIXES = ("api.", "api_compat.", "callbacks.", "ops.")
SIGNED_OUT = "signed_out"


def staff_endpoints(app):
    """(endpoint, method, rule) for each route of the staff portal."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or rule.endpoint.startswith(MACHINE_PREFIXES):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, rule


def test_every_staff_route_declares_its_permission(app):
    missing = [
        e
        for e, _, _ in staff_endpoints(app)
        if not hasattr(app.view_functions[e], "required_permission")
    ]
    assert missing == []


@pytest.fixture
def url_values(member, product):
    loan = factories.pending_loan(member, product)
    return {"member_id": member.id, "loan_id": loan.id, "name": "members", "field": "phone"}


@pytest.mark.parametrize("role", [*Role, SIGNED_OUT])
def test_role_matrix(app, login, client, url_values, role):
    browser = client if role == SIGNED_OUT else login(role)
    outcomes = []
    for endpoint, method, rule in staff_endpoints(app):
        with app.test_request_context():
            url = url_for(endpoint, **{k: v for k, v in url_values.items() if k in rule.arguments})
        response = browser.open(url, method=method, data={})
        permission = app.view_functions[endpoint].required_permission
        if role == SIGNED_OUT:
            expected_ok = (
                response.status_code == 302 and "/auth/login" in response.headers["Location"]
            )
        elif role in PERMISSIONS[permission]:
            expected_ok = response.status_code not in (401, 403) and response.status_code < 500
        else:
            expected_ok = response.status_code == 403
        outcomes.append((method, url, permission, response.status_code, expected_ok))
    wrong = [o[:4] for o in outcomes if not o[4]]
    assert wrong == [], f"{role}: unexpected answers (method, url, permission, status): {wrong}"
    assert len(outcomes) > 10
