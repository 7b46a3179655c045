"""Integrations > Notifications overview: delivery statistics per provider and channel for 24
hours, 7 or 30 days (table and chart data), each provider's circuit state, and what is waiting;
full page and partial, every role, a bad period refused with a message."""

import json
import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Notification, Role
from app.models.base import utcnow
from app.services.notifications import circuit

URL = "/integrations/notifications/"
HX = {"HX-Request": "true"}


def is_page(response) -> bool:
    return "<html" in response.text


def add(channel, provider, status, ago=timedelta(minutes=5), count=1, **values):
    for _ in range(count):
        db.session.add(Notification(
            notification_type="general", channel=channel, provider=provider, status=status,
            message="Hello", recipient_contact="254712345678", created_at=utcnow() - ago, **values,
        ))  # fmt: skip
    db.session.commit()


def row_cells(text: str, row_id: str) -> list[str]:
    row = text.split(f'id="{row_id}"')[1].split("</tr>")[0]
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    ]


def chart(text: str, name: str) -> dict:
    return json.loads(text.split(f'id="notify-{name}-data">')[1].split("</script>")[0])


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_overview(login, role):
    page = login(role).get(URL)
    assert page.status_code == 200 and is_page(page)
    assert 'id="notify-overview"' in page.text and 'aria-label="Notification sections"' in page.text
    assert "Delivery over the last 7 days" in page.text
    assert "No notifications in the last 7 days." in page.text
    assert "HX-Request" in page.headers["Vary"]


def test_signed_out_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_figures_per_provider_and_channel(viewer_client):
    add("sms", "africastalking", "delivered", count=3)
    add("sms", "africastalking", "failed")
    add("sms", "africastalking", "sent")
    add("sms", None, "skipped", count=2)
    add("email", "sendgrid", "delivered")
    add("email", "sendgrid", "failed")
    add("sms", "twilio", "delivered", ago=timedelta(days=20))  # only in the 30 days

    page = viewer_client.get(URL)
    # Sent (no receipt yet), delivered, failed, skipped, waiting, total, delivery rate
    assert row_cells(page.text, "stats-sms-africastalking") == [
        "SMS", "Africa&#39;s Talking", "1", "3", "1", "0", "0", "5", "60.0%"]  # fmt: skip
    assert row_cells(page.text, "stats-sms-none")[2:] == ["0", "0", "0", "2", "0", "2", "—"]
    assert row_cells(page.text, "stats-email-sendgrid")[2:] == [
        "0",
        "1",
        "1",
        "0",
        "0",
        "2",
        "50.0%",
    ]
    assert row_cells(page.text, "stats-sms-all")[1:] == ["1", "3", "1", "2", "0", "7", "60.0%"]
    assert row_cells(page.text, "stats-all")[1:] == ["1", "4", "2", "2", "0", "9", "57.1%"]
    assert "stats-sms-twilio" not in page.text
    assert (
        'href="/integrations/notifications/log?channel=sms&amp;provider=africastalking"'
        in page.text
    )

    # The chart data app.js draws: delivered/failed per day, a stacked bar per provider.
    trend = chart(page.text, "trend")
    assert trend["type"] == "line" and len(trend["labels"]) == 7
    assert [d["label"] for d in trend["datasets"]] == ["Delivered", "Failed"]
    assert sum(trend["datasets"][0]["data"]) == 4 and sum(trend["datasets"][1]["data"]) == 2
    providers = chart(page.text, "providers")
    assert providers["stacked"] is True
    assert providers["labels"] == [
        "Africa's Talking (SMS)", "No provider (SMS)", "SendGrid (email)"]  # fmt: skip
    delivered = next(d for d in providers["datasets"] if d["label"] == "Delivered")
    assert delivered["data"] == [3, 0, 1]
    assert 'data-usage-chart="notify-trend-data"' in page.text
    assert "vendor/chart-4.6.1.umd.min.js" in page.text

    month = viewer_client.get(URL, query_string={"period": "30d"}, headers=HX)
    assert month.status_code == 200 and not is_page(month)
    assert month.text.lstrip().startswith('<section id="notify-overview"')
    assert "Delivery over the last 30 days" in month.text
    assert row_cells(month.text, "stats-sms-twilio")[2:] == ["0", "1", "0", "0", "0", "1", "100.0%"]
    assert len(chart(month.text, "trend")["labels"]) == 30


def test_twenty_four_hours_by_hour(viewer_client):
    add("sms", "twilio", "delivered", ago=timedelta(hours=30))
    add("sms", "twilio", "delivered")
    partial = viewer_client.get(URL, query_string={"period": "24h"}, headers=HX)
    assert partial.status_code == 200 and "Delivery over the last 24 hours" in partial.text
    assert row_cells(partial.text, "stats-sms-twilio")[3] == "1"
    trend = chart(partial.text, "trend")
    assert len(trend["labels"]) == 24 and re.fullmatch(r"\d\d:00", trend["labels"][-1])
    assert 'aria-current="true">24 hours' in partial.text


@pytest.mark.parametrize("headers", [{}, HX])
@pytest.mark.parametrize("period", ["1y", "<script>", "7"])
def test_a_bad_period_is_400_with_a_message(viewer_client, headers, period):
    response = viewer_client.get(URL, query_string={"period": period}, headers=headers)
    assert response.status_code == 400
    assert "Choose 24 hours, 7 days or 30 days." in response.text
    assert "<script>" not in response.text.split("<body")[-1].replace("<script src", "")


def test_circuit_states_and_what_is_waiting(app, viewer_client):
    circuit.record_failure("twilio", threshold=1, window=60, cooling_off=60)
    add("sms", None, "pending", count=2)
    add("sms", None, "pending", scheduled_for=utcnow() + timedelta(hours=8),
        skip_reason="Quiet hours: held until the morning.")  # fmt: skip
    add("email", None, "pending", retry_count=1, scheduled_for=utcnow() + timedelta(minutes=5))
    page = viewer_client.get(URL)
    assert row_cells(page.text, "provider-twilio") == [
        "Twilio", "SMS", "2", "not configured",
        "open skipped while cooling off after repeated failures"]  # fmt: skip
    assert row_cells(page.text, "provider-africastalking")[2:] == ["1", "not configured", "closed"]
    assert row_cells(page.text, "waiting-queued") == ["Queued (due now)", "2", "0"]
    assert row_cells(page.text, "waiting-quiet_hours") == ["Held by quiet hours", "1", "0"]
    assert row_cells(page.text, "waiting-retrying") == ["Waiting to retry", "0", "1"]
    assert 'href="/integrations/notifications/log?status=pending"' in page.text
    # The waiting ones are in the period's figures too.
    assert row_cells(page.text, "stats-all")[5] == "4"
