"""The dashboard's integration cards: each card's rules in each state (green, amber, red), with
the data set up for it, the figures read back from the database and Redis, and the short cache
that keeps polls from counting from scratch (and survives a dead Redis)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from redis import Redis
from rq import Worker
from rq.job import Job
from rq.registry import FailedJobRegistry

import worker as worker_script
from app.extensions import db
from app.jobs import get_queue
from app.models import (
    ApiRequestLog,
    EndpointStatus,
    MpesaCallback,
    MpesaStatus,
    MpesaTransaction,
    MpesaType,
    Notification,
    SuspenseItem,
    WebhookEndpoint,
)
from app.services import api_keys, health, ops_cache, ops_cards, ops_figures
from app.services.notifications import circuit
from app.services.ops_cards import AMBER, GREEN, RED
from tests.factories import SYSTEM

NOW = datetime.now(UTC)
FULL_MPESA = {
    "environment": "sandbox",
    "base_url": "http://127.0.0.1:9",
    "consumer_key": "key",
    "consumer_secret": "secret",
    "shortcode": "174379",
    "passkey": "passkey",
    "initiator_name": "testapi",
    "security_credential": "already-encrypted",
    "callback_secret": "test-callback-secret-0123456789",
    "public_base_url": "https://daystar.example",
}


@pytest.fixture(autouse=True)
def fresh_cache(app):
    """No card figures kept between tests (Redis is flushed per test; this process's copies are
    not)."""
    ops_cache.forget()
    yield
    ops_cache.forget()


@pytest.fixture
def full_mpesa(app):
    saved = app.config["MPESA_OVERRIDES"]
    app.config["MPESA_OVERRIDES"] = dict(FULL_MPESA)
    yield
    app.config["MPESA_OVERRIDES"] = saved


@pytest.fixture
def dead_redis(app):
    """The app's Redis client pointed at a port nothing listens on."""
    saved = app.extensions["redis"]
    app.extensions["redis"] = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    ops_cache.forget()
    yield
    app.extensions["redis"] = saved
    ops_cache.forget()


def state_of(name: str, figures=None) -> ops_cards.Status:
    """The card's status now, from the database (or from the figures given)."""
    spec = ops_cards.CARDS[name]
    figures = spec.compute() if figures is None else figures
    return ops_cards.evaluate(spec.rules, figures, datetime.now(UTC))


# --- rules in general ----------------------------------------------------------------------------
def test_worst_rule_wins_and_reasons_are_worst_first():
    figures = ops_figures.ApiFigures(requests=100, errors=30, p95_ms=600, failing_endpoints=1,
                                   failing_since=NOW - timedelta(hours=1))  # fmt: skip
    status = ops_cards.evaluate(ops_cards.API_RULES, figures, NOW)
    assert status.state == RED
    assert status.reasons[0] == "30.0% of 100 requests in 24 h were errors."
    assert "1 webhook endpoint(s) failing." in status.reasons[1:]


def test_every_card_has_a_red_rule_and_help_text():
    for spec in ops_cards.CARDS.values():
        assert any(rule.state == RED for rule in spec.rules), spec.name
        assert all(rule.text.startswith(("Red when", "Amber when")) for rule in spec.rules)


def test_the_scheduler_lock_key_is_worker_pys():
    assert ops_figures.CRON_LOCK == worker_script.CRON_LOCK


# --- Accounting API ------------------------------------------------------------------------------
def log_requests(count: int, status: int = 200, duration_ms: int = 20, age=timedelta(minutes=5)):
    db.session.add_all(
        ApiRequestLog(method="GET", path="/api/accounting/v1/loans", status=status,
                      duration_ms=duration_ms, created_at=datetime.now(UTC) - age)
        for _ in range(count)
    )  # fmt: skip
    db.session.commit()


def endpoint(failing_for: timedelta | None = None, status=EndpointStatus.ACTIVE):
    row = WebhookEndpoint(
        url="https://erp.example/hook",
        events=["loan.approved"],
        secret_encrypted="x",
        status=status,
        failing_since=NOW - failing_for if failing_for else None,
    )
    db.session.add(row)
    db.session.commit()
    return row


def test_api_green_with_healthy_traffic_and_keys():
    api_keys.create_key("ERP", ["read_loans"], SYSTEM)
    revoked, _ = api_keys.create_key("Old", ["read_loans"], SYSTEM)
    api_keys.revoke_key(revoked.id, SYSTEM)
    log_requests(95)
    log_requests(4, status=404)
    log_requests(1, status=500, duration_ms=300)
    log_requests(50, status=500, age=timedelta(hours=25))  # yesterday's outage: not counted
    figures = ops_figures.api_figures()
    assert (figures.requests, figures.errors, figures.server_errors) == (100, 5, 1)
    assert figures.active_keys == 1
    assert figures.p95_ms == 20
    assert state_of("api", figures) == ops_cards.Status(GREEN, [])


