"""The suspense queue: money M-Pesa reports that could not be credited automatically."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update

from app.clock import NAIROBI
from app.extensions import db
from app.models import (
    Contribution,
    ContributionKind,
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    MpesaStatus,
    MpesaTransaction,
    PaymentMethod,
    Repayment,
    SuspenseItem,
    SuspenseStatus,
)
from app.models.base import CENT, utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.contributions import post_contribution
from app.services.errors import IllegalTransition, ServiceError, ValidationFailed
from app.services.lookup import ID_MAX, get_or_not_found
from app.services.mpesa.transactions import move
from app.services.pagination import Page, paginate
from app.services.repayments import post_repayment


def hold(
    source: str,
    amount: Decimal,
    reason: str,
    receipt: str | None = None,
    phone_number: str | None = None,
    account_reference: str | None = None,
    paid_at: datetime | None = None,
    transaction_id: int | None = None,
    callback_id: int | None = None,
    reconciliation_id: int | None = None,
) -> SuspenseItem:
    """Add an open item to the caller's transaction (the caller commits). A receipt already in
    the queue is not added twice: the existing item is returned."""
    if receipt:
        existing = db.session.scalar(select(SuspenseItem).where(SuspenseItem.receipt == receipt))
        if existing is not None:
            return existing
    item = SuspenseItem(
        source=source,
        amount=amount,
        reason=reason,
        receipt=receipt,
        phone_number=phone_number,
        account_reference=account_reference,
        paid_at=paid_at,
        status=SuspenseStatus.OPEN,
        transaction_id=transaction_id,
        callback_id=callback_id,
        reconciliation_id=reconciliation_id,
    )
    db.session.add(item)
    db.session.flush()
    return item


# --- the queue, for staff ----------------------------------------------------------------------

SOURCES = ("callback", "c2b", "statement")
MAX_NOTE = 1000
REPAYABLE = (LoanStatus.ACTIVE, LoanStatus.DEFAULTED)


def get_item(item_id: int) -> SuspenseItem:
    return get_or_not_found(SuspenseItem, item_id, f"There is no suspense item {item_id}.")


def items_query(status: str | None = SuspenseStatus.OPEN, source: str | None = None):
    """Suspense items of one status (None: all) and source (None: all), oldest open money
    first for the open queue, newest first otherwise."""
    query = select(SuspenseItem)
    if status:
        query = query.where(SuspenseItem.status == status)
    if source:
        query = query.where(SuspenseItem.source == source)
    if status == SuspenseStatus.OPEN:
        return query.order_by(SuspenseItem.created_at, SuspenseItem.id)
    return query.order_by(SuspenseItem.created_at.desc(), SuspenseItem.id.desc())


def list_items(
    status: str | None = SuspenseStatus.OPEN,
    source: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> Page:
    """One page of items_query(); a status or source that does not exist matches nothing."""
    return paginate(items_query(status, source), page, per_page)


def open_total() -> tuple[int, Decimal]:
    """How many items are open and the money they hold, in one query."""
    count, amount = db.session.execute(
        select(func.count(SuspenseItem.id), func.coalesce(func.sum(SuspenseItem.amount), 0)).where(
            SuspenseItem.status == SuspenseStatus.OPEN
        )
    ).one()
    return count, Decimal(str(amount)).quantize(CENT)


def credited_as(receipt: str | None) -> str | None:
    """What already credits this receipt (a repayment, a contribution, or a completed M-Pesa
    transaction), in words; None when nothing does."""
    if not receipt:
        return None
    for model, label in ((Repayment, "repayment"), (Contribution, "contribution")):
        found = db.session.scalar(
            select(model.id).where(model.method == PaymentMethod.MPESA, model.reference == receipt)
        )
        if found:
            return f"{label} {found}"
    found = db.session.scalar(
        select(MpesaTransaction.id).where(
            MpesaTransaction.mpesa_receipt_number == receipt,
            MpesaTransaction.status == MpesaStatus.COMPLETED,
        )
    )
    return f"M-Pesa transaction {found}" if found else None


def find_member(text: str | None) -> Member:
    """The member named by a member number (DST000123) or id; ValidationFailed (`member`)."""
    raw = (text or "").strip().upper()
    member = None
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= ID_MAX:
        member = db.session.get(Member, int(raw))
    elif raw and len(raw) <= 12:
        member = db.session.scalar(select(Member).where(Member.member_number == raw))
    if member is None:
        message = f"There is no member {raw[:20]}." if raw else "Enter the member number."
        raise ValidationFailed({"member": message})
    return member


@dataclass(frozen=True)
class Target:
    """Where a suspense item's money would go: a loan's repayment or a member's deposit."""

    member: Member
    loan: Loan | None = None

    @property
    def description(self) -> str:
        who = f"{self.member.full_name} ({self.member.member_number})"
        if self.loan is not None:
            return (
                f"a repayment on loan {self.loan.id} of {who}, balance KES {self.loan.balance:,.2f}"
            )
        return f"a deposit contribution of {who}"


def check_open(item: SuspenseItem) -> None:
    """IllegalTransition unless the item is open, saying how it was closed."""
    if item.status != SuspenseStatus.OPEN:
        done = f" {item.resolution}" if item.resolution else ""
        raise IllegalTransition(f"Suspense item {item.id} is {item.status} already.{done}")


