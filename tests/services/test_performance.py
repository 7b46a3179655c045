"""Performance rollups: samples recorded where they happen (callbacks, workers), rolled up per
five minutes with known percentiles, idempotently, and combined into hours and days for the page."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy import func, select

from app.extensions import db
from app.jobs import enqueue, get_queue
from app.jobs.performance import roll_up_performance
from app.models import (
    ApiRequestLog,
    Channel,
    MpesaCallback,
    Notification,
    NotificationStatus,
    PerformanceSample,
    PerformanceSeries,
)
from app.models.base import utcnow
from app.services import performance
from app.services import performance_charts as charts
from app.services.errors import ValidationFailed
from tests.mpesa.conftest import callback_path, sample, sample_bytes, sent_stk

CALLBACK = PerformanceSeries.CALLBACK_ACK
JOBS = PerformanceSeries.JOB_DURATION
API = PerformanceSeries.API_LATENCY
NOTIFY = PerformanceSeries.NOTIFICATION_DELIVERY


@pytest.fixture(autouse=True)
def redis_up():
    """Each test starts with Redis taken to be reachable (a previous test may have found it down)."""
    performance._state.redis_down_until = 0.0
    yield
    performance._state.redis_down_until = 0.0


def rows(series) -> list[PerformanceSample]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(PerformanceSample)
            .where(PerformanceSample.series == series)
            .order_by(PerformanceSample.key, PerformanceSample.bucket_start)
        )
    )


def later() -> datetime:
    """A moment when the bucket just recorded is over and settled."""
    return utcnow() + performance.BUCKET + timedelta(minutes=1)


def last_bucket() -> datetime:
    """The start of the five minutes before the present ones."""
    return performance.floor_bucket(utcnow()) - performance.BUCKET


def away_from_a_bucket_edge() -> None:
    """Wait out the last second of a bucket, so that samples recorded next share one bucket."""
    left = performance.floor_bucket(utcnow()) + performance.BUCKET - utcnow()
    if left < timedelta(seconds=1):
        time.sleep(max(0.0, left.total_seconds()) + 0.05)


def push(redis_conn, series, start: datetime, samples: list[tuple[str, float, bool]]) -> None:
    """Samples placed in a given bucket's list, as record() would have put them then."""
    name = performance.bucket_key(series, start)
    redis_conn.rpush(name, *(f"{k}\t{ms}\t{int(failed)}" for k, ms, failed in samples))


# --- figures ------------------------------------------------------------------------------------


def test_percentiles_of_known_samples_are_nearest_rank():
    figures = performance.summarise([float(ms) for ms in range(100, 0, -1)], failed=3)
    assert (figures.count, figures.failed, figures.sum_ms) == (100, 3, 5050.0)
    assert (figures.p50_ms, figures.p95_ms, figures.p99_ms, figures.max_ms) == (50, 95, 99, 100)
    single = performance.summarise([7.5])
    assert (single.count, single.p50_ms, single.p99_ms, single.max_ms) == (1, 7.5, 7.5, 7.5)


def test_merging_two_sets_of_figures_is_exact_for_counts_and_weighted_for_percentiles():
    a = performance.summarise([10.0] * 10)  # p95 10
    b = performance.summarise([20.0] * 29 + [200.0])  # p95 20, max 200
    merged = performance.merge(a, b)
    assert (merged.count, merged.sum_ms, merged.max_ms) == (40, 100 + 780, 200.0)
    assert merged.p95_ms == pytest.approx((10 * 10 + 20 * 30) / 40)


# --- callbacks and jobs through Redis -----------------------------------------------------------


def test_rollup_turns_recorded_samples_into_a_row_with_known_figures_and_deletes_them(
    redis_conn,
):
    away_from_a_bucket_edge()
    for ms in range(1, 101):
        assert performance.record(CALLBACK, "stk", float(ms), failed=ms <= 2)
    performance.record(CALLBACK, "c2b_confirmation", 4.25)
    bucket = performance.floor_bucket(utcnow())
    assert redis_conn.llen(performance.bucket_key(CALLBACK, bucket)) == 101

    result = performance.roll_up(now=later())

    assert result.rows[CALLBACK] == 2 and result.samples_taken == 101
    c2b, stk = rows(CALLBACK)
    assert (stk.key, stk.bucket_start, stk.count, stk.failed) == ("stk", bucket, 100, 2)
    assert (stk.p50_ms, stk.p95_ms, stk.p99_ms, stk.max_ms, stk.sum_ms) == (50, 95, 99, 100, 5050)
    assert (c2b.key, c2b.count, c2b.p99_ms) == ("c2b_confirmation", 1, 4.25)
    assert not redis_conn.exists(performance.bucket_key(CALLBACK, bucket))


