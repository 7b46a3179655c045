"""The API benchmark's WSGI app: the real app plus bare baseline routes. Served only by
bench/api.py (`gunicorn bench.api_app:app`), never by a deployment.

`app` is `create_app()` configured by the environment, as `wsgi.py` is. The baseline blueprint adds,
under /bench/, the SQL the accounting API runs for the benchmarked requests, answered with plain
`json.dumps`: no API key, no audit log, no marshmallow schemas, no ETag. Each baseline answer
carries `Server-Timing: sql;dur=<ms>`, the time of its SQL alone.

- /bench/loans?page=&per_page=                 SELECT ... FROM loans ORDER BY id LIMIT/OFFSET, COUNT(*)
- /bench/loans?after=&page=&total=&per_page=   SELECT ... WHERE id > :after ORDER BY id LIMIT (what
                                               the API runs for a `cursor`: no COUNT, no OFFSET)
- /bench/repayments?member_id=&page=&per_page= the same on repayments of one member
  (both built by app.services.accounting's query functions, as the API builds them, but executed
  on the connection: rows, not ORM objects)
- /bench/financial-summary?period=&date_from=&date_to=   financial_summary's aggregation queries
"""

import json
import time
from datetime import date

from flask import Blueprint, Response, request
from sqlalchemy import func, select

from app import create_app
from app.extensions import csrf, db
from app.models import Contribution, Loan, Member, Repayment
from app.services import accounting, financial_summary, snapshots
from app.services.dashboard import money_sum

# The fields of the API's records (the previous system's, plus updated_at), straight from the rows.
LOAN_COLUMNS = snapshots.LOAN_FIELDS
REPAYMENT_COLUMNS = (
    "id",
    "loan_id",
    "member_id",
    "amount",
    "principal_amount",
    "interest_amount",
    "method",
    "reference",
    "paid_on",
    "updated_at",
)

baseline = Blueprint("bench_baseline", __name__)
csrf.exempt(baseline)


def _json(body: dict, sql_seconds: float) -> Response:
    response = Response(json.dumps(body, default=str), mimetype="application/json")
    response.headers["Server-Timing"] = f"sql;dur={sql_seconds * 1000:.2f}"
    return response


def _listing(name: str, query, model, columns: tuple[str, ...]) -> Response:
    """A page of `query` (an app.services.accounting query) with the SQL the API runs for it,
    executed on the connection (rows, not ORM objects): with `after` (what the API's cursor
    holds: the last id sent, the page number and the total counted on the first page), the
    keyset `WHERE id > :after ORDER BY id LIMIT n+1` alone; otherwise `page` by OFFSET, and the
    total by COUNT(*)."""
    per_page = min(100, max(1, request.args.get("per_page", 50, type=int)))
    after = request.args.get("after", type=int)
    started = time.perf_counter()
    conn = db.session.connection()
    if after is not None:
        page = request.args.get("page", 2, type=int)
        total = request.args.get("total", 0, type=int)
        selection = query.where(model.id > after).limit(per_page + 1)
    else:
        page = max(1, request.args.get("page", 1, type=int))
        total = conn.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        selection = query.limit(per_page + 1).offset((page - 1) * per_page)
    rows = conn.execute(selection).mappings().all()[:per_page]
    items = [{column: row[column] for column in columns} for row in rows]
    sql_seconds = time.perf_counter() - started
    pages = max(1, -(-total // per_page))
    pagination = {"page": page, "per_page": per_page, "total_items": total, "total_pages": pages}
    return _json({name: items, "pagination": pagination}, sql_seconds)


@baseline.get("/loans")
def loans():
    """A page of loans by id (by OFFSET and COUNT, or after a given id), as bare rows."""
    return _listing("loans", accounting.loans_query(), Loan, LOAN_COLUMNS)


@baseline.get("/repayments")
def repayments():
    """A page of one member's repayments by id and the total, as bare rows."""
    query = accounting.repayments_query(member_id=request.args.get("member_id", type=int))
    return _listing("repayments", query, Repayment, REPAYMENT_COLUMNS)


def _summary(period: str, date_from: date | None, date_to: date | None) -> dict:
    """The SQL of financial_summary.summarise (its four grouped aggregates and the snapshot),
    built from its own pieces, with the result rows as they come: no buckets filled in Python."""
    rng = financial_summary.resolve_range(period, date_from, date_to)
    dialect = db.session.get_bind().dialect.name

    def grouped(column, *aggregates, extra=()):
        key = financial_summary.bucket(period, column, dialect).label("bucket")
        query = (
            select(key, *extra, *aggregates)
            .where(column >= rng.date_from, column <= rng.date_to)
            .group_by(key, *extra)
        )
        return [list(row) for row in db.session.execute(query)]

    return {
        "loans_disbursed": grouped(Loan.disbursement_date, func.count(), money_sum(Loan.amount)),
        "repayments": grouped(
            Repayment.paid_on,
            func.count(),
            money_sum(Repayment.amount),
            money_sum(Repayment.principal_amount),
            money_sum(Repayment.interest_amount),
        ),
        "contributions": grouped(
            Contribution.paid_on,
            func.count(),
            money_sum(Contribution.amount),
            extra=(Contribution.kind,),
        ),
        "new_members": grouped(Member.joined_on, func.count()),
        "snapshot": financial_summary.snapshot(),
    }


@baseline.get("/financial-summary")
def summary():
    """The financial summary's SQL, its result rows dumped as they come."""
    date_from = date.fromisoformat(request.args["date_from"])
    date_to = date.fromisoformat(request.args["date_to"])
    started = time.perf_counter()
    body = _summary(request.args.get("period", "monthly"), date_from, date_to)
    return _json(body, time.perf_counter() - started)


app = create_app()
app.register_blueprint(baseline, url_prefix="/bench")
