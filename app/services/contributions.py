"""Contributions: deposits and share capital paid in by members."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Contribution, ContributionKind, MemberStatus
from app.services import audit, snapshots
from app.services.actor import Actor
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.events import record_event
from app.services.members import get_member
from app.services.pagination import Page, paginate
from app.services.validation import clean_payment


def record_contribution(member_id: int, amount, kind: str, method: str, reference: str | None,
                        actor: Actor, paid_on=None) -> Contribution:  # fmt: skip
    """Record a deposit or share-capital payment; records `contribution.received`."""
    member = get_member(member_id)
    if member.status == MemberStatus.EXITED:
        raise IllegalTransition(f"Member {member.member_number} has exited; contributions are closed.")
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
        raise ValidationFailed({"reference": f"A {method} payment with reference {reference} is already recorded."})
    audit.record(actor, "contribution.recorded", "contribution", contribution.id, member_id=member.id,
                 amount=f"{money:.2f}", kind=kind, method=method, reference=reference)  # fmt: skip
    record_event("contribution.received", "contribution", contribution.id, snapshots.contribution(contribution))
    db.session.commit()
    return contribution


def list_contributions(date_from=None, date_to=None, member_id=None, kind=None,
                       page: int = 1, per_page: int = 25) -> Page:  # fmt: skip
    """Contributions filtered by payment date range, member and kind, newest first."""
    query = select(Contribution)
    if date_from:
        query = query.where(Contribution.paid_on >= date_from)
    if date_to:
        query = query.where(Contribution.paid_on <= date_to)
    if member_id:
        query = query.where(Contribution.member_id == member_id)
    if kind:
        query = query.where(Contribution.kind == kind)
    return paginate(query.order_by(Contribution.paid_on.desc(), Contribution.id.desc()), page, per_page)
