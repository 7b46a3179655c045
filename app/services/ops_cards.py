"""The dashboard's integration status cards: each integration's figures (services/ops_figures.py)
and the rules that colour it green, amber or red. The rules are data (`Rule`: a colour, the
sentence the card's help shows, and a small pure check of the figures), so each one is tested on
its own and the help text is always the rule in force. Figures read from the database are cached
for a few seconds (services/ops_cache.py); reachability and Redis figures are read on every poll."""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.models import MpesaStatus
from app.services import health, ops_cache
from app.services.ops_figures import (
    ApiFigures,
    JobsFigures,
    MpesaFigures,
    NotificationFigures,
    PingFigures,
    api_figures,
    database_figures,
    jobs_figures,
    mpesa_figures,
    notification_figures,
    percent,
    redis_figures,
)

GREEN, AMBER, RED = "green", "amber", "red"
SEVERITY = {GREEN: 0, AMBER: 1, RED: 2}
CACHE_SECONDS = 15  # DAYSTAR_DASHBOARD_CACHE_SECONDS overrides it

# Thresholds, named in the rules' sentences.
MIN_VOLUME = 20  # rates are judged only over at least this many requests / payments / messages
API_ERRORS_AMBER, API_ERRORS_RED = 5.0, 20.0  # % of requests answered 4xx or 5xx
API_P95_AMBER_MS, API_P95_RED_MS = 500, 2000
WEBHOOK_FAILING_RED = timedelta(hours=24)
STK_SUCCESS_AMBER, STK_SUCCESS_RED = 70.0, 40.0  # % of finished STK pushes that were paid
CALLBACK_SILENCE = timedelta(minutes=60)
NOTIFY_FAILED_AMBER, NOTIFY_FAILED_RED = 5.0, 20.0  # % of messages sent that failed
QUEUE_AMBER, QUEUE_RED = 100, 1000  # jobs waiting in one queue
PING_AMBER_MS = 250


def _age(moment: datetime | None, now: datetime) -> timedelta | None:
    return None if moment is None else now - moment


