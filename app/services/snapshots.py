"""JSON snapshots of records for outbox events: money as two-decimal strings, dates as ISO text."""

from datetime import date, datetime
from decimal import Decimal


def _plain(value):
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _pick(obj, fields) -> dict:
    return {name: _plain(getattr(obj, name)) for name in fields}


MEMBER_FIELDS = (
    "id",
    "member_number",
    "first_name",
    "last_name",
    "phone",
    "email",
    "national_id",
    "status",
    "joined_on",
    "sms_opt_in",
    "email_opt_in",
    "created_at",
    "updated_at",
)
LOAN_FIELDS = (
    "id",
    "member_id",
    "member_number",
    "product_id",
    "amount",
    "interest_rate",
    "term_months",
    "monthly_payment",
    "total_payable",
    "paid_amount",
    "balance",
    "status",
    "application_date",
    "approval_date",
    "disbursement_date",
    "due_date",
    "purpose",
    "updated_at",
)
REPAYMENT_FIELDS = (
    "id",
    "loan_id",
    "member_id",
    "amount",
    "principal_amount",
    "interest_amount",
    "method",
    "reference",
    "paid_on",
    "created_at",
)
CONTRIBUTION_FIELDS = (
    "id",
    "member_id",
    "amount",
    "kind",
    "method",
    "reference",
    "paid_on",
    "created_at",
)


def member(obj) -> dict:
    return _pick(obj, MEMBER_FIELDS)


def loan(obj) -> dict:
    return _pick(obj, LOAN_FIELDS)


def repayment(obj) -> dict:
    return _pick(obj, REPAYMENT_FIELDS)


def contribution(obj) -> dict:
    return _pick(obj, CONTRIBUTION_FIELDS)
