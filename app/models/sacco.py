"""The SACCO's records: members, loan products, loans and their schedules, repayments and
contributions."""

import hashlib
from datetime import date
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.extensions import db
from app.models.base import Money, Rate, TimestampMixin


def _in(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in enum)})"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    DORMANT = "dormant"
    EXITED = "exited"


class InterestMethod(StrEnum):
    REDUCING_BALANCE = "reducing_balance"
    FLAT = "flat"


class LoanStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    ACTIVE = "active"
    COMPLETED = "completed"
    DEFAULTED = "defaulted"
    WRITTEN_OFF = "written_off"


class PaymentMethod(StrEnum):
    MPESA = "mpesa"
    CASH = "cash"
    BANK = "bank"
    CHECKOFF = "checkoff"


class ContributionKind(StrEnum):
    DEPOSIT = "deposit"
    SHARE_CAPITAL = "share_capital"


class InstallmentStatus(StrEnum):
    DUE = "due"
    PARTIAL = "partial"
    PAID = "paid"


def phone_sha256(phone: str | None) -> str | None:
    """The hex SHA-256 of a 2547... number, as M-Pesa sends a hashed MSISDN."""
    return hashlib.sha256(phone.encode()).hexdigest() if phone else None


class Member(TimestampMixin, db.Model):
    __tablename__ = "members"
    __table_args__ = (CheckConstraint(_in("status", MemberStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # DST + 6 digits, derived from the id once the row has one (see services.members).
    member_number: Mapped[str | None] = mapped_column(String(12), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str] = mapped_column(String(12), index=True)
    # sha256 of the phone as M-Pesa hashes paybill payers' numbers, to recognise them.
    phone_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    national_id: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=MemberStatus.ACTIVE, index=True)
    joined_on: Mapped[date] = mapped_column(Date, index=True)
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=True)
    email_opt_in: Mapped[bool] = mapped_column(Boolean, default=True)
    # Lower-case "first last" for prefix search on either name.
    search_name: Mapped[str] = mapped_column(String(161), index=True)
    search_last_name: Mapped[str] = mapped_column(String(80), index=True)

    loans: Mapped[list["Loan"]] = relationship(back_populates="member", order_by="Loan.id.desc()")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @validates("phone")
    def _hash_phone(self, _key, phone: str) -> str:
        self.phone_sha256 = phone_sha256(phone)
        return phone


class LoanProduct(TimestampMixin, db.Model):
    __tablename__ = "loan_products"
    __table_args__ = (
        CheckConstraint(_in("interest_method", InterestMethod), name="interest_method"),
        CheckConstraint("min_amount > 0 AND max_amount >= min_amount", name="amount_range"),
        CheckConstraint("min_term_months > 0 AND max_term_months >= min_term_months", name="term"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    interest_rate: Mapped[Rate]
    interest_method: Mapped[str] = mapped_column(String(20))
    min_amount: Mapped[Money]
    max_amount: Mapped[Money]
    min_term_months: Mapped[int] = mapped_column(Integer)
    max_term_months: Mapped[int] = mapped_column(Integer)
    processing_fee_rate: Mapped[Rate] = mapped_column(default=Decimal("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Loan(TimestampMixin, db.Model):
    __tablename__ = "loans"
    __table_args__ = (
        CheckConstraint(_in("status", LoanStatus), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("paid_amount >= 0 AND balance >= 0", name="not_negative"),
        Index("ix_loans_status_id", "status", "id"),
        Index("ix_loans_application_date_id", "application_date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    member_number: Mapped[str] = mapped_column(String(12))
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_products.id"), index=True)
    amount: Mapped[Money]
    interest_rate: Mapped[Rate]
    interest_method: Mapped[str] = mapped_column(String(20))
    term_months: Mapped[int] = mapped_column(Integer)
    monthly_payment: Mapped[Money]
    total_payable: Mapped[Money]
    processing_fee: Mapped[Money] = mapped_column(default=Decimal("0.00"))
    paid_amount: Mapped[Money] = mapped_column(default=Decimal("0.00"))
    balance: Mapped[Money]
    status: Mapped[str] = mapped_column(String(12), default=LoanStatus.PENDING)
    application_date: Mapped[date] = mapped_column(Date)
    approval_date: Mapped[date | None] = mapped_column(Date)
    disbursement_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    purpose: Mapped[str] = mapped_column(String(200))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    disbursement_method: Mapped[str | None] = mapped_column(String(10))
    disbursement_reference: Mapped[str | None] = mapped_column(String(40), unique=True)
    closed_on: Mapped[date | None] = mapped_column(Date)

    member: Mapped[Member] = relationship(back_populates="loans")
    product: Mapped[LoanProduct] = relationship()
    decided_by: Mapped["StaffUser | None"] = relationship()  # noqa: F821
    installments: Mapped[list["LoanInstallment"]] = relationship(
        back_populates="loan", order_by="LoanInstallment.number", cascade="all, delete-orphan"
    )
    repayments: Mapped[list["Repayment"]] = relationship(
        back_populates="loan", order_by="Repayment.id"
    )


class LoanInstallment(db.Model):
    __tablename__ = "loan_installments"
    __table_args__ = (
        UniqueConstraint("loan_id", "number"),
        CheckConstraint(_in("status", InstallmentStatus), name="status"),
        Index("ix_loan_installments_due_open", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    number: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    principal: Mapped[Money]
    interest: Mapped[Money]
    amount: Mapped[Money]
    principal_paid: Mapped[Money] = mapped_column(default=Decimal("0.00"))
    interest_paid: Mapped[Money] = mapped_column(default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(8), default=InstallmentStatus.DUE)
    paid_on: Mapped[date | None] = mapped_column(Date)

    loan: Mapped[Loan] = relationship(back_populates="installments")

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.principal_paid - self.interest_paid


class Repayment(TimestampMixin, db.Model):
    __tablename__ = "repayments"
    __table_args__ = (
        UniqueConstraint("method", "reference"),
        CheckConstraint(_in("method", PaymentMethod), name="method"),
        # ROUND: SQLite keeps NUMERIC as binary floating point, where a sum may be off by 1e-12.
        CheckConstraint(
            "amount > 0 AND ROUND(amount - principal_amount - interest_amount, 2) = 0", name="split"
        ),
        Index("ix_repayments_paid_on_id", "paid_on", "id"),
        # Covers the financial summary's repayment figures: an index-only range scan by date
        # instead of a table lookup per repayment.
        Index(
            "ix_repayments_paid_on_amounts",
            "paid_on",
            "amount",
            "principal_amount",
            "interest_amount",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    amount: Mapped[Money]
    principal_amount: Mapped[Money]
    interest_amount: Mapped[Money]
    method: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str | None] = mapped_column(String(40))
    paid_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    loan: Mapped[Loan] = relationship(back_populates="repayments")
    member: Mapped[Member] = relationship()
    recorded_by: Mapped["StaffUser | None"] = relationship()  # noqa: F821


class Contribution(TimestampMixin, db.Model):
    __tablename__ = "contributions"
    __table_args__ = (
        UniqueConstraint("method", "reference"),
        CheckConstraint(_in("method", PaymentMethod), name="method"),
        CheckConstraint(_in("kind", ContributionKind), name="kind"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_contributions_paid_on_id", "paid_on", "id"),
        # Covers the financial summary's contribution figures (see Repayment).
        Index("ix_contributions_paid_on_kind_amount", "paid_on", "kind", "amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    amount: Mapped[Money]
    kind: Mapped[str] = mapped_column(String(14))
    method: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str | None] = mapped_column(String(40))
    paid_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    member: Mapped[Member] = relationship()
    recorded_by: Mapped["StaffUser | None"] = relationship()  # noqa: F821


__all__ = [
    "ContributionKind",
    "Contribution",
    "InstallmentStatus",
    "InterestMethod",
    "Loan",
    "LoanInstallment",
    "LoanProduct",
    "LoanStatus",
    "Member",
    "MemberStatus",
    "PaymentMethod",
    "Repayment",
]
