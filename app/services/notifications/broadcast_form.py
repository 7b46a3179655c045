"""A broadcast's form, checked: who it goes to (the member filters, and the live count of who
each channel reaches) and what it says (its own text, or a notice template filled in), rendered
for one member after another in the template sandbox. The lifecycle is broadcasts.py's."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import and_, case, false, func, or_, select

from app import clock
from app.clock import NAIROBI
from app.extensions import db
from app.models import (
    Broadcast,
    Channel,
    Loan,
    LoanInstallment,
    LoanStatus,
    Member,
    MemberStatus,
    Priority,
    Suppression,
)
from app.services.errors import ValidationFailed
from app.services.notifications.default_templates import sample_context
from app.services.notifications.gateway import CHANNELS, MAX_MESSAGE, MAX_SUBJECT
from app.services.notifications.reminders import MEMBER_COLUMNS, OPEN, _member
from app.services.notifications.sms_text import SmsShape, shape
from app.services.notifications.templates import (
    Message,
    Renderer,
    Source,
    TemplateProblem,
    branding,
    render_source,
)

KIND = "broadcast"  # notification_type and template of a broadcast written for the occasion
MAX_NAME = 120
MAX_MEMBER_NUMBERS = 1000
TEMPLATES = {
    "": "My own message",
    "policy_change": "Policy change (template)",
    "maintenance_notice": "Maintenance notice (template)",
    "account_update": "Account update (template)",
}
CHANNEL_LABELS = {"both": "SMS and email", "sms": "SMS only", "email": "Email only"}
PRIORITIES = {Priority.NORMAL: "Normal", Priority.LOW: "Low: after other messages"}
STATUSES = {
    MemberStatus.ACTIVE: "Active members",
    MemberStatus.DORMANT: "Dormant members",
    MemberStatus.EXITED: "Exited members",
    "any": "Members of any status",
}
LOANS = {
    "": "with or without a loan",
    "with_loan": "with an active loan",
    "overdue": "with an overdue instalment",
    "without_loan": "without an active loan",
}
LIVE_LOAN = (LoanStatus.ACTIVE, LoanStatus.DEFAULTED)
# A template's problem is shown next to the form field it comes from.
FIELD_OF_PROBLEM = {"email_subject": "subject"}


# --- what the form says -------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Who a broadcast goes to, and on which channels."""

    channel: str = "both"
    status: str = MemberStatus.ACTIVE
    loans: str = ""
    joined_from: date | None = None
    joined_to: date | None = None
    member_numbers: tuple[str, ...] = ()

    def filters(self) -> dict:
        """The filters as stored in Broadcast.filters (JSON)."""
        return {
            "status": str(self.status),
            "loans": self.loans,
            "joined_from": self.joined_from.isoformat() if self.joined_from else None,
            "joined_to": self.joined_to.isoformat() if self.joined_to else None,
            "member_numbers": list(self.member_numbers),
        }

    @classmethod
    def of(cls, broadcast: Broadcast) -> "Audience":
        stored = broadcast.filters or {}
        return cls(
            channel=broadcast.channel,
            status=stored.get("status") or MemberStatus.ACTIVE,
            loans=stored.get("loans") or "",
            joined_from=_iso_date(stored.get("joined_from")),
            joined_to=_iso_date(stored.get("joined_to")),
            member_numbers=tuple(stored.get("member_numbers") or ()),
        )

    def describe(self) -> list[str]:
        """The filters in words, for the pages."""
        words = [f"{STATUSES.get(self.status, self.status)} {LOANS.get(self.loans, '')}".strip()]
        if self.joined_from and self.joined_to:
            words.append(f"joined {_day(self.joined_from)} – {_day(self.joined_to)}")
        elif self.joined_from:
            words.append(f"joined on or after {_day(self.joined_from)}")
        elif self.joined_to:
            words.append(f"joined on or before {_day(self.joined_to)}")
        if self.member_numbers:
            shown = ", ".join(self.member_numbers[:5])
            more = len(self.member_numbers) - 5
            words.append(f"members {shown}" + (f" and {more:,} more" if more > 0 else ""))
        return words


