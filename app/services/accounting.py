"""Read queries of the accounting API: filtered, stably ordered lists (paged by
app.blueprints.api.paging, or streamed), a loan with its repayments and schedule, and the outbox
feed. Reads only: nothing here commits."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from app import clock
from app.extensions import db
from app.models import Contribution, Event, Loan, LoanStatus, Member, Repayment
from app.services import webhook_deliveries
from app.services.amortization import build_schedule
from app.services.errors import NotFound

STREAM_BATCH = 1000
ZERO = Decimal("0.00")
PROJECTED = (LoanStatus.PENDING, LoanStatus.APPROVED)


def _between(query: Select, column, date_from: date | None, date_to: date | None) -> Select:
    if date_from is not None:
        query = query.where(column >= date_from)
    if date_to is not None:
        query = query.where(column <= date_to)
    return query


def _equal(query: Select, **conditions) -> Select:
    for column, value in conditions.values():
        if value is not None:
            query = query.where(column == value)
    return query


def _since(query: Select, model, updated_since: datetime | None) -> Select:
    return query if updated_since is None else query.where(model.updated_at >= updated_since)


def loans_query(
    status=None, date_from=None, date_to=None, member_id=None, product_id=None, updated_since=None
) -> Select:
    """Loans matching every given filter (application date range), by id ascending."""
    query = _equal(
        select(Loan),
        status=(Loan.status, status),
        member=(Loan.member_id, member_id),
        product=(Loan.product_id, product_id),
    )
    query = _between(query, Loan.application_date, date_from, date_to)
    return _since(query, Loan, updated_since).order_by(Loan.id)


def repayments_query(
    loan_id=None, member_id=None, date_from=None, date_to=None, updated_since=None
) -> Select:
    """Repayments matching every given filter (payment date range), by id ascending."""
    query = _equal(
        select(Repayment),
        loan=(Repayment.loan_id, loan_id),
        member=(Repayment.member_id, member_id),
    )
    query = _between(query, Repayment.paid_on, date_from, date_to)
    return _since(query, Repayment, updated_since).order_by(Repayment.id)


def contributions_query(
    member_id=None, kind=None, date_from=None, date_to=None, updated_since=None
) -> Select:
    """Contributions matching every given filter (payment date range), by id ascending."""
    query = _equal(
        select(Contribution),
        member=(Contribution.member_id, member_id),
        kind=(Contribution.kind, kind),
    )
    query = _between(query, Contribution.paid_on, date_from, date_to)
    return _since(query, Contribution, updated_since).order_by(Contribution.id)


def members_query(status=None, date_from=None, date_to=None, updated_since=None) -> Select:
    """Members matching every given filter (joining date range), by id ascending."""
    query = _equal(select(Member), status=(Member.status, status))
    query = _between(query, Member.joined_on, date_from, date_to)
    return _since(query, Member, updated_since).order_by(Member.id)


def fingerprint(query: Select, model) -> tuple:
    """(count, latest updated_at, highest id) of what `query` selects: one query. Changes whenever
    a selected row is added, changed or removed, so it can stand in for the rows in an ETag."""
    rows = query.order_by(None).subquery()
    return db.session.execute(
        select(func.count(), func.max(rows.c.updated_at), func.max(rows.c.id))
    ).one()


def stream_columns(query: Select, model, columns: tuple[str, ...]) -> Iterator:
    """The named columns of every row `query` selects, fetched in batches (a server-side cursor
    on PostgreSQL), so that no more than one batch is held in memory."""
    plain = query.with_only_columns(*(getattr(model, name) for name in columns))
    result = db.session.execute(plain.execution_options(yield_per=STREAM_BATCH))
    yield from result


@dataclass(frozen=True)
class ScheduleLine:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    amount: Decimal
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    status: str = "due"
    paid_on: date | None = None


@dataclass(frozen=True)
class LoanSchedule:
    basis: str  # stored | projected | none
    installments: list


def get_loan_detail(loan_id: int) -> Loan:
    """The loan with its repayments (oldest first) and `schedule`: the stored instalments once
    disbursed, the projection from today while pending or approved, none when declined.
    NotFound for an unknown id. Three queries."""
    loan = db.session.scalar(
        select(Loan)
        .where(Loan.id == loan_id)
        .options(selectinload(Loan.repayments), selectinload(Loan.installments))
    )
    if loan is None:
        raise NotFound(f"There is no loan {loan_id}.")
    loan.schedule = _schedule(loan)
    return loan


def _schedule(loan: Loan) -> LoanSchedule:
    if loan.installments:
        return LoanSchedule("stored", list(loan.installments))
    if loan.status not in PROJECTED:
        return LoanSchedule("none", [])
    projected = build_schedule(
        loan.amount, loan.interest_rate, loan.term_months, loan.interest_method, clock.today()
    )
    return LoanSchedule(
        "projected",
        [
            ScheduleLine(i.number, i.due_date, i.principal, i.interest, i.amount)
            for i in projected.installments
        ],
    )


def events_after(after_sequence: int, limit: int) -> tuple[list[Event], bool]:
    """Up to `limit` outbox events with a sequence above `after_sequence`, in sequence order, and
    whether more follow. Sequences are allocated in commit order, so resuming from the last one
    read never skips an event."""
    rows = list(
        db.session.scalars(
            select(Event)
            .where(Event.sequence > after_sequence)
            .order_by(Event.sequence)
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


def event_envelope(event: Event) -> dict:
    """The event exactly as webhooks carry it: {"id", "type", "sequence", "timestamp", "data"}."""
    return webhook_deliveries.envelope(
        webhook_deliveries.message_id(event.id),
        event.event_type,
        event.sequence,
        event.created_at,
        event.payload,
    )