def test_running_the_rollup_twice_changes_nothing(redis_conn):
    bucket = last_bucket()
    push(redis_conn, CALLBACK, bucket, [("stk", 10.0, False), ("stk", 30.0, True)])
    push(redis_conn, JOBS, bucket, [("default:app.jobs.events.dispatch_event", 120.0, False)])
    first = performance.roll_up(now=later())
    before = [(r.series, r.key, r.count, r.failed, r.p95_ms) for r in rows(CALLBACK) + rows(JOBS)]
    second = performance.roll_up(now=later())
    after = [(r.series, r.key, r.count, r.failed, r.p95_ms) for r in rows(CALLBACK) + rows(JOBS)]
    assert first.samples_taken == 3 and second.samples_taken == 0
    assert (
        before
        == after
        == [
            ("callback_ack", "stk", 2, 1, 30.0),
            ("job_duration", "default:app.jobs.events.dispatch_event", 1, 0, 120.0),
        ]
    )


def test_the_bucket_in_progress_waits_for_the_next_run(redis_conn):
    performance.record(CALLBACK, "stk", 5.0)
    result = performance.roll_up(now=utcnow())
    assert result.samples_taken == 0 and rows(CALLBACK) == []
    assert redis_conn.llen(performance.bucket_key(CALLBACK, utcnow())) == 1


def test_a_late_sample_is_merged_into_the_row_already_written(redis_conn):
    bucket = last_bucket()
    push(redis_conn, CALLBACK, bucket, [("stk", 10.0, False)] * 10)
    performance.roll_up(now=later())
    push(redis_conn, CALLBACK, bucket, [("stk", 20.0, False)] * 29 + [("stk", 200.0, True)])
    performance.roll_up(now=later())
    (row,) = rows(CALLBACK)
    assert (row.count, row.failed, row.max_ms, row.sum_ms) == (40, 1, 200.0, 880.0)
    assert row.p95_ms == pytest.approx(17.5)


def test_samples_go_back_to_redis_when_the_database_fails(redis_conn, monkeypatch):
    bucket = last_bucket()
    push(redis_conn, CALLBACK, bucket, [("stk", 12.0, False)])

    def broken(*args, **kwargs):
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(performance, "_add", broken)
    with pytest.raises(RuntimeError):
        performance.roll_up(now=later())
    assert redis_conn.lrange(performance.bucket_key(CALLBACK, bucket), 0, -1) == [b"stk\t12.0\t0"]
    monkeypatch.undo()
    performance.roll_up(now=later())
    assert [(r.key, r.count) for r in rows(CALLBACK)] == [("stk", 1)]


def test_a_second_rollup_while_one_runs_does_nothing(redis_conn):
    bucket = last_bucket()
    push(redis_conn, CALLBACK, bucket, [("stk", 12.0, False)])
    redis_conn.set(performance.LOCK_KEY, "1")
    assert performance.roll_up(now=later()).skipped == "another rollup is running"
    assert rows(CALLBACK) == [] and redis_conn.exists(performance.bucket_key(CALLBACK, bucket))


def test_recording_with_redis_down_is_skipped_without_an_error(app, monkeypatch):
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "redis", down)
    assert performance.record(CALLBACK, "stk", 5.0) is False
    assert performance._state.redis_down_until > 0  # and Redis is left alone for a while
    assert performance.record(CALLBACK, "stk", 5.0, connection=down) is False


def test_rollup_with_redis_down_still_rolls_up_the_database_series(app, monkeypatch):
    add_requests(last_bucket(), [("/api/accounting/v1/members", 200, 15)])
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "redis", down)
    result = performance.roll_up(now=later())
    assert result.rows[API] == 1 and result.samples_taken == 0
    assert [(r.key, r.count) for r in rows(API)] == [("GET /api/accounting/v1/members", 1)]


def test_the_callback_is_acknowledged_and_timed(client, member, mpesa_settings, redis_conn):
    sent_stk(member, sample("stk_callback_success.json"))
    away_from_a_bucket_edge()
    answer = client.post(
        callback_path("stk"),
        data=sample_bytes("stk_callback_success.json"),
        content_type="application/json",
    )
    answer.close()  # as the server does once the answer is sent: the sample is recorded then
    assert answer.get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    refused = client.post(callback_path("stk"), data=b"not json", content_type="application/json")
    refused.close()
    assert refused.status_code == 400
    wrong_secret = client.post("/callbacks/mpesa/wrong/stk", data=b"{}")
    wrong_secret.close()
    assert wrong_secret.status_code == 403  # refused before it is a callback: not timed

    performance.roll_up(now=later())
    (row,) = rows(CALLBACK)
    assert (row.key, row.count, row.failed) == ("stk", 2, 1)
    assert 0 < row.p50_ms <= row.max_ms


