"""Logs > Performance in headless Chromium: the charts drawn by the vendored Chart.js, the period
switch redrawing the panel, and each key filter redrawing its own section while the address keeps
every choice."""

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import PerformanceSeries, Role
from tests.blueprints.logs.test_performance import LOAN_ROUTE, add
from tests.e2e.test_portal_flow import SCREENSHOTS, sign_in

pytestmark = pytest.mark.e2e


def labels(series: str) -> str:
    selector = f"canvas#perf-{series}-chart"
    return (
        f"() => window.Chart && Chart.getChart(document.querySelector('{selector}'))"
        f" && Chart.getChart(document.querySelector('{selector}')).data.labels.length"
    )


def test_viewer_reads_the_performance_charts_and_filters_them(page, staff_user):
    viewer = staff_user(Role.VIEWER)
    for minutes_ago in (30, 90, 150):
        add(PerformanceSeries.API_LATENCY, LOAN_ROUTE, minutes_ago, 40, 80.0, failed=1)
        add(PerformanceSeries.API_LATENCY, "GET /api/accounting/v1/members", minutes_ago, 10, 20.0)
        add(PerformanceSeries.CALLBACK_ACK, "stk", minutes_ago, 100, 35.0 + minutes_ago / 10)
        add(PerformanceSeries.JOB_DURATION, "high:app.jobs.mpesa.process_callback", minutes_ago,
            100, 120.0)  # fmt: skip
        add(PerformanceSeries.JOB_DURATION, "default:app.jobs.events.dispatch_event", minutes_ago,
            20, 300.0, failed=2)  # fmt: skip
        add(PerformanceSeries.NOTIFICATION_DELIVERY, "sms/africastalking", minutes_ago, 50, 0,
            failed=5, delivered=45)  # fmt: skip
    db.session.commit()
    sign_in(page, viewer.email)

    page.goto("/integrations/logs/performance")
    expect(page.locator("#performance h2")).to_have_text("Performance over the last 24 hours")
    for series in ("api_latency", "callback_ack", "job_duration", "notification_delivery"):
        page.wait_for_function(labels(series) + " === 24")
    expect(page.locator("#perf-api_latency-count")).to_contain_text("150")

    page.select_option("#perf-period", "7d")  # the panel is swapped and its charts drawn
    expect(page.locator("#performance h2")).to_have_text("Performance over the last 7 days")
    page.wait_for_function(labels("api_latency") + " === 168")

    page.select_option("#perf-api_latency-key", LOAN_ROUTE)  # only that section is swapped
    expect(page.locator("#perf-api_latency-count")).to_contain_text("120")
    page.wait_for_function(labels("api_latency") + " === 168")
    page.select_option("#perf-job_duration-key", "default:app.jobs.events.dispatch_event")
    expect(page.locator("#perf-job_duration-failed")).to_contain_text("10.0%")
    expect(page.locator("#perf-api_latency-count")).to_contain_text("120")  # left as it was

    query = parse_qs(urlsplit(page.url).query)
    assert query["period"] == ["7d"]
    assert query["endpoint"] == [LOAN_ROUTE]
    assert query["job"] == ["default:app.jobs.events.dispatch_event"]
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "performance.png"), full_page=True)

    page.reload()  # the address alone gives the same, filtered page
    expect(page.locator("#perf-api_latency-count")).to_contain_text("120")
    expect(page.locator("#perf-period")).to_have_value("7d")
