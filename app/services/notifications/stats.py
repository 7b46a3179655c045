"""Delivery statistics for the Notifications overview: a period's notifications counted by
channel, provider and status (and by hour or day for the chart) in one GROUP BY query, the
messages still waiting in another, and each provider's place in the failover order and circuit
state. Reads only."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import case, func, literal_column, select

from app.clock import NAIROBI
from app.extensions import db
from app.models import Notification, NotificationStatus
from app.models.base import utcnow
from app.models.notifications import UNSENT
from app.services.errors import ValidationFailed
from app.services.notifications import circuit, config, providers

# period -> (how long, the chart's bucket); each period starts on a bucket boundary.
PERIODS = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "day"),
           "30d": (timedelta(days=30), "day")}  # fmt: skip
PERIOD_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days"}
DEFAULT_PERIOD = "7d"
PROVIDER_LABELS = {
    "africastalking": "Africa's Talking",
    "twilio": "Twilio",
    "infobip": "Infobip",
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "ses": "Amazon SES",
}
COUNTED = ("sent", "delivered", "failed", "skipped", "waiting")
CHARTED = ("delivered", "failed")
QUIET_HOURS_REASON = "Quiet hours"  # how rules.decide's deferral reason starts
WAITING_KINDS = {
    "queued": "Queued (due now)",
    "sending": "Being sent",
    "scheduled": "Scheduled for later",
    "quiet_hours": "Held by quiet hours",
    "retrying": "Waiting to retry",
}


@dataclass
class Counts:
    """Notifications by where they stand. `sent` is accepted by a provider with no final receipt
    yet; `waiting` is pending or being sent."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    waiting: int = 0

    def add(self, status: str, count: int) -> None:
        name = "waiting" if status in UNSENT else str(status)
        if name in COUNTED:
            setattr(self, name, getattr(self, name) + count)

    @property
    def total(self) -> int:
        return self.sent + self.delivered + self.failed + self.skipped + self.waiting

    @property
    def reached(self) -> int:
        """Sent or further (delivered, failed): the base of the delivery rate; skipped ones were
        never meant to go."""
        return self.sent + self.delivered + self.failed

    @property
    def delivery_rate(self) -> float | None:
        """Delivered as a percentage of `reached`, one decimal; None when nothing was sent."""
        return round(100 * self.delivered / self.reached, 1) if self.reached else None


@dataclass
class ProviderRow:
    channel: str
    provider: str | None  # None: no provider took it (skipped, waiting, every provider failed)
    counts: Counts = field(default_factory=Counts)

    @property
    def label(self) -> str:
        return PROVIDER_LABELS.get(self.provider, self.provider) if self.provider else "No provider"


@dataclass
class DeliveryStats:
    period: str
    since: datetime
    rows: list[ProviderRow]  # by channel, then the failover order
    channels: dict[str, Counts]
    total: Counts
    buckets: list[datetime]  # Nairobi local time, naive, oldest first
    unit: str  # "hour" or "day"
    series: dict[str, list[int]]  # status -> a count per bucket (delivered, failed)


def check_period(value) -> str:
    """The period named (24h, 7d or 30d; empty: the default); ValidationFailed otherwise."""
    text = str(value or "").strip() or DEFAULT_PERIOD
    if text not in PERIODS:
        raise ValidationFailed({"period": "Choose 24 hours, 7 days or 30 days."})
    return text


def period_start(period: str, now: datetime | None = None) -> datetime:
    """The UTC instant the period begins: the start of the hour 23 hours ago, or of the Nairobi
    day 6 (29) days ago, so that every chart bucket is whole."""
    length, unit = PERIODS[period]
    local = (now or utcnow()).astimezone(NAIROBI)
    if unit == "hour":
        first = local.replace(minute=0, second=0, microsecond=0) - length + timedelta(hours=1)
        return first.astimezone(UTC)
    first_day = local.date() - length + timedelta(days=1)
    return datetime.combine(first_day, time.min, NAIROBI).astimezone(UTC)


def _bucket(column, unit: str):
    """The Nairobi hour or day of a UTC timestamp column, in SQL (constants as literal SQL)."""
    if db.engine.dialect.name == "postgresql":
        local = func.timezone(literal_column("'Africa/Nairobi'"), column)
        return func.date_trunc(literal_column(f"'{unit}'"), local)
    # SQLite keeps UTC text; Nairobi has been UTC+3 without daylight saving since 1942.
    shape = "'%Y-%m-%d %H:00'" if unit == "hour" else "'%Y-%m-%d'"
    return func.strftime(literal_column(shape), column, literal_column("'+3 hours'"))


