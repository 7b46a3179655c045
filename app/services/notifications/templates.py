"""Message templates: stored in the database (the defaults in default_templates.py stand in for
any that is missing), rendered in Jinja2's immutable sandbox so that a template cannot reach
Python internals, and with every value passed as data: a member's name is printed, never run as
template code. Emails' HTML is autoescaped and rendered into the branded layout
(app/templates/notifications/email_layout.html, kept in code so that a bad edit cannot break
every email); SMS and plain text are not escaped. Plugins' `daystar_notification_message` may
rewrite the SMS text and the email's plain text of every message rendered here."""

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup, escape
from sqlalchemy import select

from app.clock import NAIROBI
from app.extensions import db
from app.hooks import filter_notification_message
from app.models import NotificationTemplate
from app.services import audit
from app.services.actor import Actor
from app.services.errors import NotFound, ValidationFailed
from app.services.mpesa import config as mpesa_config
from app.services.notifications import config
from app.services.notifications.default_templates import DEFAULTS, VARIABLES, sample_context

log = logging.getLogger(__name__)

LAYOUT_DIR = Path(__file__).resolve().parents[2] / "templates" / "notifications"
LAYOUT = "email_layout.html"
FIELDS = ("sms_body", "email_subject", "email_text", "email_html")
FIELD_LABELS = {
    "name": "name",
    "sms_body": "SMS text",
    "email_subject": "email subject",
    "email_text": "email plain text",
    "email_html": "email HTML",
}
MAX_SOURCE = 20_000  # characters of one field's template source
MAX_OUTPUT = 100_000  # characters one field may render to
MAX_REPEAT = 10_000  # the longest string or list `*` may build
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,59}$")
COLOUR_PATTERN = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
DEFAULT_COLOURS = ("#1d4e89", "#f2a900")


class TemplateProblem(Exception):
    """A template that cannot be rendered: `field` names the part, `message` says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` watched so that a template cannot build a huge
    string or number (a render that would take the worker down)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and _too_big_power(left, right):
            raise SecurityError("the power is too large")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_REPEAT
                ):
                    raise SecurityError("the repeated value would be too long")
        return super().call_binop(context, operator, left, right)


def _too_big_power(base, exponent) -> bool:
    try:
        return abs(exponent) > 64 or abs(base) > 10**6
    except TypeError:
        return False


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value).replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{value!r} is not an amount") from None


def money(value, currency: str = "KES") -> str:
    """1234.5 -> "KES 1,234.50" (Decimal, number or text)."""
    if value is None or value == "":
        return ""
    return f"{currency} {_decimal(value):,.2f}"


def _as_datetime(value):
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    return value


def day(value) -> str:
    """A date (or ISO text) as "4 Dec 2026"."""
    value = _as_datetime(value)
    if isinstance(value, datetime):
        value = value.astimezone(NAIROBI).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return f"{value.day} {value:%b %Y}"
    return "" if value is None else str(value)


def when(value) -> str:
    """A time (or ISO text) as "4 Dec 2026 22:00" in Nairobi time."""
    value = _as_datetime(value)
    if isinstance(value, datetime):
        local = value.astimezone(NAIROBI) if value.tzinfo else value
        return f"{local.day} {local:%b %Y %H:%M}"
    return day(value)


def _environment(html: bool) -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=html,
        loader=FileSystemLoader(str(LAYOUT_DIR)) if html else None,
        auto_reload=False,
    )
    env.filters.update(money=money, day=day, when=when)
    env.globals.pop("lipsum", None)  # lipsum(n) writes as much text as asked
    return env


_ENVIRONMENTS = {True: _environment(True), False: _environment(False)}


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Template:
    return _ENVIRONMENTS[html].from_string(source)


def _problem(field_name: str, exc: Exception) -> TemplateProblem:
    label = FIELD_LABELS.get(field_name, field_name)
    if isinstance(exc, TemplateSyntaxError):
        return TemplateProblem(
            field_name, f"The {label} has an error on line {exc.lineno}: {exc.message}"
        )
    if isinstance(exc, SecurityError):
        return TemplateProblem(
            field_name, f"The {label} uses something templates may not use: {exc}"
        )
    if isinstance(exc, TemplateError):  # UndefinedError and the rest
        return TemplateProblem(field_name, f"The {label} cannot be rendered: {exc.message}")
    return TemplateProblem(field_name, f"The {label} cannot be rendered: {exc}")


def _render_field(field_name: str, source: str, context: dict, html: bool = False) -> str:
    try:
        output = _compile(source, html).render(context)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a TemplateProblem
        raise _problem(field_name, exc) from exc
    if len(output) > MAX_OUTPUT:
        raise TemplateProblem(field_name, f"The {FIELD_LABELS[field_name]} renders too long.")
    return output


@dataclass(frozen=True)
class Message:
    """A rendered template: what each channel sends (an empty SMS text or email subject means
    that channel has nothing to send)."""

    key: str
    sms: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Source:
    """A template's fields, from the database or the defaults."""

    key: str
    name: str
    sms_body: str
    email_subject: str
    email_text: str
    email_html: str
    stored: bool = False

    def fields(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FIELDS}


