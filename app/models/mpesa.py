"""M-Pesa: every request we send and every payment Safaricom tells us of (one row each, the old
`daystar_mpesa_transactions` columns), the raw callbacks as they arrived (the inbox), the suspense
queue, and statement reconciliations."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import Money, TimestampMixin, UTCDateTime, utcnow

MONEY = Numeric(15, 2, asdecimal=True)  # for the nullable amounts


class MpesaType(StrEnum):
    STK_PUSH = "stk_push"  # a member pays in after a prompt on the phone
    B2C = "b2c"  # a loan paid out to the member's phone
    C2B = "c2b"  # a member paid the paybill on their own


class MpesaStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # a large disbursement waits for a second staff member
    QUEUED = "queued"  # recorded; its job has not sent it yet
    PENDING = "pending"  # being sent or sent to Safaricom; the callback has not come
    UNKNOWN = "unknown"  # Safaricom may or may not have moved the money: ask, never resend
    HELD = "held"  # the callback does not match what we sent: nothing credited, staff review
    COMPLETED = "completed"
    FAILED = "failed"


# Statuses from which a transaction may still change; the others are final.
OPEN_STATUSES = (
    MpesaStatus.AWAITING_APPROVAL,
    MpesaStatus.QUEUED,
    MpesaStatus.PENDING,
    MpesaStatus.UNKNOWN,
    MpesaStatus.HELD,
)
# While a disbursement of a loan is in one of these, no other may start (a partial unique index).
LIVE_DISBURSEMENT = (
    MpesaStatus.AWAITING_APPROVAL,
    MpesaStatus.QUEUED,
    MpesaStatus.PENDING,
    MpesaStatus.UNKNOWN,
    MpesaStatus.HELD,
    MpesaStatus.COMPLETED,
)


class PaymentPurpose(StrEnum):
    LOAN_REPAYMENT = "loan_repayment"
    CONTRIBUTION = "contribution"
    DISBURSEMENT = "disbursement"


class Verification(StrEnum):
    NOT_REQUIRED = "not_required"
    PENDING = "pending"  # confirming with STK Query / Transaction Status before crediting
    VERIFIED = "verified"
    MISMATCH = "mismatch"


_live = ", ".join(f"'{s}'" for s in LIVE_DISBURSEMENT)
_one_live_disbursement = text(f"transaction_type = 'b2c' AND status IN ({_live})")


class MpesaTransaction(TimestampMixin, db.Model):
    __tablename__ = "mpesa_transactions"
    __table_args__ = (
        # A loan has at most one disbursement that is waiting, running or done: a second click or a
        # second officer fails in the database.
        Index(
            "uq_mpesa_transactions_one_live_disbursement",
            "loan_id",
            unique=True,
            sqlite_where=_one_live_disbursement,
            postgresql_where=_one_live_disbursement,
        ),
        # The duplicate-push check and the member page look up a member's recent requests.
        Index("ix_mpesa_transactions_member_created", "member_id", "created_at"),
        # The hourly job looks for open requests by type and age.
        Index("ix_mpesa_transactions_open", "status", "transaction_type", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_type: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=MpesaStatus.QUEUED)
    environment: Mapped[str] = mapped_column(String(12))
    merchant_request_id: Mapped[str | None] = mapped_column(String(100), index=True)
    checkout_request_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # Ours for B2C (the disbursement's own id), sent to Safaricom and echoed back.
    originator_conversation_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    transaction_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # One receipt, one money movement, whichever channel told us (STK, C2B, B2C, statement).
    mpesa_receipt_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    phone_number: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Money]
    account_reference: Mapped[str | None] = mapped_column(String(40), index=True)
    description: Mapped[str | None] = mapped_column(String(100))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    payment_purpose: Mapped[str | None] = mapped_column(String(20))
    contribution_kind: Mapped[str | None] = mapped_column(String(14))
    result_code: Mapped[str | None] = mapped_column(String(20))
    result_desc: Mapped[str | None] = mapped_column(Text)
    verification: Mapped[str] = mapped_column(String(12), default=Verification.NOT_REQUIRED)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    recipient_name: Mapped[str | None] = mapped_column(String(120))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_checks: Mapped[int] = mapped_column(Integer, default=0)
    # The ConversationID of our latest Transaction Status query about this transaction.
    status_query_id: Mapped[str | None] = mapped_column(String(100), index=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    repayment_id: Mapped[int | None] = mapped_column(ForeignKey("repayments.id"))
    contribution_id: Mapped[int | None] = mapped_column(ForeignKey("contributions.id"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    member = relationship("Member", lazy="raise")
    loan = relationship("Loan", lazy="raise")
    callbacks = relationship(
        "MpesaCallback",
        lazy="raise",
        order_by="MpesaCallback.id",
        back_populates="transaction",
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class CallbackKind(StrEnum):
    STK = "stk"
    B2C_RESULT = "b2c_result"
    B2C_TIMEOUT = "b2c_timeout"
    STATUS_RESULT = "status_result"
    STATUS_TIMEOUT = "status_timeout"
    BALANCE_RESULT = "balance_result"
    BALANCE_TIMEOUT = "balance_timeout"
    C2B_VALIDATION = "c2b_validation"
    C2B_CONFIRMATION = "c2b_confirmation"


class CallbackState(StrEnum):
    RECEIVED = "received"  # stored, waiting for its job
    PROCESSED = "processed"  # applied to its transaction
    DUPLICATE = "duplicate"  # the transaction had already been settled: nothing changed
    HELD = "held"  # does not match what we sent: nothing credited, in the suspense queue
    UNMATCHED = "unmatched"  # no request of ours has these ids: nothing credited
    MALFORMED = "malformed"  # not JSON, or required fields missing: nothing done


class MpesaCallback(db.Model):
    """A callback exactly as it arrived, stored before anything reads it."""

    __tablename__ = "mpesa_callbacks"
    __table_args__ = (Index("ix_mpesa_callbacks_state_received", "state", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(45))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(12), default=CallbackState.RECEIVED)
    outcome: Mapped[str | None] = mapped_column(Text)  # what processing did, in words
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The ids the callback names, copied out at storage time so it can be found before processing.
    correlation_id: Mapped[str | None] = mapped_column(String(100), index=True)
    transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("mpesa_transactions.id"), index=True
    )

    transaction = relationship("MpesaTransaction", lazy="raise", back_populates="callbacks")


class SuspenseStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # credited to a member or loan by staff
    DISMISSED = "dismissed"  # not ours to credit (refunded, a test, a charge)


class SuspenseItem(TimestampMixin, db.Model):
    """Money M-Pesa says arrived that we could not credit automatically, waiting for a person."""

    __tablename__ = "mpesa_suspense_items"
    __table_args__ = (Index("ix_mpesa_suspense_items_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # callback, c2b, statement
    receipt: Mapped[str | None] = mapped_column(String(20), unique=True)
    amount: Mapped[Money]
    phone_number: Mapped[str | None] = mapped_column(String(64))
    account_reference: Mapped[str | None] = mapped_column(String(40))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=SuspenseStatus.OPEN)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("mpesa_transactions.id"))
    callback_id: Mapped[int | None] = mapped_column(ForeignKey("mpesa_callbacks.id"))
    reconciliation_id: Mapped[int | None] = mapped_column(ForeignKey("mpesa_reconciliations.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReconciliationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class MpesaReconciliation(db.Model):
    """One uploaded org-portal statement and what matching it against our records found."""

    __tablename__ = "mpesa_reconciliations"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    statement: Mapped[str] = mapped_column(Text)  # the file as uploaded, so the job can re-read it
    status: Mapped[str] = mapped_column(String(10), default=ReconciliationStatus.QUEUED)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def progress_percent(self) -> int:
        if self.status == ReconciliationStatus.FINISHED:
            return 100
        return int(self.rows_done * 100 / self.rows_total) if self.rows_total else 0


class Discrepancy(StrEnum):
    MATCHED = "matched"
    NOT_IN_SYSTEM = "not_in_system"  # in the statement, not in our records
    NOT_IN_STATEMENT = "not_in_statement"  # in our records as completed, not in the statement
    AMOUNT_MISMATCH = "amount_mismatch"
    CHARGE = "charge"  # Safaricom's fee rows


class ReconciliationItem(db.Model):
    __tablename__ = "mpesa_reconciliation_items"
    __table_args__ = (
        Index("ix_mpesa_reconciliation_items_run_category", "reconciliation_id", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(ForeignKey("mpesa_reconciliations.id"))
    category: Mapped[str] = mapped_column(String(20))
    receipt: Mapped[str | None] = mapped_column(String(20))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    details: Mapped[str | None] = mapped_column(String(255))
    other_party: Mapped[str | None] = mapped_column(String(120))
    account_number: Mapped[str | None] = mapped_column(String(40))
    statement_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    system_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("mpesa_transactions.id"))
    suspense_item_id: Mapped[int | None] = mapped_column(ForeignKey("mpesa_suspense_items.id"))
