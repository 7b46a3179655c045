"""Scheduled member messages: repayment reminders a few days before an instalment is due, overdue
notices, and the weekly contribution reminder to active members who have not contributed that
week.

Built for a whole membership: members are read in pages of PAGE (ids, names, contacts and the
amounts, aggregated in SQL), their messages rendered and stored in one INSERT per page, and sent
by jobs of 50 (see bulk.py). Each member gets at most one of each kind a day: the dedupe key is
"<kind>:<member id>:<date>", so running a job twice the same day stores nothing more (members
already done that day are left out before their messages are even rendered)."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Select, and_, func, or_, select

from app import clock
from app.extensions import db
from app.models import (
    Channel,
    Contribution,
    InstallmentStatus,
    Loan,
    LoanInstallment,
    LoanStatus,
    Member,
    MemberStatus,
)
from app.services.notifications import bulk, config
from app.services.notifications.templates import Renderer

log = logging.getLogger(__name__)

PAGE = 2000  # members per query, INSERT and commit
CENT = Decimal("0.01")
OPEN = (InstallmentStatus.DUE, InstallmentStatus.PARTIAL)
MEMBER_COLUMNS = (
    Member.id,
    Member.first_name,
    Member.last_name,
    Member.member_number,
    Member.phone,
    Member.email,
    Member.sms_opt_in,
    Member.email_opt_in,
)
# Someone to send to: a channel the member has not opted out of, with its contact.
REACHABLE = or_(
    and_(Member.sms_opt_in.is_(True), Member.phone.is_not(None), Member.phone != ""),
    and_(Member.email_opt_in.is_(True), Member.email.is_not(None), Member.email != ""),
)


@dataclass
class Run:
    """What one reminder run did."""

    kind: str
    day: date
    members: int = 0  # members the reminder was for
    already: int = 0  # of them, those who had it today already
    stored: int = 0  # notifications stored (one per channel)
    seconds: float = 0.0


def _outstanding():
    return LoanInstallment.amount - LoanInstallment.principal_paid - LoanInstallment.interest_paid


def _instalments_by_member(*conditions) -> Select:
    """Members with open instalments matching `conditions` on active (or defaulted) loans: their
    columns, the amount outstanding, the oldest due date and how many loans."""
    return (
        select(
            *MEMBER_COLUMNS,
            func.sum(_outstanding()).label("amount"),
            func.min(LoanInstallment.due_date).label("due_date"),
            func.count(func.distinct(Loan.id)).label("loans"),
        )
        .select_from(LoanInstallment)
        .join(Loan, Loan.id == LoanInstallment.loan_id)
        .join(Member, Member.id == Loan.member_id)
        .where(LoanInstallment.status.in_(OPEN), REACHABLE, *conditions)
        .group_by(*MEMBER_COLUMNS)
    )


def _channels(row, wanted: tuple[str, ...]) -> list[tuple[str, str]]:
    """(channel, contact) pairs the member can be reached on among `wanted`."""
    pairs = []
    if Channel.SMS in wanted and row.sms_opt_in and row.phone:
        pairs.append((Channel.SMS, row.phone))
    if Channel.EMAIL in wanted and row.email_opt_in and row.email:
        pairs.append((Channel.EMAIL, row.email))
    return pairs


def _member(row) -> dict:
    return {
        "first_name": row.first_name,
        "last_name": row.last_name,
        "full_name": f"{row.first_name} {row.last_name}",
        "member_number": row.member_number,
        "phone": row.phone,
        "email": row.email,
    }


def _send(kind: str, day: date, query: Select, context_for: Callable[[object], dict]) -> Run:
    """Page through `query` (ordered by member id, one row per member), render `kind` for each
    member with context_for(row) and store the messages not sent already today."""
    started = time.perf_counter()
    run = Run(kind, day)
    wanted = config.current().channels(kind)
    if not wanted:
        run.seconds = time.perf_counter() - started
        return run
    renderer = Renderer(kind)
    after = 0
    while True:
        rows = db.session.execute(
            query.where(Member.id > after).order_by(Member.id).limit(PAGE)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        run.members += len(rows)
        planned = [(row, _channels(row, wanted)) for row in rows]
        base = {row.id: f"{kind}:{row.id}:{day.isoformat()}" for row in rows}
        taken = bulk.taken_keys([f"{base[row.id]}:{c}" for row, pairs in planned for c, _ in pairs])
        items = []
        for row, pairs in planned:
            pairs = [(c, to) for c, to in pairs if f"{base[row.id]}:{c}" not in taken]
            if not pairs:
                run.already += 1
                continue
            context = {"member": _member(row), **context_for(row)}
            message = renderer.render(context, tuple(c for c, _ in pairs))
            for channel, to in pairs:
                text = message.sms if channel == Channel.SMS else message.text
                if not text:
                    continue
                items.append(
                    bulk.Outgoing(
                        recipient_id=row.id,
                        channel=channel,
                        contact=to,
                        message=text,
                        dedupe_key=base[row.id],
                        subject=message.subject if channel == Channel.EMAIL else None,
                        html=message.html if channel == Channel.EMAIL else None,
                    )
                )
        run.stored += len(bulk.store(items, kind))
        db.session.expire_all()  # nothing read here is needed again: keep the session small
    run.seconds = time.perf_counter() - started
    log.info(
        "%s for %s: %d members, %d had it already, %d notifications stored in %.1f s",
        kind, day, run.members, run.already, run.stored, run.seconds,
    )  # fmt: skip
    return run


def _amount(value) -> Decimal:
    # SQLite sums NUMERIC as floating point: back to cents.
    return Decimal(str(value or 0)).quantize(CENT)


def repayment_due(today: date | None = None) -> Run:
    """Remind members whose instalments fall due in `repayment_reminder_days` days (3 by
    default): one message per member with the total due that day."""
    today = today or clock.today()
    days = int(config.current().repayment_reminder_days)
    due_on = today + timedelta(days=days)
    query = _instalments_by_member(
        LoanInstallment.due_date == due_on, Loan.status == LoanStatus.ACTIVE
    )
    return _send(
        "repayment_due",
        today,
        query,
        lambda row: {
            "due": {
                "amount": _amount(row.amount),
                "due_date": due_on,
                "days": days,
                "loans": row.loans,
            }
        },
    )


def overdue(today: date | None = None) -> Run:
    """Tell members with instalments past due what they owe, on the days overdue (of their oldest
    unpaid instalment) that `overdue_notice_days` lists, or every day ("daily")."""
    today = today or clock.today()
    days = config.current().overdue_days()
    query = _instalments_by_member(
        LoanInstallment.due_date < today, Loan.status.in_((LoanStatus.ACTIVE, LoanStatus.DEFAULTED))
    )
    if days is not None:
        if not days:
            return Run("repayment_overdue", today)
        dates = [today - timedelta(days=n) for n in sorted(days)]
        query = query.having(func.min(LoanInstallment.due_date).in_(dates))
    return _send(
        "repayment_overdue",
        today,
        query,
        lambda row: {
            "due": {
                "amount": _amount(row.amount),
                "due_date": row.due_date,
                "days": (today - row.due_date).days,
                "loans": row.loans,
            }
        },
    )


def week_of(day: date) -> tuple[date, date]:
    """The Monday and the Sunday of `day`'s week."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def contribution(today: date | None = None) -> Run:
    """Remind every active member who has made no contribution since Monday of this week."""
    today = today or clock.today()
    monday, sunday = week_of(today)
    contributed = select(Contribution.member_id).where(Contribution.paid_on.between(monday, today))
    query = select(*MEMBER_COLUMNS).where(
        Member.status == MemberStatus.ACTIVE, REACHABLE, Member.id.not_in(contributed)
    )
    week = {"week": {"start": monday, "end": sunday}}
    return _send("contribution_reminder", today, query, lambda row: week)