def default_source(key: str) -> Source | None:
    """The built-in template `key`, or None."""
    values = DEFAULTS.get(key)
    return Source(key=key, **values) if values else None


def load(key: str) -> Source:
    """The template `key` as staff last saved it, else its default; NotFound when neither."""
    row = db.session.scalar(select(NotificationTemplate).where(NotificationTemplate.key == key))
    if row is not None:
        return Source(
            key=row.key,
            name=row.name,
            stored=True,
            **{name: getattr(row, name) or "" for name in FIELDS},
        )
    source = default_source(key)
    if source is None:
        raise NotFound(f"There is no message template {key!r}.")
    return source


def _safe_url(value: str) -> str:
    value = (value or "").strip()
    return value if value.startswith(("https://", "http://")) and '"' not in value else ""


def branding(settings: config.NotifySettings | None = None) -> dict:
    """The SACCO's details for templates ({{ sacco.* }}) and the layout's branding."""
    settings = settings or config.current()
    primary, accent = settings.sacco_colour.strip(), settings.sacco_accent_colour.strip()
    return {
        "name": settings.sacco_name.strip() or "Daystar SACCO",
        "phone": settings.sacco_phone.strip(),
        "email": settings.sacco_email.strip(),
        "website": _safe_url(settings.sacco_website),
        "paybill": mpesa_config.current().shortcode.strip(),
        # Colours and the logo go into style and src attributes: only safe shapes pass.
        "colour": primary if COLOUR_PATTERN.match(primary) else DEFAULT_COLOURS[0],
        "accent_colour": accent if COLOUR_PATTERN.match(accent) else DEFAULT_COLOURS[1],
        "logo_url": _safe_url(settings.sacco_logo_url),
    }


def sacco_context(brand: dict) -> dict:
    """The part of the branding templates see as `sacco`."""
    return {name: brand[name] for name in ("name", "phone", "email", "website", "paybill")}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _text_to_html(text: str) -> Markup:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in p.splitlines()))
        for p in paragraphs
    )


def render_source(
    source: Source,
    context: dict,
    brand: dict,
    audience: str = "member",
    channels: tuple[str, ...] = ("sms", "email"),
) -> Message:
    """Render the parts of `source` that `channels` need with `context` (values only: they are
    data, never template code); plugins may then change the SMS text and the email's plain text.
    TemplateProblem names the first part that fails."""
    context = {**context, "sacco": sacco_context(brand)}  # the settings, never a stale copy
    sms = subject = text = html = ""
    if "sms" in channels:
        sms = _one_line(_render_field("sms_body", source.sms_body, context))
        if sms:
            sms = filter_notification_message(sms, source.key, {**context, "channel": "sms"})
    if "email" in channels:
        subject = _one_line(_render_field("email_subject", source.email_subject, context))[:200]
    if subject:
        text = _render_field("email_text", source.email_text, context).strip()
        if text:
            text = filter_notification_message(text, source.key, {**context, "channel": "email"})
        if source.email_html.strip():
            # Escaped already: the HTML environment autoescapes every value.
            rendered = _render_field("email_html", source.email_html, context, html=True)
            content = Markup(rendered)  # noqa: S704
        else:
            content = _text_to_html(text)
        html = _layout(brand, subject, text, content, audience)
    return Message(key=source.key, sms=sms, subject=subject, text=text, html=html)


def _layout(brand: dict, subject: str, text: str, content: Markup, audience: str) -> str:
    template = _ENVIRONMENTS[True].get_template(LAYOUT)
    return template.render(
        brand=brand,
        subject=subject,
        preheader=_one_line(text)[:120],
        content=content,
        audience=audience,
    )


def render(key: str, context: dict, channels: tuple[str, ...] = ("sms", "email")) -> Message:
    """Render the template `key` as stored (or its default) with `context`."""
    return Renderer(key).render(context, channels)


class Renderer:
    """Renders one kind of message, perhaps thousands of times: the template and the branding
    are read once. If the stored template cannot be rendered, the built-in default is used
    instead (and the problem logged), so that one bad edit does not silence the messages."""

    def __init__(self, key: str):
        self.key = key
        self.source = load(key)
        self.brand = branding()
        self.audience = audience(key)

    def render(self, context: dict, channels: tuple[str, ...] = ("sms", "email")) -> Message:
        try:
            return render_source(self.source, context, self.brand, self.audience, channels=channels)
        except TemplateProblem as exc:
            default = default_source(self.key)
            if default is None or not self.source.stored:
                raise
            log.error("template %r cannot be rendered (%s); the default is used", self.key, exc)
            self.source = default
            return render_source(self.source, context, self.brand, self.audience, channels=channels)


# --- the portal: preview, save, reset -------------------------------------------------------


