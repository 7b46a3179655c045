"""Marshmallow schemas of the accounting API: query strings in, records out.

They are the single description of the wire format: `openapi.operation(query=..., body=...,
responses={...})` validates and renders with them, and the OpenAPI document is generated from
them (apispec's marshmallow plugin). To document a new route, declare its schemas here or in its
own module and pass the classes to `operation` (see the example in `app/blueprints/api/__init__.py`).

Conventions:
- Money is `Money()`: a JSON number with two decimals (`50000.00`), from Decimal, never float.
- Every field of a response record is `required=True`, so the document states that it is always
  present; a value that may be null also has `allow_none=True`.
- Query schemas subclass `QuerySchema`; a field's `metadata={"description": ...}` is the
  parameter's description in the document. Use `load_default` (marshmallow 4), not `missing`.
- Ids are bounded by `ID_MAX` (the database's integer), so no input reaches SQL out of range.
"""

import re
from datetime import UTC, datetime
from decimal import Decimal

from marshmallow import (
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    pre_load,
    validates_schema,
)
from marshmallow.validate import Length, OneOf, Range

from app.blueprints.api import ID_MAX
from app.hooks import extend_api_loan_data, plugin_manager
from app.models import ContributionKind, LoanStatus, MemberStatus, PaymentMethod

SEQUENCE_MAX = 2**63 - 1
CENT = Decimal("0.01")
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 100
CURSOR_MAX_LENGTH = 200


# ----- fields -------------------------------------------------------------------------------


