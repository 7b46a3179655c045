"""The SMS providers' published samples (tests/data/notify, copied unchanged from
../shared/reference/notify/samples and indexed with their sources in notify.md §12)."""

import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "notify"
PREFIXES = ("twilio_", "at_", "infobip_")


def sms_sample_names() -> list[str]:
    names = sorted(p.name for p in SAMPLES.iterdir() if p.name.startswith(PREFIXES))
    assert names, f"no SMS samples in {SAMPLES}"
    return names


def sample_text(name: str) -> str:
    return (SAMPLES / name).read_text()


def sample_json(name: str):
    return json.loads(sample_text(name), parse_float=Decimal)


def sample_form(name: str) -> MultiDict:
    """A form-encoded sample parsed as Flask parses `request.form`."""
    return MultiDict(parse_qsl(sample_text(name).strip(), keep_blank_values=True))


# Every SMS sample belongs to exactly one group, so that a new sample cannot go untested.
SEND_ANSWERS = [  # replayed over HTTP to send() (test_sms_send_replay.py)
    "at_send_error_401.txt",
    "at_send_response.json",
    "at_send_response_invalid_sender.json",
    "at_send_response_recorded_201.json",
    "infobip_error_response.json",
    "infobip_send_response_v2.json",
    "infobip_send_response_v3.json",
    "twilio_error_response.json",
    "twilio_send_response.json",
]
SEND_REQUESTS = ["infobip_send_request_v3.json"]  # our request must have its shape
RECEIPTS = [  # through parse_receipts (test_sms_receipts.py)
    "at_delivery_report.txt",
    "at_delivery_report_expired.txt",
    "infobip_delivery_report.json",
    "infobip_delivery_report_v3.json",
    "twilio_status_callback.txt",
    "twilio_status_callback_failed_21610.txt",
]
SIGNATURES = ["twilio_signature_test_vector.json"]  # test_sms_webhook_auth.py
# We send with Infobip's v3 API; the v2 request is kept for reference (its answer is still
# read: infobip_send_response_v2.json above).
NOT_SENT = ["infobip_send_request_v2.json"]