@pytest.mark.parametrize(("errors", "state"), [(5, GREEN), (6, AMBER), (20, AMBER), (21, RED)])
def test_api_error_rate(errors, state):
    log_requests(100 - errors)
    log_requests(errors, status=502)
    assert state_of("api").state == state


def test_api_error_rate_needs_a_minimum_of_requests():
    log_requests(ops_cards.MIN_VOLUME - 1, status=500)
    assert state_of("api").state == GREEN


def test_api_p95_is_the_nearest_rank_of_the_last_day():
    for duration in range(1, 101):
        log_requests(1, duration_ms=duration)
    log_requests(10, duration_ms=99_999, age=timedelta(days=2))
    assert ops_figures.api_figures().p95_ms == 95


@pytest.mark.parametrize(("slow_ms", "state"), [(500, GREEN), (501, AMBER), (2001, RED)])
def test_api_latency(slow_ms, state):
    log_requests(90, duration_ms=30)
    log_requests(10, duration_ms=slow_ms)  # the slowest 10%: p95 is one of them
    assert ops_figures.api_figures().p95_ms == slow_ms
    assert state_of("api").state == state


def test_api_failing_webhooks_amber_then_red_after_a_day():
    endpoint()
    endpoint(status=EndpointStatus.DISABLED)
    assert state_of("api").state == GREEN
    endpoint(failing_for=timedelta(hours=2))
    figures = ops_figures.api_figures()
    assert (figures.failing_endpoints, figures.disabled_endpoints) == (1, 1)
    assert state_of("api", figures).state == AMBER
    endpoint(failing_for=timedelta(hours=25))
    status = state_of("api")
    assert status.state == RED
    assert status.reasons[0].startswith("A webhook endpoint has been failing for 25 h")


# --- M-Pesa --------------------------------------------------------------------------------------
def transaction(status, kind=MpesaType.STK_PUSH, age=timedelta(minutes=5)):
    row = MpesaTransaction(
        transaction_type=kind,
        status=status,
        environment="sandbox",
        amount=Decimal("100.00"),
        created_at=datetime.now(UTC) - age,  # not NOW: the suite may run long after import
    )
    db.session.add(row)
    db.session.commit()
    return row


def callback(age: timedelta):
    db.session.add(MpesaCallback(kind="stk", body="{}", received_at=datetime.now(UTC) - age))
    db.session.commit()


def test_mpesa_green_when_configured_and_paid(full_mpesa):
    for _ in range(8):
        transaction(MpesaStatus.COMPLETED)
    transaction(MpesaStatus.FAILED)
    transaction(MpesaStatus.PENDING, age=timedelta(minutes=2))
    transaction(MpesaStatus.FAILED, age=timedelta(days=2))  # not in the last 24 hours
    callback(timedelta(minutes=3))
    figures = ops_figures.mpesa_figures()
    assert (figures.stk_completed, figures.stk_failed, figures.stk_open) == (8, 1, 1)
    assert figures.stk_success_percent == 88.9
    assert figures.count(MpesaStatus.PENDING) == 1
    assert figures.missing == []
    assert figures.environment == "sandbox"
    ago = datetime.now(UTC) - figures.last_callback_at
    assert timedelta(minutes=3) <= ago < timedelta(minutes=3, seconds=5)
    assert state_of("mpesa", figures) == ops_cards.Status(GREEN, [])


def test_mpesa_amber_when_settings_are_missing():
    status = state_of("mpesa")
    assert status.state == AMBER
    assert status.reasons == [
        "Settings missing for STK Push (payments in), B2C (loan disbursements), Paybill (C2B)."
    ]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (lambda: transaction(MpesaStatus.UNKNOWN), "1 transaction(s) with an unknown outcome."),
        (lambda: transaction(MpesaStatus.HELD), "1 transaction(s) held for review."),
        (
            lambda: (
                db.session.add(SuspenseItem(source="c2b", amount=Decimal("50"), reason="?"))
                or db.session.commit()
            ),
            "1 suspense item(s) waiting to be allocated.",
        ),
    ],
    ids=["unknown", "held", "suspense"],
)
def test_mpesa_amber_for_what_waits_for_a_person(full_mpesa, record, reason):
    record()
    assert state_of("mpesa") == ops_cards.Status(AMBER, [reason])


@pytest.mark.parametrize(("paid", "state"), [(14, GREEN), (13, AMBER), (7, RED)])
def test_mpesa_stk_success_rate(full_mpesa, paid, state):
    for n in range(20):
        transaction(MpesaStatus.COMPLETED if n < paid else MpesaStatus.FAILED)
    assert state_of("mpesa").state == state  # 70% is enough; under 40% is red


