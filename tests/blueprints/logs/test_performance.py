"""Logs > Performance: the four series from the rollups, as a full page, as the panel (period
switch) and as one series' section (key filter); odd filters answered 422; read permission."""

import json
import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import PerformanceSample, PerformanceSeries
from app.models.base import utcnow
from app.services.performance import floor_bucket
from tests.blueprints.logs.conftest import HX

URL = "/integrations/logs/performance"
LOAN_ROUTE = "GET /api/accounting/v1/loans/<id:loan_id>"


def add(series, key, minutes_ago, count, p95, failed=0, delivered=0):
    timed = series != PerformanceSeries.NOTIFICATION_DELIVERY
    db.session.add(
        PerformanceSample(
            series=series,
            key=key,
            bucket_start=floor_bucket(utcnow()) - timedelta(minutes=minutes_ago),
            count=count,
            failed=failed,
            delivered=delivered,
            sum_ms=p95 * count if timed else None,
            p50_ms=p95 / 2 if timed else None,
            p95_ms=p95 if timed else None,
            p99_ms=p95 * 2 if timed else None,
            max_ms=p95 * 3 if timed else None,
        )
    )


@pytest.fixture
def figures():
    """A little of everything in the last hours, and a key seen only 3 days ago."""
    add(PerformanceSeries.API_LATENCY, LOAN_ROUTE, 60, 120, 80.0, failed=3)
    add(PerformanceSeries.API_LATENCY, "GET /api/accounting/v1/members", 61, 40, 30.0)
    add(PerformanceSeries.API_LATENCY, "GET /api/accounting/v1/members", 3 * 24 * 60, 5, 9.0)
    add(PerformanceSeries.CALLBACK_ACK, "stk", 30, 250, 42.0, failed=1)
    add(PerformanceSeries.JOB_DURATION, "high:app.jobs.mpesa.process_callback", 30, 250, 150.0)
    add(
        PerformanceSeries.JOB_DURATION, "low:app.jobs.performance.roll_up_performance", 30, 1, 900.0
    )
    add(PerformanceSeries.NOTIFICATION_DELIVERY, "sms/africastalking", 90, 200, 0, 20, 180)
    db.session.commit()


def chart_data(html: str, series: str) -> dict:
    found = re.search(rf'<script type="application/json" id="perf-{series}-data">(.*?)</script>',
                      html, re.S)  # fmt: skip
    assert found, f"no chart data for {series}"
    return json.loads(found.group(1))


def test_the_full_page_shows_every_series_with_its_figures(viewer_client, figures):
    page = viewer_client.get(URL)
    assert page.status_code == 200
    assert "<html" in page.text and "HX-Request" in page.headers["Vary"]
    assert 'href="/integrations/logs/performance" aria-current="page"' in page.text  # the tab
    for title in ("API latency", "M-Pesa callback acknowledgement", "Job durations",
                  "Notification delivery"):  # fmt: skip
        assert title in page.text
    api = page.text.split('id="perf-api_latency"')[1].split('id="perf-callback_ack"')[0]
    assert ">160</div><small>requests" in api
    assert "3 failed" not in api and "failed (3)" in api
    assert "<code>GET /api/accounting/v1/loans/&lt;id:loan_id&gt;</code>" in api
    # p95 over both endpoints, weighted by count: (120 * 80 + 40 * 30) / 160
    assert ">67.5 ms</div><small>p95 (weighted)" in api
    assert "process_callback (high)" in page.text and "roll_up_performance (low)" in page.text
    assert ">90.0%</div><small>delivery rate" in page.text  # 180 of 180 + 20
    assert "SMS · Africa&#39;s Talking" in page.text
    assert "weighted by how many samples each had" in page.text

    callback = chart_data(page.text, "callback_ack")
    assert callback["type"] == "line" and len(callback["labels"]) == 24
    assert [d["label"] for d in callback["datasets"]] == [
        "p50 (ms)", "p95 (ms)", "p99 (ms)", "Target: p99 under 100 ms"]  # fmt: skip
    assert 42.0 in callback["datasets"][1]["data"] and None in callback["datasets"][1]["data"]
    delivery = chart_data(page.text, "notification_delivery")
    assert 90.0 in delivery["datasets"][0]["data"]
    counts = chart_data(page.text, "notification_delivery-counts")
    assert [sum(d["data"]) for d in counts["datasets"]] == [200, 180, 20]


