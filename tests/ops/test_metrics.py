"""/metrics: Prometheus text that prometheus_client's own parser reads, with real figures from
the database, Redis and this process; a bearer token or an allow-list in front of it."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.jobs import get_queue
from app.models import (
    MpesaTransaction,
    Notification,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.services import api_keys
from app.services.crypto import encrypt
from tests.factories import SYSTEM

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789abcdef"
LOANS = "/api/accounting/v1/loans"


@pytest.fixture
def open_metrics(app, monkeypatch):
    """The development rule: no token, no allow-list, open to loopback."""
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_TOKEN", None)
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_ALLOWED_IPS", "")
    monkeypatch.setitem(app.config, "METRICS_OPEN_ON_LOOPBACK", True)


def scrape(client) -> dict:
    """{(sample name, frozenset of labels): value} of one /metrics answer."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.content_type.startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_api_requests_are_counted_by_endpoint_and_status_and_timed(client, open_metrics):
    _, plaintext = api_keys.create_key("Ledger sync", ["read_loans"], SYSTEM)
    ok = {"endpoint": "api.list_loans", "method": "GET", "status": "200"}
    before = scrape(client)
    assert client.get(LOANS, headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    assert client.get(LOANS, headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    assert client.get(LOANS).status_code == 401
    assert client.get("/api/accounting/v1/no-such-thing").status_code == 404
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("daystar_api_requests_total", **ok) == 2
    assert grew("daystar_api_requests_total", **{**ok, "status": "401"}) == 1
    assert grew("daystar_api_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    timed = {"endpoint": "api.list_loans"}
    assert grew("daystar_api_request_duration_seconds_count", **timed) == 3
    assert grew("daystar_api_request_duration_seconds_bucket", **timed, le="+Inf") == 3
    assert grew("daystar_api_request_duration_seconds_sum", **timed) > 0
    # The portal and the ops endpoints are not API requests.
    assert not any(
        labels and dict(labels).get("endpoint", "").startswith("ops.") for _, labels in after
    )


def test_database_figures_are_counted_at_scrape_time(client, open_metrics, db):
    for status in ("completed", "completed", "failed"):
        db.session.add(
            MpesaTransaction(
                transaction_type="stk_push",
                status=status,
                environment="sandbox",
                amount=Decimal("1500.00"),
            )
        )
    db.session.add(
        MpesaTransaction(
            transaction_type="b2c", status="pending", environment="sandbox", amount=Decimal("10")
        )
    )
    db.session.add(
        Notification(
            notification_type="repayment_received",
            channel="sms",
            provider="africastalking",
            status="delivered",
            message="Thank you",
        )
    )
    db.session.add(
        Notification(notification_type="loan_approved", channel="email", message="Approved")
    )
    endpoint = WebhookEndpoint(url="https://ledger.example/hooks", secret_encrypted=encrypt("s"))
    db.session.add(endpoint)
    db.session.flush()
    for n, status in enumerate(("succeeded", "succeeded", "failed")):
        db.session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_type="loan.approved",
                message_id=f"msg_{n}",
                payload={},
                status=status,
            )
        )
    db.session.commit()

    samples = scrape(client)
    assert value(samples, "daystar_mpesa_transactions", type="stk_push", status="completed") == 2
    assert value(samples, "daystar_mpesa_transactions", type="stk_push", status="failed") == 1
    assert value(samples, "daystar_mpesa_transactions", type="b2c", status="pending") == 1
    assert (
        value(
            samples,
            "daystar_notifications",
            channel="sms",
            provider="africastalking",
            status="delivered",
        )
        == 1
    )
    assert (
        value(samples, "daystar_notifications", channel="email", provider="none", status="pending")
        == 1
    )
    assert value(samples, "daystar_webhook_deliveries", outcome="succeeded") == 2
    assert value(samples, "daystar_webhook_deliveries", outcome="failed") == 1
    assert value(samples, "daystar_metrics_source_up", source="database") == 1


def test_queue_depths_failed_jobs_and_workers(client, open_metrics, run_jobs, live_worker):
    get_queue("high").enqueue("builtins.int", "not a number")  # fails: ValueError
    run_jobs()
    get_queue("low").enqueue("builtins.len", "abc")
    get_queue("low").enqueue("builtins.len", "abcd")
    samples = scrape(client)
    assert value(samples, "daystar_rq_jobs", queue="low", state="queued") == 2
    assert value(samples, "daystar_rq_jobs", queue="high", state="queued") == 0
    assert value(samples, "daystar_rq_jobs", queue="high", state="failed") == 1
    assert value(samples, "daystar_rq_jobs", queue="default", state="failed") == 0
    assert value(samples, "daystar_rq_workers") == 1
    assert value(samples, "daystar_metrics_source_up", source="redis") == 1


def test_an_unreachable_redis_leaves_its_figures_out_but_still_answers(
    client, open_metrics, redis_down
):
    samples = scrape(client)
    assert value(samples, "daystar_metrics_source_up", source="redis") == 0
    assert value(samples, "daystar_metrics_source_up", source="database") == 1
    assert not any(name.startswith("daystar_rq_") for name, _ in samples)


# --- who may read it --------------------------------------------------------------------------


def test_a_token_is_required_when_configured(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_TOKEN", TOKEN)
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_ALLOWED_IPS", "")
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in missing.text
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and "daystar_rq_jobs" in right.text
    # Loopback is no way around the token.
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 401


def test_an_allow_list_admits_only_its_networks(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_TOKEN", None)
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_ALLOWED_IPS", "10.1.0.0/16, 192.0.2.7")

    def from_(ip):
        return client.get("/metrics", environ_base={"REMOTE_ADDR": ip}).status_code

    assert from_("10.1.44.2") == 200
    assert from_("192.0.2.7") == 200
    assert from_("::ffff:10.1.0.9") == 200
    assert from_("192.0.2.8") == 403
    assert from_("127.0.0.1") == 403


def test_with_both_configured_both_apply(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_TOKEN", TOKEN)
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_ALLOWED_IPS", "10.0.0.0/8")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    inside, outside = {"REMOTE_ADDR": "10.2.3.4"}, {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", headers=bearer, environ_base=inside).status_code == 200
    assert client.get("/metrics", headers=bearer, environ_base=outside).status_code == 403
    assert client.get("/metrics", environ_base=inside).status_code == 401


def test_unconfigured_metrics_are_404_in_production(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_TOKEN", None)
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_ALLOWED_IPS", "")
    monkeypatch.setitem(app.config, "METRICS_OPEN_ON_LOOPBACK", False)  # ProductionConfig
    for ip in ("127.0.0.1", "203.0.113.9"):
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": ip}).status_code == 404


def test_unconfigured_metrics_are_open_to_loopback_only_in_development(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_TOKEN", None)
    monkeypatch.setitem(app.config, "DAYSTAR_METRICS_ALLOWED_IPS", "")
    monkeypatch.setitem(app.config, "METRICS_OPEN_ON_LOOPBACK", True)  # DevelopmentConfig

    def from_(ip):
        return client.get("/metrics", environ_base={"REMOTE_ADDR": ip}).status_code

    assert from_("127.0.0.1") == 200
    assert from_("::1") == 200
    assert from_("203.0.113.9") == 404


def test_configuration_defaults():
    from config import DevelopmentConfig, ProductionConfig

    assert DevelopmentConfig.METRICS_OPEN_ON_LOOPBACK is True
    assert ProductionConfig.METRICS_OPEN_ON_LOOPBACK is False


def test_a_bad_allow_list_stops_the_app_at_start_up():
    from flask import Flask

    from app.blueprints.ops import bp
    from config import ConfigError

    bare = Flask(__name__)  # a bare app: create_app() would re-bind the shared extensions
    bare.config["DAYSTAR_METRICS_ALLOWED_IPS"] = "10.0.0.0/8 not-a-network"
    with pytest.raises(ConfigError, match="not-a-network"):
        bare.register_blueprint(bp)


# --- several processes --------------------------------------------------------------------------

RECORD_ONE = (
    "from app.services.metrics import observe_api_request; "
    "observe_api_request('api.list_loans', 'GET', 200, 0.02)"
)


def test_in_multiprocess_mode_every_process_counts(client, open_metrics, monkeypatch, tmp_path):
    """Two processes (as gunicorn's workers) each answer one API request; a scrape served by a
    third sees both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    processes = [
        subprocess.Popen([sys.executable, "-c", RECORD_ONE], cwd=ROOT, env=env)  # noqa: S603
        for _ in range(2)
    ]
    assert [process.wait(timeout=60) for process in processes] == [0, 0]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    ok = {"endpoint": "api.list_loans", "method": "GET", "status": "200"}
    assert value(samples, "daystar_api_requests_total", **ok) == 2
    assert (
        value(samples, "daystar_api_request_duration_seconds_count", endpoint="api.list_loans") == 2
    )
    assert value(samples, "daystar_metrics_source_up", source="database") == 1
