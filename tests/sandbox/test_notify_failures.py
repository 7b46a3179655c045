"""Failure modes, switched per provider on the control API and the providers page: down, 500,
slow, rate_limited, invalid_number and bounce, each answered in the provider's own format."""

import json
import time
from urllib.parse import parse_qs

import pytest
import requests

from tests.sandbox.notify_support import (
    Providers,
    infobip_v2_body,
    infobip_v3_body,
    sendgrid_body,
    ses_body,
)

SENDS = {
    "twilio": lambda api, **kw: api.twilio(**kw),
    "africastalking": lambda api, **kw: api.africastalking(**kw),
    "infobip": lambda api, **kw: api.infobip(infobip_v3_body(), **kw),
    "sendgrid": lambda api, **kw: api.sendgrid(sendgrid_body(), **kw),
    "mailgun": lambda api, **kw: api.mailgun(**kw),
    "ses": lambda api, **kw: api.ses(ses_body(), **kw),
}


@pytest.fixture
def api(notify_sandbox):
    return Providers(notify_sandbox)


@pytest.mark.parametrize("provider", list(SENDS))
def test_down_closes_the_connection_without_an_answer(api, notify_sandbox, provider):
    notify_sandbox.set_failure(provider, "down")

    with pytest.raises(requests.ConnectionError):
        SENDS[provider](api)

    assert notify_sandbox.messages(provider) == []


SERVER_ERRORS = {
    "twilio": (
        "application/json",
        {
            "code": 20500,
            "message": "Internal Server Error",
            "more_info": "https://www.twilio.com/docs/errors/20500",
            "status": 500,
        },
    ),
    "africastalking": ("text/plain", "Internal Server Error"),
    "infobip": (
        "application/json",
        {
            "errorCode": "E500",
            "description": "Something went wrong. Please contact support.",
            "action": "Try again later; contact support if it persists.",
            "violations": [],
            "resources": [{"name": "API documentation", "url": "https://www.infobip.com/docs/api"}],
        },
    ),
    "sendgrid": (
        "application/json",
        {
            "errors": [
                {"message": "An internal server error occurred.", "field": None, "help": None}
            ]
        },
    ),
    "mailgun": ("application/json", {"message": "Internal Server Error"}),
    "ses": (
        "application/json",
        {
            "message": "The request processing has failed because of an unknown error, exception or failure."
        },
    ),
}


@pytest.mark.parametrize("provider", list(SENDS))
def test_500_answers_in_the_providers_format(api, notify_sandbox, provider):
    notify_sandbox.set_failure(provider, "500")

    response = SENDS[provider](api)

    mimetype, body = SERVER_ERRORS[provider]
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith(mimetype)
    assert (response.json() if mimetype == "application/json" else response.text) == body
    if provider == "ses":
        assert response.headers["x-amzn-ErrorType"] == "InternalFailure"
    assert notify_sandbox.messages(provider) == []


def test_infobip_v2_errors_keep_the_legacy_body(api, notify_sandbox):
    notify_sandbox.set_failure("infobip", "500")

    response = api.infobip(infobip_v2_body(), version=2)

    assert response.json() == {
        "requestError": {
            "serviceException": {
                "messageId": "GENERAL_ERROR",
                "text": "Something went wrong. Please contact support.",
            }
        }
    }


RATE_LIMITS = {
    "twilio": lambda r: r.json()["code"] == 20429,
    "africastalking": lambda r: r.text == "Too Many Requests",
    "infobip": lambda r: r.json()["errorCode"] == "E429",
    "sendgrid": lambda r: (
        r.json()["errors"][0]["message"] == "too many requests"
        and r.headers["X-RateLimit-Remaining"] == "0"
    ),
    "mailgun": lambda r: "request limit exceeded" in r.json()["message"],
    "ses": lambda r: r.headers["x-amzn-ErrorType"] == "TooManyRequestsException",
}


@pytest.mark.parametrize("provider", list(SENDS))
def test_rate_limited_answers_429(api, notify_sandbox, provider):
    notify_sandbox.set_failure(provider, "rate_limited")

    response = SENDS[provider](api)

    assert response.status_code == 429
    assert RATE_LIMITS[provider](response)


def test_times_limits_a_failure_to_the_next_requests(api, notify_sandbox):
    notify_sandbox.set_failure("twilio", "500", times=2)

    statuses = [api.twilio().status_code for _ in range(3)]

    assert statuses == [500, 500, 201]
    assert requests.get(
        f"{notify_sandbox.base_url}/sandbox/api/notify/twilio/failure", timeout=10
    ).json() == {"mode": None}


def test_slow_holds_the_request_past_the_clients_timeout_then_sends(api, notify_sandbox):
    notify_sandbox.set_failure("mailgun", "slow", seconds=0.6)
    started = time.monotonic()

    with pytest.raises(requests.ReadTimeout):
        api.http.post(
            f"{notify_sandbox.base_url}/v3/{api.creds['mailgun']['domain']}/messages",
            data={"from": "a@mg.example.com", "to": "m@example.com", "text": "hi"},
            auth=("api", api.creds["mailgun"]["api_key"]),
            timeout=0.2,
        )

    # The provider got it although the client gave up: the message may still arrive.
    deadline = time.monotonic() + 5
    while not notify_sandbox.messages("mailgun") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(notify_sandbox.messages("mailgun")) == 1
    assert time.monotonic() - started >= 0.6