def test_the_period_switch_returns_the_panel(viewer_client, figures):
    day = viewer_client.get(URL, headers=HX)
    week = viewer_client.get(URL, query_string={"period": "7d"}, headers=HX)
    month = viewer_client.get(URL, query_string={"period": "30d"}, headers=HX)
    for response in (day, week, month):
        assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
        assert "<html" not in response.text
        assert response.text.lstrip().startswith('<form id="performance"')
    assert "Performance over the last 7 days" in week.text
    # the members endpoint's call of 3 days ago counts in 7 days, not in 24 hours
    assert ">160</div><small>requests" in day.text and ">165</div><small>requests" in week.text
    assert len(chart_data(week.text, "api_latency")["labels"]) == 7 * 24
    assert len(chart_data(month.text, "api_latency")["labels"]) == 30
    assert "Nairobi day" in month.text and "Nairobi hour" in week.text


def test_a_key_filter_returns_only_its_series_section(viewer_client, figures):
    response = viewer_client.get(
        URL,
        query_string={"part": "api_latency", "endpoint": LOAN_ROUTE, "period": "24h"},
        headers=HX,
    )
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<section id="perf-api_latency"')
    assert 'id="perf-callback_ack"' not in html
    assert ">120</div><small>requests" in html and ">80.0 ms</div><small>p95" in html
    assert (
        f'<option value="{LOAN_ROUTE.replace("<", "&lt;").replace(">", "&gt;")}" selected>' in html
    )
    # without htmx the same address is the whole page, filtered
    page = viewer_client.get(URL, query_string={"part": "api_latency", "endpoint": LOAN_ROUTE})
    assert "<html" in page.text and ">120</div><small>requests" in page.text
    assert 'id="perf-job_duration"' in page.text


def test_a_key_with_nothing_in_the_period_says_so(viewer_client, figures):
    response = viewer_client.get(
        URL, query_string={"part": "job_duration", "job": "low:app.jobs.gone"}, headers=HX
    )
    assert response.status_code == 200
    assert "(nothing in this period)" in response.text
    assert "Nothing for app.jobs.gone (low) in the last 24 hours." in response.text


def test_an_empty_page(viewer_client):
    page = viewer_client.get(URL)
    assert page.status_code == 200
    assert page.text.count('class="empty"') == 4


def test_odd_filters_are_refused_with_422(viewer_client):
    bad_period = viewer_client.get(URL, query_string={"period": "1y"})
    assert bad_period.status_code == 422
    assert "Choose 24 hours, 7 days or 30 days." in bad_period.text
    panel = viewer_client.get(URL, query_string={"period": "1y"}, headers=HX)
    assert panel.status_code == 422 and panel.text.lstrip().startswith('<form id="performance"')
    section = viewer_client.get(
        URL, query_string={"part": "job_duration", "job": "x" * 300}, headers=HX
    )
    assert section.status_code == 422
    assert section.text.lstrip().startswith('<section id="perf-job_duration"')
    assert "at most 200 characters" in section.text
    nul = viewer_client.get(URL, query_string={"channel": "sms\x00"})
    assert nul.status_code == 422


@pytest.mark.parametrize("role_client", ["viewer_client", "officer_client", "admin_client"])
def test_every_staff_role_may_read_it(request, role_client, figures):
    assert request.getfixturevalue(role_client).get(URL).status_code == 200


def test_signed_out_visitors_are_sent_to_sign_in(client):
    page = client.get(URL)
    assert page.status_code == 302 and "/auth/login" in page.headers["Location"]
    partial = client.get(URL, headers=HX)
    assert "/auth/login" in partial.headers.get("HX-Redirect", "")


def test_the_page_reads_rollups_in_a_few_queries(viewer_client, figures, app):
    from sqlalchemy import event

    statements = []

    def count(conn, cursor, statement, *args):
        if "performance_samples" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert viewer_client.get(URL, headers=HX).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 4  # one per series
