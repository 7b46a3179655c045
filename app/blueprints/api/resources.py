"""Read endpoints of the accounting API: loans, repayments, contributions, members, the
financial summary and the event feed. Each list answers JSON pages or, with format=csv, a stream."""

from app.blueprints.api import bp
from app.blueprints.api.auth import require_permission
from app.blueprints.api.errors import problem
from app.blueprints.api.openapi import operation
from app.blueprints.api.paging import filters_of, paged
from app.blueprints.api.render import csv_response, weak_etag
from app.blueprints.api.schemas import (
    ContributionList,
    ContributionQuery,
    ContributionRecord,
    EventFeed,
    EventQuery,
    FinancialSummary,
    LoanDetail,
    LoanList,
    LoanQuery,
    LoanRecord,
    MemberList,
    MemberQuery,
    MemberRecord,
    RepaymentList,
    RepaymentQuery,
    RepaymentRecord,
    SummaryQuery,
)
from app.models import Contribution, Loan, Member, Repayment
from app.services import accounting, financial_summary
from app.services.errors import ValidationFailed

LIST_DESCRIPTION = (
    "Ordered by id ascending, paged with `page`/`per_page`. The Link header gives the first, "
    "previous and last pages by number and the next one by `cursor`: a synchronisation that "
    'follows rel="next" reads each record once, and every page after the first costs the '
    "same however deep it is. `format=csv` streams every matching row with the same filters "
    "instead."
)


def _columns(record) -> tuple[str, ...]:
    return tuple(record._declared_fields)


def _listing(key: str, build_query, model, record, query: dict):
    """A page of records in the previous system's envelope, or the whole selection as CSV."""
    filters = filters_of(query)
    selection = build_query(**filters)
    if query["format"] == "csv":
        columns = _columns(record)
        etag = weak_etag(key, sorted(filters.items()), *accounting.fingerprint(selection, model))
        return csv_response(
            columns,
            accounting.stream_columns(selection, model, columns),
            lambda row: row,
            etag,
            f"{key}.csv",
        )
    return paged(key, selection, model.id, query)


@bp.get("/loans")
@require_permission("read_loans")
@operation(
    tag="Loans",
    summary="List loans",
    description="Filters: status, application date range, member, product, updated_since. "
    + LIST_DESCRIPTION,
    query=LoanQuery,
    responses={200: LoanList},
    csv=True,
    link_header=True,
)
def list_loans(query):
    """A page of loans matching the filters, in the previous system's shape (or all, as CSV)."""
    return _listing("loans", accounting.loans_query, Loan, LoanRecord, query)


@bp.get("/loans/<id:loan_id>")
@require_permission("read_loans")
@operation(
    tag="Loans",
    summary="A loan with its repayments and schedule",
    description="The schedule is the loan's stored instalments once disbursed, and a projection "
    "from today while it is pending or approved.",
    responses={200: LoanDetail},
)
def get_loan(loan_id: int):
    """One loan, its repayments oldest first and its schedule; 404 problem when unknown."""
    return accounting.get_loan_detail(loan_id)


@bp.get("/repayments")
@require_permission("read_repayments")
@operation(
    tag="Repayments",
    summary="List repayments",
    description="Each with its principal and interest portions, method and reference (the "
    "M-Pesa receipt for M-Pesa payments). Filters: loan, member, payment date range, "
    "updated_since. " + LIST_DESCRIPTION,
    query=RepaymentQuery,
    responses={200: RepaymentList},
    csv=True,
    link_header=True,
)
def list_repayments(query):
    """A page of repayments matching the filters (or all, as CSV)."""
    return _listing("repayments", accounting.repayments_query, Repayment, RepaymentRecord, query)


@bp.get("/contributions")
@require_permission("read_contributions")
@operation(
    tag="Contributions",
    summary="List contributions",
    description="Deposits and share capital. Filters: member, kind, payment date range, "
    "updated_since. " + LIST_DESCRIPTION,
    query=ContributionQuery,
    responses={200: ContributionList},
    csv=True,
    link_header=True,
)
def list_contributions(query):
    """A page of contributions matching the filters (or all, as CSV)."""
    return _listing(
        "contributions", accounting.contributions_query, Contribution, ContributionRecord, query
    )


@bp.get("/members")
@require_permission("read_members")
@operation(
    tag="Members",
    summary="List members",
    description="Filters: status, joining date range, updated_since. " + LIST_DESCRIPTION,
    query=MemberQuery,
    responses={200: MemberList},
    csv=True,
    link_header=True,
)
def list_members(query):
    """A page of members matching the filters (or all, as CSV)."""
    return _listing("members", accounting.members_query, Member, MemberRecord, query)


@bp.get("/financial-summary")
@require_permission("read_financial_summary")
@operation(
    tag="Reports",
    summary="Financial summary per period",
    description="One bucket per day, ISO week (from Monday), month, quarter or year of the "
    "range (the first and last clipped to it, empty ones with zeros): loans disbursed, "
    "repayments with principal and interest apart, contributions by kind, new members; their "
    "totals; and a snapshot of the portfolio now (active loans, outstanding balance, portfolio "
    "at risk over 30 days). Defaults: monthly, up to today, over the last 31 days, 13 weeks, "
    "12 months, 8 quarters or 5 years. The widest range: daily 366 days, weekly 2 years, "
    "monthly 10 years, quarterly 25 years, yearly 50 years; wider is a 400 naming the limit.",
    query=SummaryQuery,
    responses={200: FinancialSummary},
)
def get_financial_summary(query):
    """The summary of the range by period, computed by SQL aggregation; 400 for a bad range."""
    try:
        return financial_summary.summarise(
            query["period"], query.get("date_from"), query.get("date_to")
        )
    except ValidationFailed as exc:
        return problem(400, "Bad range", exc.message, errors=exc.errors, type_="invalid-parameters")


@bp.get("/events")
@require_permission("manage_webhooks")
@operation(
    tag="Events",
    summary="The event feed (webhook catch-up)",
    description="Outbox events in sequence order, each in the webhook envelope. Read from "
    "`after_sequence=0`, then pass `next_after_sequence` back until `has_more` is false; "
    "sequences follow commit order, so resuming never skips an event. Needs the "
    "`manage_webhooks` permission, as the webhooks that carry the same events do.",
    query=EventQuery,
    responses={200: EventFeed},
)
def list_events(query):
    """Up to `limit` events after `after_sequence`, with where to resume."""
    events, more = accounting.events_after(query["after_sequence"], query["limit"])
    return {
        "events": [accounting.event_envelope(event) for event in events],
        "next_after_sequence": events[-1].sequence if events else query["after_sequence"],
        "has_more": more,
    }