def _minutes(delta: timedelta) -> str:
    """How long, as staff read it: 45 min, 2 h, 1 h 30 min."""
    hours, minutes = divmod(int(delta.total_seconds() // 60), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


# --- rules ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    state: str  # AMBER or RED
    text: str  # the sentence on the card's help
    check: Callable  # (figures, now) -> why it applies now, or None


@dataclass(frozen=True)
class Status:
    state: str
    reasons: list[str]  # the worst first


def evaluate(rules: tuple[Rule, ...], figures, now: datetime) -> Status:
    """Green unless a rule applies; else the worst colour among the rules that do, with why."""
    found = [(rule.state, why) for rule in rules if (why := rule.check(figures, now))]
    found.sort(key=lambda item: -SEVERITY[item[0]])
    state = found[0][0] if found else GREEN
    return Status(state, [why for _, why in found])


# --- Accounting API ------------------------------------------------------------------------------
def _api_errors(limit: float):
    def check(f: ApiFigures, now):
        rate = f.error_percent
        if f.requests >= MIN_VOLUME and rate is not None and rate > limit:
            return f"{rate}% of {f.requests:,} requests in 24 h were errors."
        return None

    return check


def _api_latency(limit: int):
    def check(f: ApiFigures, now):
        if f.requests >= MIN_VOLUME and f.p95_ms is not None and f.p95_ms > limit:
            return f"95% of requests took up to {f.p95_ms:,} ms (over {limit:,} ms)."
        return None

    return check


def _webhooks_failing_long(f: ApiFigures, now):
    age = _age(f.failing_since, now)
    if f.failing_endpoints and age is not None and age > WEBHOOK_FAILING_RED:
        return f"A webhook endpoint has been failing for {_minutes(age)}."
    return None


def _webhooks_failing(f: ApiFigures, now):
    if f.failing_endpoints:
        return f"{f.failing_endpoints} webhook endpoint(s) failing."
    return None


API_RULES = (
    Rule(RED, f"Red when over {API_ERRORS_RED:g}% of the last 24 hours' requests (at least "
              f"{MIN_VOLUME}) were answered with an error (4xx or 5xx).", _api_errors(API_ERRORS_RED)),
    Rule(RED, f"Red when their 95th-percentile time is over {API_P95_RED_MS:,} ms.",
         _api_latency(API_P95_RED_MS)),
    Rule(RED, f"Red when a webhook endpoint has been failing for over "
              f"{WEBHOOK_FAILING_RED.total_seconds() / 3600:g} hours.", _webhooks_failing_long),
    Rule(AMBER, f"Amber when over {API_ERRORS_AMBER:g}% were errors.",
         _api_errors(API_ERRORS_AMBER)),
    Rule(AMBER, f"Amber when the 95th-percentile time is over {API_P95_AMBER_MS:,} ms.",
         _api_latency(API_P95_AMBER_MS)),
    Rule(AMBER, "Amber when any enabled webhook endpoint is failing.", _webhooks_failing),
)  # fmt: skip


# --- M-Pesa --------------------------------------------------------------------------------------
def _callbacks_stopped(f: MpesaFigures, now):
    waited = _age(f.oldest_pending_at, now)
    silence = _age(f.last_callback_at, now)
    if waited is None or waited <= CALLBACK_SILENCE:
        return None
    if silence is not None and silence <= CALLBACK_SILENCE:
        return None
    last = "none has ever come" if silence is None else f"the last came {_minutes(silence)} ago"
    return f"A request has waited {_minutes(waited)} for its callback and {last}."


def _stk_success(limit: float):
    def check(f: MpesaFigures, now):
        finished = f.stk_completed + f.stk_failed
        rate = f.stk_success_percent
        if finished >= MIN_VOLUME and rate is not None and rate < limit:
            return f"Only {rate}% of {finished:,} payment prompts in 24 h were paid."
        return None

    return check


def _status_waiting(status: str, words: str):
    def check(f: MpesaFigures, now):
        count = f.count(status)
        return f"{count} transaction(s) {words}." if count else None

    return check


def _suspense_waiting(f: MpesaFigures, now):
    return (
        f"{f.suspense_open} suspense item(s) waiting to be allocated." if f.suspense_open else None
    )


def _settings_missing(f: MpesaFigures, now):
    return f"Settings missing for {', '.join(f.missing)}." if f.missing else None


MPESA_RULES = (
    Rule(RED, f"Red when a request has waited over {_minutes(CALLBACK_SILENCE)} for its callback "
              f"and no callback at all came in the last {_minutes(CALLBACK_SILENCE)} (callbacks "
              "are not reaching us).", _callbacks_stopped),
    Rule(RED, f"Red when under {STK_SUCCESS_RED:g}% of the last 24 hours' payment prompts (at "
              f"least {MIN_VOLUME} finished) were paid.", _stk_success(STK_SUCCESS_RED)),
    Rule(AMBER, f"Amber when under {STK_SUCCESS_AMBER:g}% were paid.",
         _stk_success(STK_SUCCESS_AMBER)),
    Rule(AMBER, "Amber when a transaction's outcome is unknown (ask M-Pesa: Query status).",
         _status_waiting(MpesaStatus.UNKNOWN, "with an unknown outcome")),
    Rule(AMBER, "Amber when a callback did not match its request and is held for review.",
         _status_waiting(MpesaStatus.HELD, "held for review")),
    Rule(AMBER, "Amber when payments wait in suspense to be allocated.", _suspense_waiting),
    Rule(AMBER, "Amber when settings a use of M-Pesa needs are missing.", _settings_missing),
)  # fmt: skip


# --- Notifications -------------------------------------------------------------------------------
def _failure_rate(limit: float):
    def check(f: NotificationFigures, now):
        for channel in f.channels:
            counts = f.counts(channel)
            rate = percent(counts.failed, counts.reached)
            if counts.reached >= MIN_VOLUME and rate is not None and rate > limit:
                return f"{rate}% of {counts.reached:,} {channel.upper()} messages in 24 h failed."
        return None

    return check


def _channel_without_provider(f: NotificationFigures, now):
    for channel in f.channels:
        ordered = [p for p in f.providers if p["channel"] == channel and p["position"]]
        if ordered and f.counts(channel).total and all(p["circuit_open"] for p in ordered):
            return f"Every {channel.upper()} provider is cooling off after failures."
    return None


def _circuit_open(f: NotificationFigures, now):
    open_ = [p["label"] for p in f.providers if p["circuit_open"]]
    return f"Cooling off after failures: {', '.join(open_)}." if open_ else None


NOTIFICATION_RULES = (
    Rule(RED, f"Red when over {NOTIFY_FAILED_RED:g}% of a channel's messages sent in the last 24 "
              f"hours (at least {MIN_VOLUME}) failed.", _failure_rate(NOTIFY_FAILED_RED)),
    Rule(RED, "Red when every provider of a channel in use is cooling off (circuit open).",
         _channel_without_provider),
    Rule(AMBER, f"Amber when over {NOTIFY_FAILED_AMBER:g}% failed.",
         _failure_rate(NOTIFY_FAILED_AMBER)),
    Rule(AMBER, "Amber when any provider is cooling off (its circuit is open).", _circuit_open),
)  # fmt: skip


# --- Jobs ----------------------------------------------------------------------------------------
def _jobs_redis(f: JobsFigures, now):
    return None if f.redis_ok else f"Redis cannot be reached: {f.error}"


def _no_worker(f: JobsFigures, now):
    return (
        "No worker is running: nothing is sent or processed."
        if f.redis_ok and not f.workers
        else None
    )


def _no_scheduler(f: JobsFigures, now):
    if f.redis_ok and not f.scheduler_alive:
        return "The scheduler is not running: periodic jobs (sweeps, reminders) stop."
    return None


def _queue_deeper(limit: int):
    def check(f: JobsFigures, now):
        deep = [f"{name} ({depth:,})" for name, depth in f.queues.items() if depth > limit]
        return f"Jobs piling up: {', '.join(deep)}." if deep else None

    return check


def _failed_jobs(f: JobsFigures, now):
    total = f.failed_total
    return f"{total:,} failed job(s) to retry or delete." if total else None


JOBS_RULES = (
    Rule(RED, "Red when Redis cannot be reached.", _jobs_redis),
    Rule(RED, "Red when no RQ worker is alive (heartbeat).", _no_worker),
    Rule(RED, "Red when the cron scheduler (python worker.py --cron) is not running.",
         _no_scheduler),
    Rule(RED, f"Red when a queue has over {QUEUE_RED:,} jobs waiting.", _queue_deeper(QUEUE_RED)),
    Rule(AMBER, f"Amber when a queue has over {QUEUE_AMBER:,} jobs waiting.",
         _queue_deeper(QUEUE_AMBER)),
    Rule(AMBER, "Amber when jobs failed for good (their retries used up).", _failed_jobs),
)  # fmt: skip


# --- Database and Redis --------------------------------------------------------------------------
def _unreachable(what: str):
    return lambda f, now: None if f.ok else f"{what} cannot be reached: {f.error}"


def _slow(what: str):
    def check(f: PingFigures, now):
        if f.ok and f.ms is not None and f.ms > PING_AMBER_MS:
            return f"{what} took {f.ms:,.0f} ms to answer."
        return None

    return check


DATABASE_RULES = (
    Rule(RED, "Red when the database does not answer SELECT 1.", _unreachable("The database")),
    Rule(AMBER, f"Amber when it takes over {PING_AMBER_MS} ms to answer.", _slow("The database")),
)
REDIS_RULES = (
    Rule(RED, "Red when Redis does not answer PING: jobs cannot be queued (they wait in the "
              "database) and caches are per process.", _unreachable("Redis")),
    Rule(AMBER, f"Amber when it takes over {PING_AMBER_MS} ms to answer.", _slow("Redis")),
)  # fmt: skip


# --- the cards -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CardSpec:
    name: str  # in its URL and element id
    title: str
    rules: tuple[Rule, ...]
    compute: Callable[[], object]
    figures_class: type
    cached: bool  # figures read from the database (cached); else read on every poll


CARDS = {
    spec.name: spec
    for spec in (
        CardSpec("api", "Accounting API", API_RULES, api_figures, ApiFigures, True),
        CardSpec("mpesa", "M-Pesa", MPESA_RULES, mpesa_figures, MpesaFigures, True),
        CardSpec("notifications", "Notifications", NOTIFICATION_RULES, notification_figures,
                 NotificationFigures, True),
        CardSpec("jobs", "Jobs", JOBS_RULES, jobs_figures, JobsFigures, False),
        CardSpec("database", "Database", DATABASE_RULES, database_figures, PingFigures, False),
        CardSpec("redis", "Redis", REDIS_RULES, redis_figures, PingFigures, False),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Card:
    spec: CardSpec
    figures: object  # None when they could not be read
    status: Status
    computed_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title


def cache_seconds() -> float:
    return float(current_app.config.get("DAYSTAR_DASHBOARD_CACHE_SECONDS", CACHE_SECONDS))


def card(name: str, now: datetime | None = None) -> Card:
    """The card `name` (a key of CARDS): its figures (from the short cache where they come from
    the database) and its colour by its rules now."""
    spec = CARDS[name]
    now = now or datetime.now(UTC)
    try:
        if spec.cached:
            got = ops_cache.get(name, spec.compute, spec.figures_class, cache_seconds())
        else:
            got = ops_cache.Cached(spec.compute(), datetime.now(UTC))
    except SQLAlchemyError as exc:
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()  # the session is usable again for the rest of the request
        why = f"The figures cannot be read: {health.short_error(exc)}"
        return Card(spec, None, Status(RED, [why]), now)
    return Card(spec, got.figures, evaluate(spec.rules, got.figures, now), got.computed_at)