def _as_local(value) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value))


def _order(settings: config.NotifySettings) -> dict[tuple[str, str | None], int]:
    ranks = {}
    for channel in ("sms", "email"):
        known = config.SMS_PROVIDERS if channel == "sms" else config.EMAIL_PROVIDERS
        chosen = settings.order(channel)
        for rank, name in enumerate([*chosen, *(p for p in known if p not in chosen)]):
            ranks[(channel, name)] = rank
    return ranks


def delivery_stats(period: str, now: datetime | None = None) -> DeliveryStats:
    """The period's notifications (by when they were stored) counted by channel and provider,
    per channel, in all, and delivered/failed per hour or day: one GROUP BY query."""
    period = check_period(period)
    now = now or utcnow()
    since = period_start(period, now)
    unit = PERIODS[period][1]
    inner = (
        select(
            _bucket(Notification.created_at, unit).label("bucket"),
            Notification.channel,
            Notification.provider,
            Notification.status,
        )
        .where(Notification.created_at >= since)
        .subquery()
    )
    grouped = db.session.execute(
        select(inner.c.bucket, inner.c.channel, inner.c.provider, inner.c.status, func.count())
        .group_by(inner.c.bucket, inner.c.channel, inner.c.provider, inner.c.status)
    ).all()  # fmt: skip

    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    first = _as_local(since.astimezone(NAIROBI))
    count_of_buckets = int(PERIODS[period][0] / step)
    buckets = [first + step * n for n in range(count_of_buckets)]
    position = {b: n for n, b in enumerate(buckets)}
    series = {status: [0] * len(buckets) for status in CHARTED}
    rows: dict[tuple[str, str | None], ProviderRow] = {}
    channels: dict[str, Counts] = {}
    total = Counts()
    for bucket, channel, provider, status, count in grouped:
        rows.setdefault((channel, provider), ProviderRow(channel, provider)).counts.add(
            status, count
        )
        channels.setdefault(channel, Counts()).add(status, count)
        total.add(status, count)
        n = position.get(_as_local(bucket))
        if n is not None and status in series:
            series[status][n] += count
    ranks = _order(config.current())
    ordered = sorted(
        rows.values(),
        key=lambda r: (r.channel != "sms", r.provider is None, ranks.get((r.channel, r.provider), 99),
                       r.provider or ""),
    )  # fmt: skip
    return DeliveryStats(
        period=period,
        since=since,
        rows=ordered,
        channels=dict(sorted(channels.items(), key=lambda item: item[0] != "sms")),
        total=total,
        buckets=buckets,
        unit=unit,
        series=series,
    )


def waiting_counts(now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Messages not yet sent, now: {kind: {"sms": n, "email": n}} for each of WAITING_KINDS
    (zeros included). One GROUP BY over the pending and sending rows (the `due` index)."""
    now = now or utcnow()
    later = Notification.scheduled_for > now
    kind = case(
        (Notification.status == NotificationStatus.SENDING, "sending"),
        (Notification.retry_count > 0, "retrying"),
        (later & Notification.skip_reason.startswith(QUIET_HOURS_REASON), "quiet_hours"),
        (later, "scheduled"),
        else_="queued",
    )
    inner = (
        select(Notification.channel, kind.label("kind"))
        .where(Notification.status.in_(UNSENT))
        .subquery()
    )
    found = db.session.execute(
        select(inner.c.kind, inner.c.channel, func.count()).group_by(inner.c.kind, inner.c.channel)
    ).all()
    counts = {k: {"sms": 0, "email": 0} for k in WAITING_KINDS}
    for name, channel, count in found:
        counts[name][channel] = counts[name].get(channel, 0) + count
    return counts


@dataclass(frozen=True)
class ProviderState:
    name: str
    label: str
    channel: str
    position: int | None  # 1-based place in the failover order; None: not used
    configured: bool
    circuit_open: bool


def provider_states() -> list[ProviderState]:
    """Each of the six providers: its channel, place in the failover order, whether its settings
    are complete, and whether its circuit breaker is open (skipped while cooling off)."""
    settings = config.current()
    states = []
    for channel, known in (("sms", config.SMS_PROVIDERS), ("email", config.EMAIL_PROVIDERS)):
        order = settings.order(channel)
        for name in sorted(known, key=lambda p: order.index(p) if p in order else 99):
            states.append(
                ProviderState(
                    name=name,
                    label=PROVIDER_LABELS[name],
                    channel=channel,
                    position=order.index(name) + 1 if name in order else None,
                    configured=providers.client_for(name) is not None,
                    circuit_open=circuit.is_open(name),
                )
            )
    return states
