"""Contributions: deposits and share capital paid in by members."""

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Contribution, ContributionKind, MemberStatus
from app.services import audit, snapshots
from app.services.actor import Actor
from app.services.dashboard import money_sum
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.events import record_event
from app.services.members import get_member
from app.services.pagination import Page, paginate
from app.services.validation import clean_payment


def record_contribution(member_id: int, amount, kind: str, method: str, reference: str | None,
                        actor: Actor, paid_on=None) -> Contribution:  # fmt: skip
    """Record a deposit or share-capital payment; records `contribution.received`. Commits."""
    contribution = post_contribution(member_id, amount, kind, method, reference, actor, paid_on)
    db.session.commit()
    return contribution


def post_contribution(member_id: int, amount, kind: str, method: str, reference: str | None,
                      actor: Actor, paid_on=None) -> Contribution:  # fmt: skip
    """record_contribution() inside the caller's transaction: the caller commits. A refusal
    rolls the whole transaction back before raising."""
    member = get_member(member_id)
    if member.status == MemberStatus.EXITED:
        raise IllegalTransition(
            f"Member {member.member_number} has exited; contributions are closed."
        )
    errors: dict[str, str] = {}
    if kind not in set(ContributionKind):
        errors["kind"] = "Choose deposit or share capital."
    money, method, reference, day = clean_payment(amount, method, reference, paid_on, errors)
    contribution = Contribution(member_id=member.id, amount=money, kind=kind, method=method,
                                reference=reference, paid_on=day, recorded_by_id=actor.staff_id)  # fmt: skip
    db.session.add(contribution)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ValidationFailed(
            {"reference": f"A {method} payment with reference {reference} is already recorded."}
        ) from None
    audit.record(actor, "contribution.recorded", "contribution", contribution.id, member_id=member.id,
                 amount=f"{money:.2f}", kind=kind, method=method, reference=reference)  # fmt: skip
    record_event(
        "contribution.received",
        "contribution",
        contribution.id,
        snapshots.contribution(contribution),
    )
    return contribution


def _contribution_filters(query, date_from, date_to, member_id, kind):
    if date_from:
        query = query.where(Contribution.paid_on >= date_from)
    if date_to:
        query = query.where(Contribution.paid_on <= date_to)
    if member_id:
        query = query.where(Contribution.member_id == member_id)
    if kind:
        query = query.where(Contribution.kind == kind)
    return query


def list_contributions(date_from=None, date_to=None, member_id=None, kind=None,
                       page: int = 1, per_page: int = 25) -> Page:  # fmt: skip
    """Contributions filtered by payment date range, member and kind, newest first; each with
    its member loaded in the same query."""
    query = _contribution_filters(select(Contribution), date_from, date_to, member_id, kind)
    query = query.options(joinedload(Contribution.member))
    newest_first = query.order_by(Contribution.paid_on.desc(), Contribution.id.desc())
    return paginate(newest_first, page, per_page)


def contribution_totals(date_from=None, date_to=None, member_id=None, kind=None) -> dict:
    """Count and sum per kind (every kind present, zero when none) of the contributions the
    filters select, and their overall total, in one query."""
    query = select(Contribution.kind, func.count(Contribution.id), money_sum(Contribution.amount))
    query = _contribution_filters(query, date_from, date_to, member_id, kind)
    rows = db.session.execute(query.group_by(Contribution.kind)).all()
    by_kind = {k.value: {"count": 0, "amount": Decimal("0.00")} for k in ContributionKind}
    for row_kind, count, amount in rows:
        by_kind[row_kind] = {"count": count, "amount": amount}
    return {
        "by_kind": by_kind,
        "count": sum(v["count"] for v in by_kind.values()),
        "amount": sum((v["amount"] for v in by_kind.values()), Decimal("0.00")),
    }