def test_with_redis_down_callbacks_are_still_acknowledged(
    app, client, member, mpesa_settings, monkeypatch
):
    sent_stk(member, sample("stk_callback_success.json"))
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "redis", down)
    for _ in range(2):
        answer = client.post(
            callback_path("stk"),
            data=sample_bytes("stk_callback_success.json"),
            content_type="application/json",
        )
        answer.close()
        assert answer.status_code == 200
        assert answer.get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert db.session.scalar(select(func.count()).select_from(MpesaCallback)) == 2


def failing_job():
    raise ValueError("this job fails")


def test_no_fork_worker_records_each_jobs_duration_and_outcome(redis_conn):
    from worker import NoForkWorker

    enqueue("builtins.len", "abc", queue="low", retry=None)
    enqueue(failing_job, queue="low", retry=None)
    NoForkWorker([get_queue("low")], connection=redis_conn).work(burst=True)

    performance.roll_up(now=later())
    found = {r.key: (r.count, r.failed) for r in rows(JOBS)}
    assert found == {"low:builtins.len": (1, 0), f"low:{__name__}.failing_job": (1, 1)}
    assert all(r.max_ms is not None and r.max_ms >= 0 for r in rows(JOBS))


def test_forking_worker_records_the_job_run_in_its_work_horse(redis_conn):
    from worker import ForkWorker

    enqueue("builtins.len", "abcd", queue="default", retry=None)
    ForkWorker([get_queue("default")], connection=redis_conn).work(burst=True)
    performance.roll_up(now=later())
    assert [(r.key, r.count, r.failed) for r in rows(JOBS)] == [("default:builtins.len", 1, 0)]


def test_the_periodic_job_runs_the_rollup(redis_conn):
    # Two buckets back: the one just over is not taken in the first SETTLE_SECONDS of the next.
    settled = performance.floor_bucket(utcnow()) - 2 * performance.BUCKET
    push(redis_conn, JOBS, settled, [("high:app.jobs.mpesa.process_callback", 40.0, False)])
    assert roll_up_performance()[JOBS] == 1


# --- API latency and notifications from the database --------------------------------------------


def add_requests(start: datetime, requests: list[tuple[str, int, int]]) -> None:
    db.session.add_all(
        ApiRequestLog(
            method="GET",
            path=path,
            status=status,
            duration_ms=ms,
            created_at=start + timedelta(seconds=n % 60),
        )
        for n, (path, status, ms) in enumerate(requests)
    )
    db.session.commit()


def test_api_latency_per_endpoint_from_the_request_log_recomputed_idempotently():
    bucket = last_bucket()
    loans = [(f"/api/accounting/v1/loans/{n}", 500 if n == 7 else 200, n) for n in range(1, 21)]
    add_requests(bucket, [*loans, ("/api/accounting/v1/nothing-here", 404, 3)])
    add_requests(bucket + performance.BUCKET, [("/api/accounting/v1/loans/5", 200, 8)])

    performance.roll_up(now=later())
    first = [(r.key, r.bucket_start, r.count, r.failed, r.p50_ms, r.p95_ms, r.max_ms)
             for r in rows(API)]  # fmt: skip
    performance.roll_up(now=later())
    second = [(r.key, r.bucket_start, r.count, r.failed, r.p50_ms, r.p95_ms, r.max_ms)
              for r in rows(API)]  # fmt: skip

    loan_route = "GET /api/accounting/v1/loans/<id:loan_id>"
    assert (
        first
        == second
        == [
            ("GET (no such route)", bucket, 1, 0, 3, 3, 3),
            (loan_route, bucket, 20, 1, 10, 19, 20),
            (loan_route, bucket + performance.BUCKET, 1, 0, 8, 8, 8),
        ]
    )


def test_api_rows_written_later_replace_the_bucket_they_belong_to():
    bucket = last_bucket()
    add_requests(bucket, [("/api/accounting/v1/members", 200, 10)])
    performance.roll_up(now=later())
    add_requests(bucket, [("/api/accounting/v1/members", 200, 30)])  # flushed late
    performance.roll_up(now=later())
    assert [(r.count, r.max_ms) for r in rows(API)] == [(2, 30)]


def notification(provider, status, sent_at=None, delivered_at=None, failed_at=None):
    return Notification(
        notification_type="test",
        channel=Channel.SMS,
        provider=provider,
        message="hello",
        recipient_contact="254700000001",
        status=status,
        sent_at=sent_at,
        delivered_at=delivered_at,
        failed_at=failed_at,
    )


