"""The email providers' published samples (tests/data/notify, copied from
../shared/reference/notify/samples; sources in notify.md §12), grouped so that a new sample
cannot go untested, and small helpers the email tests share."""

import json
from pathlib import Path

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "notify"
EMAIL_PREFIXES = ("sendgrid_", "mailgun_", "ses_", "sns_")


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sample(name: str):
    return json.loads(sample_bytes(name))


def email_sample_names() -> list[str]:
    names = sorted(p.name for p in SAMPLES.iterdir() if p.name.startswith(EMAIL_PREFIXES))
    assert names, f"no email samples in {SAMPLES}"
    return names


def form_of(received) -> dict[str, list[str]]:
    """A recorded multipart or urlencoded request body parsed the way Flask parses it."""
    environ = EnvironBuilder(
        method="POST", data=received.body, content_type=received.headers["Content-Type"]
    ).get_environ()
    return Request(environ).form.to_dict(flat=False)


# Every email sample belongs to exactly one group (test_email_samples.py checks it).
SENDGRID_EVENTS = [
    "sendgrid_event_bounce.json",
    "sendgrid_event_deferred.json",
    "sendgrid_event_dropped.json",
    "sendgrid_event_webhook.json",
    "sendgrid_event_webhook_signed.json",
]
SENDGRID_VECTOR = ["sendgrid_signed_webhook_test_vector.json"]
MAILGUN_EVENTS = [
    "mailgun_event_delivered_doc.json",
    "mailgun_event_failed_permanent_doc.json",
    "mailgun_event_failed_temporary_doc.json",
    "mailgun_webhook_delivered.json",
    "mailgun_webhook_failed.json",
    "mailgun_webhook_failed_temporary.json",
]
MAILGUN_ANSWERS = ["mailgun_send_response.json"]
SES_NOTIFICATIONS = [
    "ses_notification_bounce_awsdoc.json",
    "ses_notification_delivery_awsdoc.json",
    "ses_sns_bounce.json",
    "ses_sns_complaint.json",
    "ses_sns_delivery.json",
]
SNS_MESSAGES = ["sns_notification.json", "sns_subscription_confirmation.json"]
GROUPS = [
    SENDGRID_EVENTS,
    SENDGRID_VECTOR,
    MAILGUN_EVENTS,
    MAILGUN_ANSWERS,
    SES_NOTIFICATIONS,
    SNS_MESSAGES,
]