@dataclass
class Preview:
    """A template rendered with sample values: each part's output, and what is wrong with any
    part that cannot be rendered (by field)."""

    message: Message | None
    errors: dict[str, str] = field(default_factory=dict)
    variables: tuple[str, ...] = ()


def _draft_source(key: str, draft: dict) -> Source:
    base = default_source(key)
    values = {name: str(draft.get(name) or "").replace("\x00", "") for name in FIELDS}
    name = str(draft.get("name") or (base.name if base else key)).strip()
    return Source(key=key, name=name, **values)


def check(source: Source, context: dict | None = None) -> dict[str, str]:
    """What is wrong with each part of `source` (empty when it renders with the sample values):
    syntax errors, unknown variables, and anything the sandbox refuses."""
    errors: dict[str, str] = {}
    context = {**(context or sample_context(source.key)), "sacco": sacco_context(branding())}
    for name in FIELDS:
        text = getattr(source, name)
        if len(text) > MAX_SOURCE:
            errors[name] = f"Use at most {MAX_SOURCE:,} characters."
            continue
        try:
            _render_field(name, text, context, html=name == "email_html")
        except TemplateProblem as exc:
            errors[name] = exc.message
    if not source.sms_body.strip() and not source.email_subject.strip():
        errors["sms_body"] = "Write the SMS text, or the email's subject and text, or both."
    if source.email_subject.strip() and not source.email_text.strip():
        errors["email_text"] = "An email needs its plain text too (some mail apps show only it)."
    if (
        source.email_text.strip() or source.email_html.strip()
    ) and not source.email_subject.strip():
        errors["email_subject"] = "Write the email's subject."
    return errors


def preview(key: str, draft: dict | None = None, context: dict | None = None) -> Preview:
    """Render the template `key` (or a `draft` of its fields, unsaved) with sample values or the
    given `context`; problems are reported by field, never raised."""
    source = _draft_source(key, draft) if draft is not None else load(key)
    variables = VARIABLES.get(key, ())
    errors = check(source, context)
    if errors:
        return Preview(None, errors, variables)
    message = render_source(source, context or sample_context(key), branding(), audience(key))
    return Preview(message, {}, variables)


def audience(key: str) -> str:
    """Who the message `key` goes to: "staff" (the administrators' alert) or "member"."""
    return "staff" if key == "admin_alert" else "member"


def save_template(key: str, values: dict, actor: Actor) -> NotificationTemplate:
    """Store the template `key` as edited in the portal, after checking that every part renders
    with sample values; ValidationFailed names each bad field. Audited; commits."""
    key = (key or "").strip()
    if not KEY_PATTERN.match(key):
        raise ValidationFailed({"key": "Use 2-60 lower-case letters, digits and underscores."})
    source = _draft_source(key, values)
    errors = check(source)
    if not source.name:
        errors["name"] = "Give the template a name."
    elif len(source.name) > 120:
        errors["name"] = "Use at most 120 characters."
    if len(source.email_subject) > 200:
        errors["email_subject"] = "Use at most 200 characters."
    if errors:
        raise ValidationFailed(errors)
    row = db.session.scalar(select(NotificationTemplate).where(NotificationTemplate.key == key))
    created = row is None
    if created:
        row = NotificationTemplate(key=key)
        db.session.add(row)
    changed = [
        name for name in ("name", *FIELDS) if getattr(row, name, None) != getattr(source, name)
    ]
    row.name = source.name
    for name in FIELDS:
        setattr(row, name, getattr(source, name))
    row.updated_by_id = actor.staff_id
    db.session.flush()
    audit.record(
        actor,
        "notification_template.created" if created else "notification_template.updated",
        "notification_template",
        row.id,
        key=key,
        fields=changed,
    )
    db.session.commit()
    return row


def reset_template(key: str, actor: Actor) -> NotificationTemplate:
    """Put the built-in default back for template `key`. Audited; commits."""
    source = default_source(key)
    if source is None:
        raise NotFound(f"Template {key!r} has no built-in default.")
    return save_template(key, {"name": source.name, **source.fields()}, actor)


def ensure_defaults() -> int:
    """Insert every default template that is not in the database (an edited one is left as it
    is); how many were inserted. Commits."""
    present = set(db.session.scalars(select(NotificationTemplate.key)))
    missing = [key for key in DEFAULTS if key not in present]
    for key in missing:
        db.session.add(NotificationTemplate(key=key, **DEFAULTS[key]))
    if missing:
        audit.record(
            Actor.system("notifications"),
            "notification_template.defaults_added",
            "notification_template",
            None,
            keys=missing,
        )
    db.session.commit()
    return len(missing)


def all_templates() -> list[Source]:
    """Every template: the stored ones, and the defaults not stored yet, by key."""
    stored = {
        row.key: Source(
            key=row.key,
            name=row.name,
            stored=True,
            **{name: getattr(row, name) or "" for name in FIELDS},
        )
        for row in db.session.scalars(select(NotificationTemplate))
    }
    for key in DEFAULTS:
        stored.setdefault(key, default_source(key))
    return [stored[key] for key in sorted(stored)]