def test_mpesa_red_when_callbacks_stop_while_requests_wait(full_mpesa):
    transaction(MpesaStatus.PENDING, age=timedelta(minutes=90))
    callback(timedelta(minutes=20))
    assert state_of("mpesa").state == GREEN  # callbacks still come: this one may be lost alone
    db.session.query(MpesaCallback).delete()
    callback(timedelta(hours=3))
    status = state_of("mpesa")
    assert status.state == RED
    assert status.reasons == [
        "A request has waited 1 h 30 min for its callback and the last came 3 h ago."
    ]


def test_mpesa_shows_the_last_balance(full_mpesa):
    from app.models import Setting
    from app.services.mpesa import balance

    figures = {
        "captured_at": "2026-11-27T10:00:00+00:00",
        "accounts": {"Utility Account": {"currency": "KES", "current": "5000.00",
                                         "available": "4800.50"}},
    }  # fmt: skip
    import json

    db.session.add(Setting(key=balance.KEY, value=json.dumps(figures), secret=False))
    db.session.commit()
    got = ops_figures.mpesa_figures()
    assert got.balances == {"Utility Account": {"currency": "KES", "available": Decimal("4800.50")}}
    assert got.balance_at == datetime(2026, 11, 27, 10, tzinfo=UTC)


# --- Notifications -------------------------------------------------------------------------------
def notifications(count: int, status: str, channel="sms", age=timedelta(minutes=5)):
    db.session.add_all(
        Notification(notification_type="repayment_received", channel=channel, message="Asante",
                     status=status, provider="africastalking", created_at=datetime.now(UTC) - age)
        for _ in range(count)
    )  # fmt: skip
    db.session.commit()


def test_notifications_green_and_counted_per_channel():
    notifications(18, "delivered")
    notifications(1, "sent")
    notifications(1, "failed")
    notifications(3, "pending")
    notifications(5, "delivered", channel="email")
    notifications(40, "failed", age=timedelta(days=2))
    figures = ops_figures.notification_figures()
    sms = figures.counts("sms")
    assert (sms.reached, sms.delivered, sms.failed, sms.waiting) == (20, 18, 1, 3)
    assert sms.delivery_rate == 90.0
    assert figures.counts("email").delivered == 5
    assert list(figures.channels) == ["sms", "email"]
    order = [p["name"] for p in figures.providers if p["channel"] == "sms"]
    assert order == ["africastalking", "twilio", "infobip"]
    assert all(p["circuit_open"] is False for p in figures.providers)
    assert state_of("notifications", figures) == ops_cards.Status(GREEN, [])


@pytest.mark.parametrize(("failed", "state"), [(1, GREEN), (2, AMBER), (5, RED)])
def test_notifications_failure_rate(failed, state):
    notifications(20 - failed, "delivered")
    notifications(failed, "failed")
    assert state_of("notifications").state == state  # 5% is fine, over 20% is red


def test_notifications_amber_when_a_provider_cools_off_red_when_all_do():
    notifications(3, "delivered")
    circuit.record_failure("twilio", threshold=1, window=60, cooling_off=60)
    status = state_of("notifications")
    assert status == ops_cards.Status(AMBER, ["Cooling off after failures: Twilio."])
    ops_cache.forget()
    for name in ("africastalking", "infobip"):
        circuit.record_failure(name, threshold=1, window=60, cooling_off=60)
    assert state_of("notifications").state == RED


def test_notifications_circuits_unknown_when_redis_is_down(dead_redis):
    figures = ops_figures.notification_figures()
    assert {p["circuit_open"] for p in figures.providers} == {None}
    assert state_of("notifications", figures).state == GREEN


# --- Jobs ----------------------------------------------------------------------------------------
@pytest.fixture
def healthy_jobs(redis_conn):
    """One worker alive and the scheduler's lock held."""
    alive = Worker([get_queue("default")], connection=redis_conn)
    alive.register_birth()
    redis_conn.set(ops_figures.CRON_LOCK, "scheduler", ex=60)
    yield alive
    alive.register_death()


def test_jobs_green_with_a_worker_and_the_scheduler(healthy_jobs):
    figures = ops_figures.jobs_figures()
    assert figures.workers == 1 and figures.scheduler_alive
    assert figures.queues == {"high": 0, "default": 0, "low": 0}
    assert state_of("jobs", figures) == ops_cards.Status(GREEN, [])


def test_jobs_red_without_worker_or_scheduler():
    status = state_of("jobs")
    assert status.state == RED
    assert status.reasons == [
        "No worker is running: nothing is sent or processed.",
        "The scheduler is not running: periodic jobs (sweeps, reminders) stop.",
    ]


