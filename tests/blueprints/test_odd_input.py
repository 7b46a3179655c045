"""No query string makes a portal page answer 500: NUL characters, huge numbers, wrong types."""

import pytest
from flask import url_for

from tests.blueprints.test_role_matrix import staff_endpoints

ODD_VALUES = ["\x00", "9" * 40, "-1", "abc", "2026-13-45", "' OR 1=1 --"]
PARAMS = ["q", "status", "page", "per_page", "date_from", "date_to", "method", "kind", "product_id",
          "member_id", "loan_id", "key_id", "endpoint_id", "delivery_id", "path", "days"]  # fmt: skip


@pytest.mark.parametrize(
    "value", ODD_VALUES, ids=["nul", "huge", "negative", "text", "bad-date", "sql"]
)
def test_odd_query_values_never_give_500(app, admin_client, member, product, value):
    from tests import factories

    loan = factories.pending_loan(member, product)
    ids = {"member_id": member.id, "loan_id": loan.id, "name": "members", "field": "phone"}
    failures = []
    for endpoint, method, rule in staff_endpoints(app):
        if method != "GET":
            continue
        with app.test_request_context():
            url = url_for(endpoint, **{k: v for k, v in ids.items() if k in rule.arguments})
        for headers in ({}, {"HX-Request": "true"}):
            response = admin_client.get(
                url, query_string=dict.fromkeys(PARAMS, value), headers=headers
            )
            if response.status_code >= 500:
                failures.append((url, headers, response.status_code))
    assert failures == []