def _clean_note(note: str | None, required: bool) -> str:
    text = " ".join((note or "").replace("\x00", "").split())
    if required and len(text) < 3:
        raise ValidationFailed({"note": "Say why (at least 3 characters)."})
    if len(text) > MAX_NOTE:
        raise ValidationFailed({"note": f"Use at most {MAX_NOTE} characters."})
    return text


def target_for(item_id: int, loan_id=None, member_id=None) -> tuple[SuspenseItem, Target]:
    """The open item and where its money would go (for the confirmation): exactly one of a
    repayable loan or a member who has not exited; ValidationFailed (`loan_id`, `member`)
    otherwise, IllegalTransition when the item is closed or its receipt already credited."""
    item = get_item(item_id)
    check_open(item)
    credited = credited_as(item.receipt)
    if credited:
        raise IllegalTransition(f"Receipt {item.receipt} is already credited ({credited}).")
    if bool(loan_id) == bool(member_id):
        raise ValidationFailed({"loan_id": "Give either a loan or a member (not both)."})
    if loan_id:
        loan = db.session.get(Loan, loan_id) if 1 <= loan_id <= ID_MAX else None
        if loan is None:
            raise ValidationFailed({"loan_id": f"There is no loan {loan_id}."})
        if loan.status not in REPAYABLE:
            refused = (
                f"Loan {loan.id} is {loan.status}: only active or defaulted loans take repayments."
            )
            raise ValidationFailed({"loan_id": refused})
        if item.amount > loan.balance:
            refused = (
                f"KES {item.amount:,.2f} is more than the loan's balance, KES {loan.balance:,.2f}."
            )
            raise ValidationFailed({"loan_id": refused})
        return item, Target(db.session.get(Member, loan.member_id), loan)
    member = db.session.get(Member, member_id) if 1 <= member_id <= ID_MAX else None
    if member is None:
        raise ValidationFailed({"member": f"There is no member {member_id}."})
    if member.status == MemberStatus.EXITED:
        raise ValidationFailed({"member": f"Member {member.member_number} has exited."})
    return item, Target(member)


def _close(item: SuspenseItem, status: str, actor: Actor, resolution: str) -> None:
    """Mark the item closed, guarded in SQL so that of two staff at once only one succeeds."""
    closed = db.session.execute(
        update(SuspenseItem)
        .where(SuspenseItem.id == item.id, SuspenseItem.status == SuspenseStatus.OPEN)
        .values(
            status=status,
            resolution=resolution,
            resolved_by_id=actor.staff_id,
            resolved_at=utcnow(),
            updated_at=utcnow(),
        )
    ).rowcount
    if not closed:
        db.session.rollback()
        raise IllegalTransition(f"Suspense item {item.id} was closed by someone else just now.")


def resolve(item_id: int, actor: Actor, loan_id=None, member_id=None, note: str = ""):
    """Credit an open item's money, in one transaction with closing it: a repayment on the loan
    or a deposit contribution of the member (method mpesa, reference the receipt), dated the day
    it was paid. Refused twice, and for a receipt something already credits. Audited; commits."""
    note = _clean_note(note, required=False)
    item, target = target_for(item_id, loan_id, member_id)
    amount, receipt = item.amount, item.receipt
    reference = receipt or f"SUSPENSE{item.id}"
    paid_on = item.paid_at.astimezone(NAIROBI).date() if item.paid_at else None
    try:
        if target.loan is not None:
            posted = post_repayment(
                target.loan.id, amount, PaymentMethod.MPESA, reference, actor, paid_on
            )
            credited = {"repayment_id": posted.id, "loan_id": target.loan.id}
            words = f"Repayment {posted.id} on loan {target.loan.id}"
        else:
            posted = post_contribution(
                target.member.id,
                amount,
                ContributionKind.DEPOSIT,
                PaymentMethod.MPESA,
                reference,
                actor,
                paid_on,
            )
            credited = {"contribution_id": posted.id, "member_id": target.member.id}
            words = f"Deposit contribution {posted.id} of member {target.member.member_number}"
        _close(item, SuspenseStatus.RESOLVED, actor, f"{words}." + (f" {note}" if note else ""))
        if item.transaction_id is not None:
            # The held transaction is settled by this credit: it leaves the review list.
            link = {k: v for k, v in credited.items() if k in ("repayment_id", "contribution_id")}
            move(item.transaction_id, (MpesaStatus.HELD,), MpesaStatus.COMPLETED, **link)
    except ServiceError:
        db.session.rollback()
        raise
    audit.record(
        actor,
        "mpesa_suspense.resolved",
        "mpesa_suspense_item",
        item.id,
        receipt=receipt,
        amount=f"{amount:.2f}",
        note=note,
        **credited,
    )
    db.session.commit()
    return db.session.get(SuspenseItem, item_id)


def dismiss(item_id: int, actor: Actor, note: str | None) -> SuspenseItem:
    """Close an open item without crediting anything (a refund, a test payment...), saying why
    (required). Audited; commits."""
    note = _clean_note(note, required=True)
    item = get_item(item_id)
    check_open(item)
    _close(item, SuspenseStatus.DISMISSED, actor, note)
    audit.record(
        actor,
        "mpesa_suspense.dismissed",
        "mpesa_suspense_item",
        item.id,
        receipt=item.receipt,
        amount=f"{item.amount:.2f}",
        note=note,
    )
    db.session.commit()
    return db.session.get(SuspenseItem, item_id)