@pytest.mark.parametrize(("depth", "state"), [(100, GREEN), (101, AMBER), (1001, RED)])
def test_jobs_queue_depth(healthy_jobs, redis_conn, depth, state):
    redis_conn.rpush(get_queue("low").key, *[f"job-{n}" for n in range(depth)])
    figures = ops_figures.jobs_figures()
    assert figures.queues["low"] == depth
    assert state_of("jobs", figures).state == state


def test_jobs_amber_with_failed_jobs(healthy_jobs, redis_conn):
    queue = get_queue("default")
    job = Job.create(func=print, args=("x",), connection=redis_conn, origin="default")
    job.save()
    FailedJobRegistry(queue=queue).add(job, ttl=600)
    figures = ops_figures.jobs_figures()
    assert figures.failed == {"high": 0, "default": 1, "low": 0}
    assert state_of("jobs", figures) == ops_cards.Status(
        AMBER, ["1 failed job(s) to retry or delete."]
    )


def test_jobs_red_when_redis_is_down(dead_redis):
    figures = ops_figures.jobs_figures()
    assert not figures.redis_ok and "Connection" in figures.error
    status = state_of("jobs", figures)
    assert status.state == RED and status.reasons[0].startswith("Redis cannot be reached")


# --- Database and Redis --------------------------------------------------------------------------
def test_database_and_redis_green_when_they_answer():
    assert state_of("database").state == GREEN
    assert ops_figures.database_figures().detail in ("SQLite", "PostgreSQL")
    assert state_of("redis").state == GREEN


def test_redis_red_when_down(dead_redis):
    status = state_of("redis")
    assert status.state == RED and status.reasons[0].startswith("Redis cannot be reached: ")


def test_database_red_when_it_does_not_answer(monkeypatch):
    monkeypatch.setattr(
        health, "check_database", lambda: health.Check(ok=False, error="OperationalError: gone")
    )
    assert state_of("database") == ops_cards.Status(
        RED, ["The database cannot be reached: OperationalError: gone"]
    )


@pytest.mark.parametrize("name", ["database", "redis"])
@pytest.mark.parametrize(("ms", "state"), [(250, GREEN), (251, AMBER)])
def test_slow_answers_are_amber(name, ms, state):
    figures = ops_figures.PingFigures(ok=True, ms=ms)
    assert state_of(name, figures).state == state


# --- the cache -----------------------------------------------------------------------------------
def test_database_figures_are_cached_between_polls(redis_conn):
    log_requests(3)
    first = ops_cards.card("api")
    log_requests(3)
    again = ops_cards.card("api")
    assert first.figures.requests == again.figures.requests == 3
    assert again.computed_at == first.computed_at
    assert redis_conn.exists(f"{ops_cache.PREFIX}api")
    ops_cache.forget()
    redis_conn.delete(f"{ops_cache.PREFIX}api")
    assert ops_cards.card("api").figures.requests == 6


def test_a_stale_copy_is_refreshed_once(app, redis_conn, monkeypatch):
    computed = []

    def compute():
        computed.append(1)
        return ops_figures.PingFigures(ok=True, ms=float(len(computed)))

    got = ops_cache.get("probe", compute, ops_figures.PingFigures, ttl=0)
    assert got.figures.ms == 1.0
    redis_conn.set(f"{ops_cache.PREFIX}probe:refresh", "1")  # another process is refreshing it
    assert ops_cache.get("probe", compute, ops_figures.PingFigures, ttl=0).figures.ms == 1.0
    redis_conn.delete(f"{ops_cache.PREFIX}probe:refresh")
    assert ops_cache.get("probe", compute, ops_figures.PingFigures, ttl=0).figures.ms == 2.0


def test_cached_figures_keep_decimals_and_times(full_mpesa):
    transaction(MpesaStatus.PENDING, age=timedelta(minutes=10))
    computed = ops_figures.mpesa_figures()
    text = ops_cache.dumps(computed, NOW, 0)
    cached, _ = ops_cache.loads(text, ops_figures.MpesaFigures)
    assert cached.figures == computed
    assert isinstance(cached.figures.oldest_pending_at, datetime)


def test_cards_answer_when_redis_is_down(dead_redis):
    log_requests(2)
    for name in ops_cards.CARDS:
        assert ops_cards.card(name).figures is not None
    assert ops_cards.card("redis").status.state == RED
    log_requests(2)
    assert ops_cards.card("api").figures.requests == 2  # kept in this process meanwhile


def test_a_copy_cached_by_another_release_is_recomputed(redis_conn):
    redis_conn.set(f"{ops_cache.PREFIX}api", '{"figures": {"renamed": 1}, "at": 0}')
    assert ops_cards.card("api").figures == ops_figures.ApiFigures()
