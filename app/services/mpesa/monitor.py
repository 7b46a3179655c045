"""What the M-Pesa pages read: what the settings still lack, open transactions by status, the
transaction list with its filters, and one transaction with its callbacks and audit trail. Reads
only; nothing here changes a row."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from app.clock import NAIROBI
from app.extensions import db
from app.models import (
    AuditLog,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    Setting,
    StaffUser,
)
from app.services.mpesa import balance
from app.services.mpesa.config import MpesaSettings, certificate_bytes

# The statuses the overview counts: what is waiting for M-Pesa or for a person.
WATCHED_STATUSES = (
    MpesaStatus.AWAITING_APPROVAL,
    MpesaStatus.QUEUED,
    MpesaStatus.PENDING,
    MpesaStatus.UNKNOWN,
    MpesaStatus.HELD,
)


def missing_settings(config: MpesaSettings) -> dict[str, list[str]]:
    """For each use of M-Pesa, the settings it still needs (an empty list: ready)."""
    app = []
    if not config.resolved_base_url:
        app.append("base URL (the simulator has none of its own)")
    if not config.consumer_key:
        app.append("consumer key")
    if not config.consumer_secret:
        app.append("consumer secret")
    callbacks = [] if config.public_base_url else ["public base URL"]
    stk = [*app, *([] if config.shortcode else ["shortcode"])]
    stk += [] if config.passkey else ["passkey"]
    has_certificate = bool(config.certificate or config.certificate_path)
    credential = config.security_credential or (config.initiator_password and has_certificate)
    b2c = [*app, *([] if config.b2c_shortcode or config.shortcode else ["B2C shortcode"])]
    b2c += [] if config.initiator_name else ["initiator name"]
    b2c += [] if credential else ["security credential (or initiator password and certificate)"]
    c2b = [*app, *([] if config.shortcode else ["shortcode"])]
    return {
        "STK Push (payments in)": stk + callbacks,
        "B2C (loan disbursements)": b2c + callbacks,
        "Paybill (C2B)": c2b + callbacks,
    }


def certificate_text(config: MpesaSettings) -> tuple[bytes | None, str | None]:
    """The certificate in force (stored, or the file an environment variable names), or why it
    cannot be read."""
    try:
        return certificate_bytes(config), None
    except OSError as exc:
        return (
            None,
            f"The certificate file {config.certificate_path} cannot be read: {exc.strerror}.",
        )


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def last_balance() -> dict | None:
    """The last balances M-Pesa reported, ready to show, or None: {"captured_at" (M-Pesa's
    time), "received_at" (ours), "accounts": {name: {"currency", "current", "available"}}}
    with Decimal amounts."""
    figures = balance.last_known()
    if not figures:
        return None
    try:
        captured = datetime.fromisoformat(figures.get("captured_at") or "")
    except (TypeError, ValueError):
        captured = None
    if captured is not None and captured.tzinfo is None:
        captured = captured.replace(tzinfo=UTC)
    row = db.session.get(Setting, balance.KEY)
    accounts = {
        name: {
            "currency": account.get("currency"),
            "current": _decimal(account.get("current")),
            "available": _decimal(account.get("available")),
        }
        for name, account in (figures.get("accounts") or {}).items()
    }
    return {
        "captured_at": captured,
        "received_at": row.updated_at if row else None,
        "accounts": accounts,
    }


def counts_by_status() -> dict[str, int]:
    """How many transactions are in each watched status (zero included)."""
    rows = db.session.execute(
        select(MpesaTransaction.status, func.count())
        .where(MpesaTransaction.status.in_(WATCHED_STATUSES))
        .group_by(MpesaTransaction.status)
    )
    found = dict(rows.all())
    return {status.value: found.get(status, 0) for status in WATCHED_STATUSES}


def last_callback_at() -> datetime | None:
    """When the latest callback from Safaricom arrived: the newest row by primary key (callbacks
    are stored as they arrive), not a MAX over every row."""
    return db.session.scalar(
        select(MpesaCallback.received_at).order_by(MpesaCallback.id.desc()).limit(1)
    )


@dataclass(frozen=True)
class Filters:
    """The transaction list's filters, already checked (None: no filter)."""

    transaction_type: str | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    phone: str | None = None  # normalised 2547...
    receipt: str | None = None
    member_id: int | None = None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), NAIROBI).astimezone(UTC)


def transactions_query(filters: Filters):
    """Transactions matching `filters`, newest first, each with its member loaded."""
    query = select(MpesaTransaction).options(selectinload(MpesaTransaction.member))
    if filters.transaction_type:
        query = query.where(MpesaTransaction.transaction_type == filters.transaction_type)
    if filters.status:
        query = query.where(MpesaTransaction.status == filters.status)
    if filters.date_from:
        query = query.where(MpesaTransaction.created_at >= _start_of(filters.date_from))
    if filters.date_to:
        end = _start_of(filters.date_to + timedelta(days=1))
        query = query.where(MpesaTransaction.created_at < end)
    if filters.phone:
        query = query.where(MpesaTransaction.phone_number == filters.phone)
    if filters.receipt:
        query = query.where(
            or_(
                MpesaTransaction.mpesa_receipt_number == filters.receipt,
                MpesaTransaction.transaction_id == filters.receipt,
            )
        )
    if filters.member_id:
        query = query.where(MpesaTransaction.member_id == filters.member_id)
    return query.order_by(MpesaTransaction.id.desc())


def transaction_detail(transaction_id: int) -> MpesaTransaction | None:
    """The transaction with its member, loan and callbacks loaded."""
    return db.session.scalar(
        select(MpesaTransaction)
        .where(MpesaTransaction.id == transaction_id)
        .options(
            selectinload(MpesaTransaction.member),
            selectinload(MpesaTransaction.loan),
            selectinload(MpesaTransaction.callbacks),
        )
        .execution_options(populate_existing=True)
    )


def waiting_callbacks(txn: MpesaTransaction) -> list[MpesaCallback]:
    """Callbacks naming the transaction's ids that no job has linked to it yet (still waiting
    to be processed, or unmatched)."""
    ids = {
        txn.checkout_request_id,
        txn.originator_conversation_id,
        txn.conversation_id,
        txn.transaction_id,
        txn.mpesa_receipt_number,
    } - {None, ""}
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(MpesaCallback)
            .where(MpesaCallback.correlation_id.in_(ids), MpesaCallback.transaction_id.is_(None))
            .order_by(MpesaCallback.id)
        )
    )


def audit_trail(transaction_id: int) -> list[AuditLog]:
    """What people and jobs did to the transaction, oldest first."""
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(
                AuditLog.target_type == "mpesa_transaction", AuditLog.target_id == transaction_id
            )
            .order_by(AuditLog.id)
        )
    )


def staff_names(*staff_ids: int | None) -> dict[int, str]:
    """The display name of each staff member among `staff_ids`."""
    wanted = {i for i in staff_ids if i}
    if not wanted:
        return {}
    users = db.session.scalars(select(StaffUser).where(StaffUser.id.in_(wanted)))
    return {user.id: user.display_name for user in users}


def latest_disbursement(loan_id: int) -> MpesaTransaction | None:
    """The loan's most recent M-Pesa disbursement, whatever its status."""
    return db.session.scalar(
        select(MpesaTransaction)
        .where(
            MpesaTransaction.loan_id == loan_id,
            MpesaTransaction.transaction_type == MpesaType.B2C,
        )
        .order_by(MpesaTransaction.id.desc())
        .limit(1)
    )