@dataclass(frozen=True)
class Content:
    """What a broadcast says: its own text, or a notice template filled in."""

    name: str
    message: str
    template: str | None = None
    subject: str | None = None
    effective_on: date | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    priority: str = Priority.NORMAL

    @classmethod
    def of(cls, broadcast: Broadcast) -> "Content":
        return cls(
            name=broadcast.name,
            message=broadcast.message,
            template=broadcast.template,
            subject=broadcast.subject,
            effective_on=broadcast.effective_on,
            starts_at=broadcast.starts_at,
            ends_at=broadcast.ends_at,
            priority=broadcast.priority,
        )


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _iso_date(value) -> date | None:
    return date.fromisoformat(value) if value else None


def _text(values: Mapping, name: str) -> str:
    # PostgreSQL refuses NUL characters in text: they are dropped, never a 500.
    return str(values.get(name) or "").replace("\x00", "").strip()


def _date(values: Mapping, name: str, errors: dict) -> date | None:
    raw = _text(values, name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a date as YYYY-MM-DD."
        return None


def _nairobi_time(values: Mapping, name: str, errors: dict) -> datetime | None:
    raw = _text(values, name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or not 2000 <= moment.year <= 2100:
        errors[name] = "Enter a date and time, e.g. 2026-12-06 22:00 (Nairobi time)."
        return None
    return moment.replace(tzinfo=NAIROBI) if moment.tzinfo is None else moment


def _member_numbers(raw: str, errors: dict) -> tuple[str, ...]:
    numbers = tuple(dict.fromkeys(n.upper() for n in re.split(r"[\s,;]+", raw) if n))
    if len(numbers) > MAX_MEMBER_NUMBERS:
        errors["member_numbers"] = f"Give at most {MAX_MEMBER_NUMBERS:,} member numbers."
        return ()
    if not numbers:
        return ()
    known = set(
        db.session.scalars(select(Member.member_number).where(Member.member_number.in_(numbers)))
    )
    unknown = [n[:20] for n in numbers if n not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        errors["member_numbers"] = f"No member has the number {shown}."
    return numbers


def parse_audience(values: Mapping) -> Audience:
    """The channels and member filters of the form's `values`; ValidationFailed names each bad
    field."""
    errors: dict[str, str] = {}
    channel = _text(values, "channel") or "both"
    if channel not in CHANNEL_LABELS:
        errors["channel"] = "Choose SMS, email, or both."
    status = _text(values, "status") or MemberStatus.ACTIVE
    if status not in STATUSES:
        errors["status"] = "Choose one of the listed member statuses."
    loans = _text(values, "loans")
    if loans not in LOANS:
        errors["loans"] = "Choose one of the listed loan filters."
    joined_from = _date(values, "joined_from", errors)
    joined_to = _date(values, "joined_to", errors)
    if joined_from and joined_to and joined_to < joined_from:
        errors["joined_to"] = "The end date is before the start date."
    numbers = _member_numbers(_text(values, "member_numbers"), errors)
    if errors:
        raise ValidationFailed(errors)
    return Audience(channel, status, loans, joined_from, joined_to, numbers)


def parse_content(values: Mapping, channel: str = "both") -> Content:
    """The message part of the form's `values` for `channel`; ValidationFailed names each bad
    field."""
    errors: dict[str, str] = {}
    name = _text(values, "name")
    if not name:
        errors["name"] = "Give the broadcast a name (members do not see it)."
    elif len(name) > MAX_NAME:
        errors["name"] = f"Use at most {MAX_NAME} characters."
    template = _text(values, "template")
    if template not in TEMPLATES:
        errors["template"] = "Choose one of the listed messages."
    subject = _text(values, "subject")
    message = _text(values, "message")
    if len(subject) > MAX_SUBJECT:
        errors["subject"] = f"Use at most {MAX_SUBJECT} characters."
    elif not subject and template in ("policy_change", "maintenance_notice"):
        errors["subject"] = "Give the notice a title (it is the email's subject too)."
    elif not subject and not template and "email" in CHANNELS.get(channel, ()):
        errors["subject"] = "Give the email a subject."
    if not message:
        errors["message"] = "Write the message."
    elif len(message) > MAX_MESSAGE:
        errors["message"] = f"Use at most {MAX_MESSAGE:,} characters."
    effective_on = _date(values, "effective_on", errors)
    starts_at = _nairobi_time(values, "starts_at", errors)
    ends_at = _nairobi_time(values, "ends_at", errors)
    if starts_at and ends_at and ends_at < starts_at:
        errors["ends_at"] = "The end is before the start."
    priority = _text(values, "priority") or Priority.NORMAL
    if priority not in PRIORITIES:
        errors["priority"] = "Choose normal or low."
    if errors:
        raise ValidationFailed(errors)
    return Content(
        name=name,
        message=message,
        template=template or None,
        subject=subject or None,
        effective_on=effective_on if template == "policy_change" else None,
        starts_at=starts_at if template == "maintenance_notice" else None,
        ends_at=ends_at if template == "maintenance_notice" else None,
        priority=priority,
    )


def parse(values: Mapping) -> tuple[Audience, Content]:
    """Both halves of the form; ValidationFailed names every bad field at once."""
    errors: dict[str, str] = {}
    audience = content = None
    try:
        audience = parse_audience(values)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        content = parse_content(values, audience.channel if audience else "both")
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return audience, content


# --- who it reaches -----------------------------------------------------------------------------


def conditions(audience: Audience, today: date | None = None) -> list:
    """The WHERE conditions on Member that pick the audience."""
    today = today or clock.today()
    where = []
    if audience.status != "any":
        where.append(Member.status == audience.status)
    live_loan = (
        select(Loan.id).where(Loan.member_id == Member.id, Loan.status.in_(LIVE_LOAN)).exists()
    )
    if audience.loans == "with_loan":
        where.append(live_loan)
    elif audience.loans == "without_loan":
        where.append(~live_loan)
    elif audience.loans == "overdue":
        where.append(
            select(LoanInstallment.id)
            .join(Loan, Loan.id == LoanInstallment.loan_id)
            .where(
                Loan.member_id == Member.id,
                Loan.status.in_(LIVE_LOAN),
                LoanInstallment.status.in_(OPEN),
                LoanInstallment.due_date < today,
            )
            .exists()
        )
    if audience.joined_from:
        where.append(Member.joined_on >= audience.joined_from)
    if audience.joined_to:
        where.append(Member.joined_on <= audience.joined_to)
    if audience.member_numbers:
        where.append(Member.member_number.in_(audience.member_numbers))
    return where


@dataclass(frozen=True)
class Reach:
    """How many members the filters pick, and how many each channel reaches (members who have
    not opted out and have the contact); `suppressed`: of those contacts, how many are on the
    suppression list (their messages will be skipped)."""

    matched: int
    sms: int
    email: int
    reachable: int
    suppressed: int

    @property
    def unreachable(self) -> int:
        return self.matched - self.reachable


def _on_suppression_list(channel: str, contact) -> object:
    return (
        select(Suppression.id)
        .where(Suppression.channel == channel, Suppression.contact == contact)
        .exists()
    )


def count(audience: Audience) -> Reach:
    """Who the broadcast would reach now: one query."""
    wanted = CHANNELS[audience.channel]
    sms_ok = (
        and_(Member.sms_opt_in.is_(True), Member.phone.is_not(None), Member.phone != "")
        if Channel.SMS in wanted
        else false()
    )
    email_ok = (
        and_(Member.email_opt_in.is_(True), Member.email.is_not(None), Member.email != "")
        if Channel.EMAIL in wanted
        else false()
    )
    blocked = or_(
        and_(sms_ok, _on_suppression_list(Channel.SMS, Member.phone)),
        and_(email_ok, _on_suppression_list(Channel.EMAIL, Member.email)),
    )

    def how_many(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = db.session.execute(
        select(
            func.count(Member.id),
            how_many(sms_ok),
            how_many(email_ok),
            how_many(or_(sms_ok, email_ok)),
            how_many(blocked),
        ).where(*conditions(audience))
    ).one()
    return Reach(*(int(n or 0) for n in row))


# --- what each member gets ----------------------------------------------------------------------


class Composer:
    """Renders a broadcast's message for one member after another (template and branding are
    read once). Values are data, never template code; a message written for the occasion is
    itself a template, so it may use {{ member.first_name }} and the like."""

    def __init__(self, content: Content):
        self.content = content
        self.values = {
            "notice": {
                "title": content.subject or "",
                "body": content.message,
                "effective_date": content.effective_on,
                "starts_at": content.starts_at,
                "ends_at": content.ends_at,
            },
            "update": {"summary": content.message},
        }
        if content.template:
            self.renderer = Renderer(content.template)
        else:
            self.source = Source(
                key=KIND,
                name=content.name,
                sms_body=content.message,
                email_subject=content.subject or "",
                email_text=content.message,
                email_html="",
            )
            self.brand = branding()

    def render(self, member: dict, channels: tuple[str, ...]) -> Message:
        """TemplateProblem names the part that cannot be rendered."""
        context = {"member": member, **self.values}
        if self.content.template:
            return self.renderer.render(context, channels)
        return render_source(self.source, context, self.brand, "member", channels)


def sample(audience: Audience, content: Content) -> Message:
    """The message as the first member the filters pick gets it (a sample member's when the
    filters pick none). TemplateProblem names the part that cannot be rendered."""
    row = db.session.execute(
        select(*MEMBER_COLUMNS).where(*conditions(audience)).order_by(Member.id).limit(1)
    ).first()
    member = _member(row) if row else sample_context("policy_change")["member"]
    return Composer(content).render(member, CHANNELS[audience.channel])


def check_message(audience: Audience, content: Content) -> Message:
    """sample(), with a template's problem as ValidationFailed on the form's field."""
    try:
        return sample(audience, content)
    except TemplateProblem as exc:
        raise ValidationFailed({FIELD_OF_PROBLEM.get(exc.field, "message"): exc.message}) from None


# --- the live preview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What the form would do as it stands: who it reaches and the message as the first of them
    gets it; or why the filters cannot be used (`filter_errors`), or what the message still
    lacks (`message_errors`: hints while the form is being filled in)."""

    audience: Audience | None = None
    reach: Reach | None = None
    message: Message | None = None
    filter_errors: dict[str, str] = field(default_factory=dict)
    message_errors: dict[str, str] = field(default_factory=dict)

    @property
    def sms(self) -> SmsShape | None:
        return shape(self.message.sms) if self.message and self.message.sms else None


def preview(values: Mapping) -> Preview:
    """The live count for the form's `values`, and the sample message once one is written;
    problems are reported, never raised."""
    try:
        audience = parse_audience(values)
    except ValidationFailed as exc:
        return Preview(filter_errors=exc.errors)
    reach = count(audience)
    if not _text(values, "message"):
        return Preview(audience, reach)  # nothing written yet: the count alone
    try:
        # The name is only for the list of broadcasts: a preview does without it.
        content = parse_content({**values, "name": _text(values, "name") or "-"}, audience.channel)
        message = check_message(audience, content)
    except ValidationFailed as exc:
        return Preview(audience, reach, message_errors=exc.errors)
    return Preview(audience, reach, message)