class Money(fields.Decimal):
    """A sum of money: a JSON number with exactly two decimals."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("example", 50000.00)
        super().__init__(places=2, as_string=False, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if type(value) is Decimal and value.is_finite():  # the common case, made cheap
            return value.quantize(CENT)
        return super()._serialize(value, attr, obj, **kwargs)


class Rate(fields.Decimal):
    """A percentage rate: two decimals at least (12.00), more only when the rate has them."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("example", 12.00)
        super().__init__(as_string=False, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        value = Decimal(value)
        cents = value.quantize(CENT)
        return cents if cents == value else value.normalize()


class Id(fields.Integer):
    def __init__(self, **kwargs):
        super().__init__(strict=False, validate=Range(1, ID_MAX), **kwargs)


class Day(fields.Date):
    """A calendar date, YYYY-MM-DD."""

    def __init__(self, **kwargs):
        kwargs.setdefault("error_messages", {})["invalid"] = "Not a date: use YYYY-MM-DD."
        super().__init__(format="iso", **kwargs)


_SPACED_OFFSET = re.compile(r"(?<=\d) (\d{2}:?\d{2})$")


class Instant(fields.AwareDateTime):
    """An ISO 8601 date-time; without an offset it is taken as UTC. Read back in UTC (a value
    whose UTC equivalent falls outside the calendar is clamped to its first or last instant)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("error_messages", {})["invalid"] = (
            "Not an ISO 8601 date-time: use e.g. 2026-01-31T09:30:00Z."
        )
        super().__init__(format="iso", default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.isprintable() or not value.isascii():
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        # An unencoded "+03:00" arrives as " 03:00" (a query string's + is a space).
        value = _SPACED_OFFSET.sub(r"+\1", value)
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            return (
                datetime.min.replace(tzinfo=UTC)
                if moment.year == 1
                else datetime.max.replace(tzinfo=UTC)
            )


# ----- problems -----------------------------------------------------------------------------


class Problem(Schema):
    class Meta:
        description = "RFC 9457 problem details (application/problem+json)."

    type = fields.String(required=True, metadata={"format": "uri"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "Each bad parameter or field, and what is wrong with it."},
    )


# ----- queries ------------------------------------------------------------------------------


class QuerySchema(Schema):
    """Base of the query-string schemas. Unknown parameters are refused (400) under
    /api/accounting/v1 and ignored under the previous system's /wp-json path, as WordPress did."""


class PagedQuery(QuerySchema):
    """`page`, `per_page` and `cursor` (see app.blueprints.api.paging), for a list to inherit."""

    page = fields.Integer(
        load_default=1,
        validate=Range(1, ID_MAX),
        metadata={"description": "Page number, from 1. Not together with `cursor`."},
    )
    per_page = fields.Integer(
        load_default=PER_PAGE_DEFAULT,
        validate=Range(1, PER_PAGE_MAX),
        metadata={"description": f"Items per page (at most {PER_PAGE_MAX})."},
    )
    cursor = fields.String(
        validate=Length(1, CURSOR_MAX_LENGTH),
        metadata={
            "description": 'Opaque: copy it from the `Link: rel="next"` URL, which also carries '
            "the filters and `per_page` it was issued for (with another list, other filters or "
            "another page size it is a 400). The page is then read after the last record sent, "
            "without counting or skipping rows again, and `pagination.total_items` is the total "
            "counted on the first page. Not together with `page`."
        },
    )

    @pre_load
    def _page_or_cursor(self, data, **kwargs):
        if "page" in data and "cursor" in data:
            raise ValidationError(
                "Send either page or cursor, not both: a cursor already names its page.", "cursor"
            )
        return data

    @validates_schema
    def _cursor_pages_json(self, data, **kwargs):
        if "cursor" in data and data.get("format", "json") != "json":
            raise ValidationError(
                "format=csv streams every matching row; a cursor pages JSON only.", "cursor"
            )


class ListQuery(PagedQuery):
    format = fields.String(
        load_default="json",
        validate=OneOf(["json", "csv"]),
        metadata={
            "description": "json (paged) or csv: every matching row, streamed, same filters; "
            "page and per_page do not apply, and cursor is refused."
        },
    )
    updated_since = Instant(
        metadata={"description": "Only records changed at or after this ISO 8601 date-time."}
    )


def _date_range(on: str):
    return {
        "date_from": Day(metadata={"description": f"Only records with {on} on or after this."}),
        "date_to": Day(metadata={"description": f"Only records with {on} on or before this."}),
    }


class LoanQuery(ListQuery):
    status = fields.String(validate=OneOf([s.value for s in LoanStatus]))
    member_id = Id()
    product_id = Id()
    date_from, date_to = _date_range("application_date").values()


class RepaymentQuery(ListQuery):
    loan_id = Id()
    member_id = Id()
    date_from, date_to = _date_range("paid_on").values()


class ContributionQuery(ListQuery):
    member_id = Id()
    kind = fields.String(validate=OneOf([k.value for k in ContributionKind]))
    date_from, date_to = _date_range("paid_on").values()


class MemberQuery(ListQuery):
    status = fields.String(validate=OneOf([s.value for s in MemberStatus]))
    date_from, date_to = _date_range("joined_on").values()


class EventQuery(QuerySchema):
    after_sequence = fields.Integer(
        load_default=0,
        validate=Range(0, SEQUENCE_MAX),
        metadata={"description": "Return events whose sequence is greater than this."},
    )
    limit = fields.Integer(
        load_default=100,
        validate=Range(1, 1000),
        metadata={"description": "At most this many events (1 to 1000)."},
    )


PERIODS = ("daily", "weekly", "monthly", "quarterly", "yearly")


class SummaryQuery(QuerySchema):
    period = fields.String(load_default="monthly", validate=OneOf(PERIODS))
    date_from = Day(
        metadata={"description": "First day covered (default: the start of a recent range)."}
    )
    date_to = Day(metadata={"description": "Last day covered (default: today, Nairobi time)."})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("date_to must not be before date_from.", "date_to")


# ----- records ------------------------------------------------------------------------------


class LoanRecord(Schema):
    class Meta:
        # Plugins may add fields through the `daystar_api_loan_data` hook.
        unknown = INCLUDE

    id = fields.Integer(required=True)
    member_id = fields.Integer(required=True)
    member_number = fields.String(required=True)
    product_id = fields.Integer(required=True)
    amount = Money(required=True)
    interest_rate = Rate(required=True, metadata={"description": "Percent a year."})
    term_months = fields.Integer(required=True)
    monthly_payment = Money(required=True)
    total_payable = Money(required=True)
    paid_amount = Money(required=True)
    balance = Money(required=True)
    status = fields.String(required=True, validate=OneOf([s.value for s in LoanStatus]))
    application_date = fields.Date(required=True)
    approval_date = fields.Date(required=True, allow_none=True)
    disbursement_date = fields.Date(required=True, allow_none=True)
    due_date = fields.Date(required=True, allow_none=True)
    purpose = fields.String(required=True)
    updated_at = fields.DateTime(required=True)

    def post_dump_wanted(self) -> bool:
        """Whether a plugin adds fields (asked once per list by the API's Dumper)."""
        return bool(plugin_manager().hook.daystar_api_loan_data.get_hookimpls())

    @post_dump(pass_original=True)
    def _plugin_fields(self, data, loan, **kwargs):
        if not self.post_dump_wanted():
            return data
        return extend_api_loan_data(data, loan)


class RepaymentRecord(Schema):
    id = fields.Integer(required=True)
    loan_id = fields.Integer(required=True)
    member_id = fields.Integer(required=True)
    amount = Money(required=True)
    principal_amount = Money(required=True)
    interest_amount = Money(required=True)
    method = fields.String(required=True, validate=OneOf([m.value for m in PaymentMethod]))
    reference = fields.String(
        required=True, allow_none=True, metadata={"description": "E.g. the M-Pesa receipt."}
    )
    paid_on = fields.Date(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class ContributionRecord(Schema):
    id = fields.Integer(required=True)
    member_id = fields.Integer(required=True)
    amount = Money(required=True)
    kind = fields.String(required=True, validate=OneOf([k.value for k in ContributionKind]))
    method = fields.String(required=True, validate=OneOf([m.value for m in PaymentMethod]))
    reference = fields.String(required=True, allow_none=True)
    paid_on = fields.Date(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class MemberRecord(Schema):
    id = fields.Integer(required=True)
    member_number = fields.String(required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    phone = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    national_id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf([s.value for s in MemberStatus]))
    joined_on = fields.Date(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class Pagination(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total_items = fields.Integer(required=True)
    total_pages = fields.Integer(required=True)


def list_schema(key: str, record: type[Schema]) -> type[Schema]:
    """The previous system's list envelope: `{key: [records], "pagination": {...}}`."""
    name = record.__name__.removesuffix("Record") + "List"
    return Schema.from_dict(
        {
            key: fields.List(fields.Nested(record), required=True),
            "pagination": fields.Nested(Pagination, required=True),
        },
        name=name,
    )


LoanList = list_schema("loans", LoanRecord)
RepaymentList = list_schema("repayments", RepaymentRecord)
ContributionList = list_schema("contributions", ContributionRecord)
MemberList = list_schema("members", MemberRecord)


class Installment(Schema):
    number = fields.Integer(required=True)
    due_date = fields.Date(required=True)
    principal = Money(required=True)
    interest = Money(required=True)
    amount = Money(required=True)
    principal_paid = Money(required=True)
    interest_paid = Money(required=True)
    status = fields.String(required=True, validate=OneOf(["due", "partial", "paid"]))
    paid_on = fields.Date(required=True, allow_none=True)


class LoanSchedule(Schema):
    basis = fields.String(
        required=True,
        validate=OneOf(["stored", "projected", "none"]),
        metadata={
            "description": "stored: the loan's instalments since disbursement; projected: what "
            "they would be if disbursed today (pending or approved loans); none: a declined loan."
        },
    )
    installments = fields.List(fields.Nested(Installment), required=True)


class LoanDetail(LoanRecord):
    repayments = fields.List(fields.Nested(RepaymentRecord), required=True)
    schedule = fields.Nested(LoanSchedule, required=True)


class EventRecord(Schema):
    id = fields.String(
        required=True, metadata={"description": "The message id webhooks carry (webhook-id)."}
    )
    type = fields.String(required=True)
    sequence = fields.Integer(required=True)
    timestamp = fields.String(
        required=True, metadata={"format": "date-time", "description": "When it happened."}
    )
    data = fields.Dict(
        required=True,
        metadata={"description": "The record, as in webhooks (money as two-decimal strings)."},
    )


class EventFeed(Schema):
    events = fields.List(fields.Nested(EventRecord), required=True)
    next_after_sequence = fields.Integer(
        required=True,
        metadata={"description": "Pass as after_sequence to read on (unchanged when empty)."},
    )
    has_more = fields.Boolean(required=True)


# ----- financial summary --------------------------------------------------------------------


class Figures(Schema):
    count = fields.Integer(required=True)
    amount = Money(required=True)


class RepaymentFigures(Figures):
    principal = Money(required=True)
    interest = Money(required=True)


class ContributionFigures(Schema):
    deposit = fields.Nested(Figures, required=True)
    share_capital = fields.Nested(Figures, required=True)
    total = fields.Nested(Figures, required=True)


def _summary_figures() -> dict:
    return {
        "loans_disbursed": fields.Nested(
            Figures, required=True, metadata={"description": "By disbursement date."}
        ),
        "repayments": fields.Nested(
            RepaymentFigures, required=True, metadata={"description": "By payment date."}
        ),
        "contributions": fields.Nested(
            ContributionFigures, required=True, metadata={"description": "By payment date."}
        ),
        "new_members": fields.Integer(required=True, metadata={"description": "By joining date."}),
    }


SummaryFigures = Schema.from_dict(_summary_figures(), name="SummaryFigures")
SummaryBucket = Schema.from_dict(
    {
        "start": fields.Date(required=True, metadata={"description": "First day counted."}),
        "end": fields.Date(required=True, metadata={"description": "Last day counted."}),
        **_summary_figures(),
    },
    name="SummaryBucket",
)


class PortfolioSnapshot(Schema):
    as_of = fields.Date(required=True, metadata={"description": "Today: the current state."})
    active_loans = fields.Integer(required=True)
    defaulted_loans = fields.Integer(required=True)
    outstanding_balance = Money(
        required=True, metadata={"description": "Balance of active and defaulted loans."}
    )
    par30_balance = Money(
        required=True,
        metadata={
            "description": "Portfolio at risk: balance of those loans with an instalment unpaid "
            "more than 30 days after its due date."
        },
    )
    par30_ratio = fields.Decimal(
        required=True,
        places=4,
        as_string=False,
        metadata={"description": "par30_balance / outstanding_balance (0 when none)."},
    )


class FinancialSummary(Schema):
    period = fields.String(required=True, validate=OneOf(PERIODS))
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)
    currency = fields.String(required=True)
    buckets = fields.List(fields.Nested(SummaryBucket), required=True)
    totals = fields.Nested(SummaryFigures, required=True)
    snapshot = fields.Nested(PortfolioSnapshot, required=True)