def test_notification_delivery_counts_each_outcome_in_its_bucket():
    moment = last_bucket() + timedelta(minutes=1, seconds=30)
    next_moment = moment + performance.BUCKET
    db.session.add_all([
        notification("africastalking", NotificationStatus.DELIVERED, moment, next_moment),
        notification("africastalking", NotificationStatus.DELIVERED, moment, next_moment),
        notification("africastalking", NotificationStatus.FAILED, moment, failed_at=next_moment),
        notification("africastalking", NotificationStatus.SENT, next_moment),
        notification(None, NotificationStatus.FAILED, failed_at=moment),
        notification("twilio", NotificationStatus.PENDING),
    ])  # fmt: skip
    db.session.commit()

    performance.roll_up(now=later())
    performance.roll_up(now=later())

    found = [(r.key, r.bucket_start, r.count, r.delivered, r.failed) for r in rows(NOTIFY)]
    bucket = last_bucket()
    assert found == [
        ("sms/africastalking", bucket, 3, 0, 0),
        ("sms/africastalking", bucket + performance.BUCKET, 1, 2, 1),
        ("sms/none", bucket, 0, 0, 1),
    ]


def test_rollups_older_than_the_retention_are_deleted():
    old = performance.floor_bucket(utcnow()) - timedelta(days=performance.RETENTION_DAYS + 1)
    db.session.add(PerformanceSample(series=JOBS, key="low:x", bucket_start=old, count=1))
    db.session.commit()
    assert performance.roll_up(now=later()).pruned == 1
    assert rows(JOBS) == []


# --- combining buckets for the page -------------------------------------------------------------


def add_bucket(series, key, start, count, p95, failed=0, delivered=0, max_ms=None):
    timed = series != NOTIFY
    db.session.add(
        PerformanceSample(
            series=series,
            key=key,
            bucket_start=start,
            count=count,
            failed=failed,
            delivered=delivered,
            sum_ms=p95 * count if timed else None,
            p50_ms=p95 / 2 if timed else None,
            p95_ms=p95 if timed else None,
            p99_ms=p95 * 1.5 if timed else None,
            max_ms=(max_ms or p95 * 2) if timed else None,
        )
    )


def test_buckets_combine_into_hours_by_count_weighted_percentiles():
    now = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)  # 12:30 in Nairobi
    hour = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # 11:00 in Nairobi
    add_bucket(CALLBACK, "stk", hour, 10, 100.0, failed=1)
    add_bucket(CALLBACK, "stk", hour + timedelta(minutes=5), 30, 20.0, max_ms=400.0)
    add_bucket(CALLBACK, "c2b_confirmation", hour + timedelta(minutes=10), 10, 10.0)
    add_bucket(CALLBACK, "stk", hour - timedelta(days=2), 99, 999.0)  # before the period
    db.session.commit()

    report = charts.report("24h", {CALLBACK: "stk"}, now=now)
    stk = report.series[CALLBACK]
    assert report.buckets[-1] == datetime(2026, 11, 28, 12, 0) and len(report.buckets) == 24
    point = stk.points[report.buckets.index(datetime(2026, 11, 28, 11, 0))]
    assert (point.count, point.failed, point.max_ms, point.worst_p95_ms) == (40, 1, 400.0, 100.0)
    assert point.p95_ms == (10 * 100 + 30 * 20) / 40  # 40.0
    assert point.avg_ms == (10 * 100 + 30 * 20) / 40
    assert stk.total.count == 40 and stk.total.failure_rate == 2.5
    assert [row.key for row in stk.keys] == ["stk", "c2b_confirmation"]

    everything = charts.report("24h", {}, now=now).series[CALLBACK]
    assert everything.total.count == 50
    assert everything.total.p95_ms == (1000 + 600 + 100) / 50


def test_notification_rates_combine_into_days():
    now = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    day = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # the 27th in Nairobi
    add_bucket(NOTIFY, "sms/africastalking", day, 10, 0, delivered=8, failed=2)
    add_bucket(NOTIFY, "email/sendgrid", day + timedelta(hours=3), 5, 0, delivered=1, failed=1)
    db.session.commit()
    report = charts.report("30d", {}, now=now)
    delivery = report.series[NOTIFY]
    point = delivery.points[report.buckets.index(datetime(2026, 11, 27))]
    assert (point.count, point.delivered, point.failed, point.delivery_rate) == (15, 9, 3, 75.0)
    assert point.p95_ms is None
    assert [(r.label, r.figures.delivery_rate) for r in delivery.keys] == [
        ("SMS · Africa's Talking", 80.0),
        ("Email · SendGrid", 50.0),
    ]


def test_bad_period_and_filters_are_refused():
    with pytest.raises(ValidationFailed) as period:
        charts.check_period("1y")
    assert "24 hours" in period.value.errors["period"]
    with pytest.raises(ValidationFailed) as keys:
        charts.check_keys({"job": "x" * 201, "endpoint": "ok"})
    assert list(keys.value.errors) == ["job"]
