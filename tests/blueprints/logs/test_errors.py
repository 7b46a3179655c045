"""Error tracking: the period's errors grouped by integration and kind, with counts, first and
last seen, the latest message and a link to the entries; warnings only when asked."""

import re
from datetime import timedelta

import pytest

from app.models.base import utcnow
from app.services import error_tracking
from tests.blueprints.logs.conftest import HX, add_entry

URL = "/integrations/logs/errors"


@pytest.fixture
def errors_seen():
    """Errors and warnings at known ages: minutes ago, days ago, weeks ago."""
    now = utcnow()

    def at(**ago):
        return now - timedelta(**ago)

    add_entry(level="error", error_kind="ProviderFault", integration="notifications",
              message="Twilio 500.", created_at=at(hours=5))  # fmt: skip
    add_entry(level="error", error_kind="ProviderFault", integration="notifications",
              message="Twilio 503 <again>.", created_at=at(minutes=10))  # fmt: skip
    add_entry(level="error", error_kind="ProviderFault", integration="notifications",
              message="Two days old.", created_at=at(days=2))  # fmt: skip
    add_entry(level="error", error_kind="ProviderFault", integration="webhooks",
              message="Other integration, same kind.", created_at=at(hours=1))  # fmt: skip
    add_entry(level="error", error_kind=None, integration="mpesa", message="No kind.",
              created_at=at(hours=2))  # fmt: skip
    add_entry(level="warning", error_kind="mpesa.callback_held", integration="mpesa",
              message="Held.", created_at=at(hours=3))  # fmt: skip
    add_entry(level="info", integration="mpesa", message="Fine.", created_at=at(minutes=1))
    add_entry(level="error", error_kind="Timeout", integration="jobs", message="20 days old.",
              created_at=at(days=20))  # fmt: skip
    return now


def test_groups_count_and_date_each_kind(errors_seen):
    groups = error_tracking.groups("24h", now=errors_seen)
    summary = [(g.integration, g.error_kind, g.level, g.count, g.last_message) for g in groups]
    assert summary == [
        ("notifications", "ProviderFault", "error", 2, "Twilio 503 <again>."),  # last seen first
        ("webhooks", "ProviderFault", "error", 1, "Other integration, same kind."),
        ("mpesa", None, "error", 1, "No kind."),
    ]
    twilio = groups[0]
    assert twilio.first_seen == errors_seen - timedelta(hours=5)
    assert twilio.last_seen == errors_seen - timedelta(minutes=10)
    assert twilio.first_seen.tzinfo is not None


def test_longer_periods_and_warnings(errors_seen):
    week = error_tracking.groups("7d", now=errors_seen)
    assert sum(g.count for g in week) == 5
    assert next(g for g in week if g.integration == "notifications").count == 3
    month = error_tracking.groups("30d", now=errors_seen)
    assert sum(g.count for g in month) == 6
    with_warnings = error_tracking.groups("24h", include_warnings=True, now=errors_seen)
    assert ("mpesa", "mpesa.callback_held", "warning", 1) in [
        (g.integration, g.error_kind, g.level, g.count) for g in with_warnings
    ]


def test_page_and_partial(viewer_client, errors_seen):
    page = viewer_client.get(URL)
    assert page.status_code == 200 and "<html" in page.text
    assert "4 errors in the last 24 hours" in page.text
    assert "Twilio 503 &lt;again&gt;." in page.text  # escaped
    assert "HX-Request" in page.headers["Vary"]
    partial = viewer_client.get(URL, query_string={"period": "7d", "warnings": "y"}, headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert partial.text.lstrip().startswith('<div id="log-errors"')
    assert "6 errors or warnings in the last 7 days" in partial.text


def test_each_group_links_to_its_entries(viewer_client, errors_seen):
    html = viewer_client.get(URL).text
    links = re.findall(r'<a href="(/integrations/logs/\?[^"]+)">([^<]+)</a>', html)
    target = next(href for href, text in links if "notifications" in href)
    target = target.replace("&amp;", "&")
    assert "error_kind=ProviderFault" in target and "level=error" in target
    listed = viewer_client.get(target, headers=HX)
    assert listed.status_code == 200
    assert len(re.findall(r'id="log-entry-\d+"', listed.text)) == 2  # today's two (a 24 h day)
    no_kind = next(href for href, text in links if text == "(no kind)").replace("&amp;", "&")
    assert "error_kind" not in no_kind and "integration=mpesa" in no_kind


def test_nothing_to_report(viewer_client):
    add_entry(level="info")
    assert "No errors in the last 24 hours." in viewer_client.get(URL).text


@pytest.mark.parametrize("query", [{"period": "1y"}, {"period": ""}, {"period": "24h\x00"}])
def test_a_bad_period_is_422(viewer_client, query):
    for headers in ({}, HX):
        response = viewer_client.get(URL, query_string=query, headers=headers)
        assert response.status_code == 422
        assert "Choose 24 hours, 7 days or 30 days." in response.text
