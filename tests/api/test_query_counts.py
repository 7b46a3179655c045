"""A request runs the same number of SQL statements for 1 row as for 100 (no query per row)."""

import contextlib
import itertools
from datetime import date
from decimal import Decimal

from sqlalchemy import event

from app.blueprints.api import BASE_PATH
from app.extensions import db
from app.services import contributions, repayments
from tests import factories
from tests.factories import SYSTEM


@contextlib.contextmanager
def counting():
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def statements_for(client, headers, url) -> int:
    client.get(url, headers=headers).close()  # warm: the key's first use writes last_used
    with counting() as statements:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        response.get_data()
    return len(statements)


_references = itertools.count(1)
PATHS = [
    "/loans?per_page=100",
    "/repayments?per_page=100",
    "/contributions?per_page=100",
    "/members?per_page=100",
    "/events?limit=1000",
    "/financial-summary?period=daily&date_from=2026-01-01&date_to=2026-03-01",
    "/loans?format=csv",
    "/repayments?format=csv",
    "/contributions?format=csv",
    "/members?format=csv",
]


def add_records(n: int, loan, product) -> None:
    """n more members, loans, repayments (on `loan`) and contributions."""
    for _ in range(n):
        member = factories.member()
        factories.pending_loan(member, product)
        reference = f"R{next(_references)}"
        repayments.record_repayment(loan.id, "10", "cash", reference, SYSTEM, date(2026, 2, 1))
        contributions.record_contribution(
            member.id, "50", "deposit", "cash", reference, SYSTEM, date(2026, 2, 1)
        )


def test_lists_run_as_many_statements_for_one_row_as_for_a_hundred(client, auth_headers):
    headers = auth_headers()
    product = factories.product()
    loan = factories.active_loan(factories.member(), product, Decimal("12000"), 6)
    repayments.record_repayment(loan.id, "10", "cash", "R0", SYSTEM, date(2026, 2, 1))
    contributions.record_contribution(
        loan.member_id, "50", "deposit", "cash", "C0", SYSTEM, date(2026, 2, 1)
    )
    one = {path: statements_for(client, headers, f"{BASE_PATH}{path}") for path in PATHS}
    add_records(99, loan, product)
    assert (
        client.get(f"{BASE_PATH}/loans", headers=headers).json["pagination"]["total_items"] == 100
    )
    hundred = {path: statements_for(client, headers, f"{BASE_PATH}{path}") for path in PATHS}
    assert one == hundred


def test_loan_detail_runs_as_many_statements_for_one_repayment_as_for_many(client, auth_headers):
    headers = auth_headers()
    loan = factories.active_loan(factories.member(), factories.product(), Decimal("50000"), 24)
    repayments.record_repayment(loan.id, "10", "cash", "R0", SYSTEM, date(2026, 2, 1))
    one = statements_for(client, headers, f"{BASE_PATH}/loans/{loan.id}")
    for i in range(1, 30):
        repayments.record_repayment(loan.id, "10", "cash", f"R{i}", SYSTEM, date(2026, 2, 1))
    many = statements_for(client, headers, f"{BASE_PATH}/loans/{loan.id}")
    assert one == many
