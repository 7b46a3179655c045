"""The OpenAPI document: complete, served with the docs page, and true to the API (schemathesis)."""

import re
from datetime import date
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from app.blueprints.api import BASE_PATH, COMPAT_PATH
from app.services import contributions, loans, repayments, webhook_deliveries, webhooks
from tests import factories
from tests.factories import SYSTEM

API = BASE_PATH


class FreshContext:
    """The app as a server runs it: each request in an app context of its own (fresh `g` and
    database session), not in the test's."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        with self.app.app_context():
            return self.app(environ, start_response)


def seed() -> None:
    """A little of everything, so that generated requests find records."""
    product = factories.product()
    first, second = factories.member(), factories.member()
    loan = factories.active_loan(first, product, Decimal("12000"), 6, disbursed_on=date(2026, 1, 5))
    repayments.record_repayment(loan.id, "2070.58", "mpesa", "QAB1234567", SYSTEM, date(2026, 2, 5))
    factories.pending_loan(second, product)
    declined = factories.pending_loan(second, product)
    loans.decline(declined.id, "Too many loans", SYSTEM)
    contributions.record_contribution(
        first.id, "500", "deposit", "cash", "RCPT-1", SYSTEM, date(2026, 3, 1)
    )
    endpoint, _ = webhooks.register_endpoint(
        "https://127.0.0.1:9/hook", ["loan.approved"], SYSTEM, "Ledger"
    )
    webhook_deliveries.send_test_event(endpoint.id, SYSTEM)  # delivery 1: never sent here


# Every documented operation (test_the_fuzzed_operations_are_all_of_them keeps this complete).
OPERATIONS = [
    ("GET", "/loans"),
    ("GET", "/loans/{loan_id}"),
    ("GET", "/repayments"),
    ("GET", "/contributions"),
    ("GET", "/members"),
    ("GET", "/financial-summary"),
    ("GET", "/events"),
    ("POST", "/webhooks"),
    ("GET", "/webhooks"),
    ("GET", "/webhooks/{webhook_id}"),
    ("DELETE", "/webhooks/{webhook_id}"),
    ("POST", "/webhooks/{webhook_id}/rotate-secret"),
    ("POST", "/webhooks/{webhook_id}/test"),
    ("GET", "/webhooks/{webhook_id}/deliveries"),
    ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"),
]


# Rules OpenAPI 3.0 cannot state (they join several parameters or need the outside world): there a
# schema-valid request may rightly get a 400/422 naming the rule, so the check that such requests
# are accepted (positive_data_acceptance) is skipped; every other check still runs.
CROSS_FIELD_RULES = {
    ("GET", "/financial-summary"): "date_to >= date_from; range width limited per period",
    ("POST", "/webhooks"): "the URL must resolve (DNS) to an allowed address",
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_api_matches_its_document(app, make_key, method, path, mode):
    """Schemathesis, 30 generated requests per operation and mode: never a 500, and every answer
    (status, content type, headers, body) is one the document describes.

    (Driven through `operation.as_strategy()` rather than `schemathesis.pytest.from_fixture`,
    whose lazy loader reads `_nodeid`, which pytest 9 no longer has.)"""
    seed()
    _, plaintext = make_key(rate_limit_per_minute=100_000)
    # The key as the document's bearerAuth scheme: schemathesis then sends it on positive cases
    # and knows when a negative case has broken it on purpose.
    config = SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"bearerAuth": {"bearer": plaintext}}}}
    )
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", FreshContext(app), config=config)
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        checks = excluded
        if "cursor" in (case.query or {}):
            # A cursor is valid only as the server issued it (signed, for these filters, not
            # with page): a generated one is rightly a 400 naming it.
            checks = [*excluded, schemathesis.checks.positive_data_acceptance]
        case.call_and_validate(excluded_checks=checks)

    excluded = []
    if (method, path) in CROSS_FIELD_RULES:
        excluded.append(schemathesis.checks.positive_data_acceptance)

    run()


def test_document_describes_every_route(client, app):
    spec = client.get(f"{API}/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in (
            "api.openapi_json",
            "api.docs",
        ):
            continue
        path = re.sub(r"<(?:[^>:]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix(API))
        routed |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented
    assert documented == set(OPERATIONS)
    for expected in [
        ("GET", "/loans"),
        ("GET", "/loans/{loan_id}"),
        ("GET", "/repayments"),
        ("GET", "/contributions"),
        ("GET", "/members"),
        ("GET", "/financial-summary"),
        ("GET", "/events"),
        ("POST", "/webhooks"),
        ("GET", "/webhooks"),
        ("GET", "/webhooks/{webhook_id}"),
        ("DELETE", "/webhooks/{webhook_id}"),
        ("POST", "/webhooks/{webhook_id}/test"),
        ("GET", "/webhooks/{webhook_id}/deliveries"),
    ]:
        assert expected in documented


def test_document_states_parameters_permissions_and_errors(client):
    spec = client.get(f"{API}/openapi.json").json
    loans_op = spec["paths"]["/loans"]["get"]
    params = {p["name"]: p["schema"] for p in loans_op["parameters"]}
    assert set(params) == {
        "page",
        "per_page",
        "cursor",
        "format",
        "updated_since",
        "status",
        "member_id",
        "product_id",
        "date_from",
        "date_to",
    }
    assert params["per_page"] == {"type": "integer", "default": 50, "minimum": 1, "maximum": 100}
    assert params["date_from"]["format"] == "date"
    assert params["updated_since"]["format"] == "date-time"
    assert "written_off" in params["status"]["enum"]
    assert "`read_loans`" in loans_op["description"]
    assert loans_op["security"] == [{"bearerAuth": []}]
    assert set(loans_op["responses"]) == {"200", "304", "400", "401", "403", "429"}
    assert set(loans_op["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    detail = spec["paths"]["/loans/{loan_id}"]["get"]
    assert "404" in detail["responses"]
    assert detail["parameters"][0]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 2147483647,
    }
    record = spec["components"]["schemas"]["LoanRecord"]
    assert record["properties"]["amount"]["type"] == "number"
    assert record["properties"]["approval_date"]["nullable"] is True
    assert "`manage_webhooks`" in spec["paths"]["/events"]["get"]["description"]
    assert spec["servers"][0]["url"] == API
    assert spec["servers"][1]["url"] == COMPAT_PATH


def test_document_is_public_and_cacheable(client):
    first = client.get(f"{API}/openapi.json")
    assert first.status_code == 200
    again = client.get(f"{API}/openapi.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_docs_page_uses_vendored_swagger_ui(client, app):
    page = client.get(f"{API}/docs")
    assert page.status_code == 200
    html = page.text
    assert "/static/vendor/swagger-ui-bundle-5.35.0.js" in html
    assert "/static/vendor/swagger-ui-5.35.0.css" in html
    assert f'data-spec-url="{API}/openapi.json"' in html
    for asset in ("swagger-ui-bundle-5.35.0.js", "swagger-ui-5.35.0.css"):
        assert client.get(f"/static/vendor/{asset}").status_code == 200
    sums = app.static_folder + "/vendor/SHA256SUMS"
    with open(sums) as listed:
        assert "swagger-ui-bundle-5.35.0.js" in listed.read()


def test_docs_page_under_the_compatibility_path(client):
    page = client.get(f"{COMPAT_PATH}/docs")
    assert page.status_code == 200
    assert f'data-spec-url="{COMPAT_PATH}/openapi.json"' in page.text