def test_a_reset_releases_held_requests_without_sending(api, notify_sandbox):
    notify_sandbox.set_failure("twilio", "slow", seconds=30)
    started = time.monotonic()

    with pytest.raises(requests.ReadTimeout):
        api.http.post(
            f"{notify_sandbox.base_url}/2010-04-01/Accounts/{api.creds['twilio']['account_sid']}/Messages.json",
            data={"To": "+254712345678", "From": "+15005550006", "Body": "hi"},
            auth=(api.creds["twilio"]["account_sid"], api.creds["twilio"]["auth_token"]),
            timeout=0.2,
        )
    notify_sandbox.reset()
    time.sleep(0.2)

    assert notify_sandbox.messages("twilio") == []
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("provider", "check"),
    [
        ("twilio", lambda r: r.status_code == 400 and r.json()["code"] == 21211),
        (
            "africastalking",
            lambda r: r.json()["SMSMessageData"]["Recipients"][0]["status"] == "InvalidPhoneNumber",
        ),
        ("infobip", lambda r: r.json()["messages"][0]["status"]["name"] == "REJECTED_DESTINATION"),
        ("sendgrid", lambda r: r.status_code == 400 and "valid address" in r.text),
        ("mailgun", lambda r: r.status_code == 400 and "not a valid address" in r.text),
        ("ses", lambda r: r.status_code == 400 and r.json() == {"message": "Illegal address"}),
    ],
)
def test_invalid_number_refuses_every_recipient(api, notify_sandbox, provider, check):
    notify_sandbox.set_failure(provider, "invalid_number")

    response = SENDS[provider](api)

    assert check(response)
    assert notify_sandbox.messages(provider) == []


def final_status(provider: str, post) -> str:
    if provider in ("twilio", "africastalking"):
        fields = parse_qs(post.raw.decode())
        return (fields.get("MessageStatus") or fields["status"])[0]
    body = json.loads(post.raw)
    if provider == "infobip":
        return body["results"][0]["status"]["name"]
    if provider == "sendgrid":
        return body[0]["event"]
    if provider == "mailgun":
        return f"{body['event-data']['event']}/{body['event-data']['severity']}"
    return json.loads(body["Message"])["bounce"]["bounceType"]


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("twilio", "undelivered"),
        ("africastalking", "Failed"),
        ("infobip", "UNDELIVERABLE_NOT_DELIVERED"),
        ("sendgrid", "bounce"),
        ("mailgun", "failed/permanent"),
        ("ses", "Permanent"),
    ],
)
def test_bounce_accepts_then_reports_a_permanent_failure(
    api, notify_sandbox, receiver, provider, expected
):
    notify_sandbox.set_failure(provider, "bounce")
    url = receiver.url("hook")
    if provider == "twilio":
        response = api.twilio(StatusCallback=url)
    else:
        notify_sandbox.set_webhook(provider, url)
        response = SENDS[provider](api)

    notify_sandbox.flush()

    assert response.status_code in (200, 201, 202)
    assert final_status(provider, receiver.on("hook")[-1]) == expected


def test_the_providers_page_switches_failure_modes(api, notify_sandbox):
    base = notify_sandbox.base_url

    saved = requests.post(
        f"{base}/sandbox/notify/sendgrid/failure", data={"mode": "500", "times": "1"}, timeout=10
    )
    page = requests.get(f"{base}/sandbox/notify", timeout=10)

    assert saved.status_code == 200 and "SendGrid: failure mode 500" in saved.text
    assert "<option selected>500</option>" in page.text
    assert api.sendgrid(sendgrid_body()).status_code == 500
    assert api.sendgrid(sendgrid_body()).status_code == 202
    cleared = requests.post(
        f"{base}/sandbox/notify/sendgrid/failure", data={"mode": ""}, timeout=10
    )
    assert cleared.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/sandbox/api/notify/twilio/failure", {"mode": "explode"}, 400),
        ("/sandbox/api/notify/twilio/failure", {"mode": "500", "times": 0}, 400),
        ("/sandbox/api/notify/twilio/failure", {"mode": "slow", "seconds": -1}, 400),
        ("/sandbox/api/notify/twilio/failure", {"mode": "500", "colour": "red"}, 400),
        ("/sandbox/api/notify/pigeon/failure", {"mode": "500"}, 404),
    ],
)
def test_failure_changes_are_validated(notify_sandbox, path, body, status):
    response = requests.post(notify_sandbox.base_url + path, json=body, timeout=10)

    assert response.status_code == status
    assert "error" in response.json()
    assert requests.get(
        f"{notify_sandbox.base_url}/sandbox/api/notify/twilio/failure", timeout=10
    ).json() == {"mode": None}
