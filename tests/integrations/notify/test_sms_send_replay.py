"""The three SMS clients' send() against a replaying loopback server (real HTTP, scripted answers):
the requests they build (notify.md §2.1, §3.1, §4.2), every published answer, and each error
class of the reference's tables mapped to the outcome that decides failover (§2.2, §3.2, §4.4,
§4.5, §8.4). Network failures are real too: a refused connection, a server that reads the
request and never answers, one that drops the connection.

The sandbox app will cover the normal flows once it plays these providers; these tests need
the providers' exact published bodies and failures it cannot give on purpose.
"""

import base64
import logging
import socket
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from app.integrations.notify.africastalking import AfricasTalkingConfig, AfricasTalkingSms
from app.integrations.notify.base import Outcome, SmsMessage
from app.integrations.notify.infobip import InfobipConfig, InfobipSms
from app.integrations.notify.twilio import TwilioConfig, TwilioSms
from tests.integrations.notify.sms_samples import sample_json, sample_text

SID = "AC" + "a" * 32
TWILIO_TOKEN = "twilio-auth-token-Zq81"
AT_KEY = "at-api-key-Kx93"
INFOBIP_KEY = "infobip-api-key-Lm27"
SECRETS = (TWILIO_TOKEN, AT_KEY, INFOBIP_KEY)
TWILIO_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
AT_PATH = "/version1/messaging"
INFOBIP_PATH = "/sms/3/messages"
CALLBACK = "https://sacco.example/callbacks/notify/PROVIDER/status"
MESSAGE = SmsMessage(
    to="254718769882",
    body="Your repayment of KES 1,000 was received.",
    reference="42",
    status_callback_url=CALLBACK,
)


def twilio_client(url: str, **changes) -> TwilioSms:
    settings = {
        "account_sid": SID,
        "auth_token": TWILIO_TOKEN,
        "from_number": "+15005550006",
        "base_url": url,
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        **changes,
    }
    return TwilioSms(TwilioConfig(**settings))


def at_client(url: str, **changes) -> AfricasTalkingSms:
    settings = {
        "username": "daystar",
        "api_key": AT_KEY,
        "sender_id": "DAYSTAR",
        "base_url": url,
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        **changes,
    }
    return AfricasTalkingSms(AfricasTalkingConfig(**settings))


def infobip_client(url: str, **changes) -> InfobipSms:
    settings = {
        "base_url": url,
        "api_key": INFOBIP_KEY,
        "sender": "DAYSTAR",
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        **changes,
    }
    return InfobipSms(InfobipConfig(**settings))


CLIENTS = {
    "twilio": (twilio_client, TWILIO_PATH),
    "africastalking": (at_client, AT_PATH),
    "infobip": (infobip_client, INFOBIP_PATH),
}


def assert_no_secret(result, caplog=None):
    text = repr(result) + (caplog.text if caplog else "")
    for secret in SECRETS:
        assert secret not in text


# --- Twilio ------------------------------------------------------------------------------------


def test_twilio_request_is_the_documented_form_post(replay):
    replay.reply_raw(TWILIO_PATH, sample_text("twilio_send_response.json"), status=201)
    twilio_client(replay.url).send(MESSAGE)
    [request] = replay.requests_to(TWILIO_PATH)
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    expected_auth = base64.b64encode(f"{SID}:{TWILIO_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    form = parse_qs(request.body.decode())
    assert form == {
        "To": ["+254718769882"],
        "From": ["+15005550006"],
        "Body": [MESSAGE.body],
        "StatusCallback": [CALLBACK + "?ref=42"],
    }


def test_twilio_published_success_is_accepted_with_its_sid(replay, caplog):
    caplog.set_level(logging.DEBUG)
    replay.reply_raw(TWILIO_PATH, sample_text("twilio_send_response.json"), status=201)
    result = twilio_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.ACCEPTED and result.accepted
    assert result.provider == "twilio"
    assert result.provider_message_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert result.http_status == 201
    assert result.segments == 1
    assert result.cost is None  # "price": null until the message is sent
    assert result.response.startswith("{")
    assert_no_secret(result, caplog)
    assert "254718769882" not in caplog.text  # no phone number in the logs


def test_an_accepted_answer_is_logged_at_debug_and_a_refusal_at_info(replay, caplog):
    caplog.set_level(logging.DEBUG, logger="app.integrations.notify")
    replay.reply_raw(TWILIO_PATH, sample_text("twilio_send_response.json"), status=201)
    replay.reply(TWILIO_PATH, 400, _twilio_error(21211, 400))
    for _ in range(2):
        twilio_client(replay.url).send(MESSAGE)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "HTTP" in r.getMessage()]
    assert lines == [
        (logging.DEBUG, "twilio: HTTP 201 -> accepted SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        (logging.INFO, "twilio: HTTP 400 -> permanent "),
    ]


def test_twilio_reports_price_and_segments_when_it_has_them(replay):
    body = {**sample_json("twilio_send_response.json"), "price": "-0.01500", "price_unit": "USD"}
    body["num_segments"] = "2"
    replay.reply(TWILIO_PATH, 201, {k: str(v) if v is not None else v for k, v in body.items()})
    result = twilio_client(replay.url).send(MESSAGE)
    assert (result.cost, result.currency, result.segments) == (Decimal("0.01500"), "USD", 2)


def test_twilio_published_error_is_our_request_to_fix(replay):
    replay.reply_raw(TWILIO_PATH, sample_text("twilio_error_response.json"), status=400)
    result = twilio_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert result.http_status == 400
    assert "20001" in result.detail and "Bad request" in result.detail


def _twilio_error(code: int, status: int) -> dict:
    return {
        "code": code,
        "message": f"error {code}",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.mark.parametrize(
    ("http_status", "code", "outcome"),
    [
        (400, 21211, Outcome.PERMANENT),  # invalid To
        (400, 21610, Outcome.PERMANENT),  # unsubscribed (STOP)
        (400, 21614, Outcome.PERMANENT),  # not a mobile number
        (400, 21635, Outcome.PERMANENT),  # landline
        (401, 20003, Outcome.PROVIDER_FAULT),  # bad credentials
        (400, 21606, Outcome.PROVIDER_FAULT),  # From cannot send SMS
        (400, 21608, Outcome.PROVIDER_FAULT),  # trial account, unverified To
        (400, 21612, Outcome.PROVIDER_FAULT),  # unroutable from this sender
        (404, 20404, Outcome.PROVIDER_FAULT),  # wrong account SID
        (429, 20429, Outcome.TRANSIENT),
        (400, 63018, Outcome.TRANSIENT),  # channel rate limit
        (500, 20500, Outcome.TRANSIENT),
        (503, 20503, Outcome.TRANSIENT),
    ],
)
def test_twilio_error_codes_decide_the_outcome(replay, http_status, code, outcome):
    replay.reply(TWILIO_PATH, http_status, _twilio_error(code, http_status))
    result = twilio_client(replay.url).send(MESSAGE)
    assert result.outcome == outcome
    assert str(code) in result.detail
    assert result.maybe_sent is False


def test_twilio_rfc9457_error_is_read_too(replay):
    body = {
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid 'To' Phone Number",
        "status": 400,
        "code": 21211,
        "detail": "The 'To' number +254718769882 is not a valid phone number.",
    }
    replay.reply(TWILIO_PATH, 400, body, content_type="application/problem+json")
    result = twilio_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.PERMANENT
    assert "21211" in result.detail


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_twilio_overload_without_a_body_is_transient(replay, status):
    replay.reply(TWILIO_PATH, status, b"<html>busy</html>", content_type="text/html")
    assert twilio_client(replay.url).send(MESSAGE).outcome == Outcome.TRANSIENT


def test_twilio_2xx_without_a_sid_may_have_been_sent(replay):
    replay.reply(TWILIO_PATH, 201, b"<html>ok</html>", content_type="text/html")
    result = twilio_client(replay.url).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)


def test_twilio_without_a_callback_url_sends_none(replay):
    replay.reply_raw(TWILIO_PATH, sample_text("twilio_send_response.json"), status=201)
    message = SmsMessage(to="254718769882", body="Hi", reference="7")
    twilio_client(replay.url).send(message)
    assert "StatusCallback" not in parse_qs(replay.requests_to(TWILIO_PATH)[0].body.decode())


# --- Africa's Talking --------------------------------------------------------------------------


def test_at_request_is_the_documented_form_post(replay):
    replay.reply_raw(AT_PATH, sample_text("at_send_response.json"), status=201)
    at_client(replay.url).send(MESSAGE)
    [request] = replay.requests_to(AT_PATH)
    assert request.headers["apiKey"] == AT_KEY
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request.headers
    assert parse_qs(request.body.decode()) == {
        "username": ["daystar"],
        "to": ["+254718769882"],
        "message": [MESSAGE.body],
        "from": ["DAYSTAR"],
        "bulkSMSMode": ["1"],
    }


def test_at_published_success_reads_our_recipient_among_several(replay):
    replay.reply_raw(AT_PATH, sample_text("at_send_response.json"), status=201)
    result = at_client(replay.url).send(SmsMessage(to="254718769881", body="Hi", reference="7"))
    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_id == "ATPid_SampleTxnId1234"
    assert (result.cost, result.currency) == (Decimal("0.8000"), "KES")
    assert result.http_status == 201


def test_at_recorded_live_answer_is_accepted_with_its_parts(replay, caplog):
    caplog.set_level(logging.DEBUG)
    replay.reply_raw(AT_PATH, sample_text("at_send_response_recorded_201.json"), status=201)
    result = at_client(replay.url).send(SmsMessage(to="254700072929", body="Hi", reference="7"))
    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_id == "ATXid_a9aece16db3a68dfbd50003ae524d4fa"
    assert result.segments == 1
    assert (result.cost, result.currency) == (Decimal("0.8000"), "KES")
    assert_no_secret(result, caplog)


def test_at_invalid_sender_inside_a_201_is_our_fault(replay):
    replay.reply_raw(AT_PATH, sample_text("at_send_response_invalid_sender.json"), status=201)
    result = at_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert "InvalidSenderId" in result.detail


def test_at_published_401_is_our_fault(replay):
    replay.reply(
        AT_PATH, 401, sample_text("at_send_error_401.txt").encode(), content_type="text/plain"
    )
    result = at_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert "The supplied authentication is invalid" in result.detail


def _at_answer(code: int, status: str) -> dict:
    recipient = {
        "statusCode": code,
        "number": "+254718769882",
        "status": status,
        "cost": "0",
        "messageId": "None",
    }
    return {"SMSMessageData": {"Message": "Sent to 0/1 Total Cost: 0", "Recipients": [recipient]}}


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [
        (100, "Processed", Outcome.ACCEPTED),
        (101, "Success", Outcome.ACCEPTED),
        (102, "Success", Outcome.ACCEPTED),
        (401, "RiskHold", Outcome.PROVIDER_FAULT),
        (402, "InvalidSenderId", Outcome.PROVIDER_FAULT),
        (403, "InvalidPhoneNumber", Outcome.PERMANENT),
        (404, "UnsupportedNumberType", Outcome.PERMANENT),
        (405, "InsufficientBalance", Outcome.PROVIDER_FAULT),
        (406, "UserInBlacklist", Outcome.PERMANENT),
        (407, "CouldNotRoute", Outcome.PROVIDER_FAULT),
        (409, "DoNotDisturbRejection", Outcome.PROVIDER_FAULT),  # disputed code: default
        (500, "InternalServerError", Outcome.TRANSIENT),
        (501, "GatewayError", Outcome.TRANSIENT),
        (502, "RejectedByGateway", Outcome.PROVIDER_FAULT),
    ],
)
def test_at_recipient_status_code_inside_a_201_decides(replay, code, status, outcome):
    replay.reply(AT_PATH, 201, _at_answer(code, status))
    result = at_client(replay.url).send(MESSAGE)
    assert result.outcome == outcome
    assert result.http_status == 201
    assert status in result.detail


def test_at_recipient_without_a_status_code_is_read_by_its_status(replay):
    recipient = {"number": "+254718769882", "status": "Success", "messageId": "ATXid_1"}
    replay.reply(AT_PATH, 201, {"SMSMessageData": {"Message": "Sent", "Recipients": [recipient]}})
    result = at_client(replay.url).send(MESSAGE)
    assert (result.outcome, result.provider_message_id) == (Outcome.ACCEPTED, "ATXid_1")


def test_at_could_not_send_without_a_code_is_not_accepted(replay):
    recipient = {"number": "+254718769882", "status": "Could Not Send", "messageId": "None"}
    replay.reply(AT_PATH, 201, {"SMSMessageData": {"Message": "", "Recipients": [recipient]}})
    result = at_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert result.provider_message_id is None


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_at_overload_is_transient(replay, status):
    replay.reply(AT_PATH, status, b"Service Unavailable", content_type="text/plain")
    assert at_client(replay.url).send(MESSAGE).outcome == Outcome.TRANSIENT


def test_at_2xx_that_is_not_its_json_may_have_been_sent(replay):
    replay.reply(AT_PATH, 201, b"<html>ok</html>", content_type="text/html")
    result = at_client(replay.url).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)


def test_at_sandbox_username_defaults_to_the_sandbox_host():
    assert AfricasTalkingConfig(username="sandbox").send_url == (
        "https://api.sandbox.africastalking.com/version1/messaging"
    )
    assert AfricasTalkingConfig(username="daystar").send_url == (
        "https://api.africastalking.com/version1/messaging"
    )


# --- Infobip -----------------------------------------------------------------------------------


def test_infobip_request_is_the_documented_v3_json(replay):
    replay.reply_raw(INFOBIP_PATH, sample_text("infobip_send_response_v3.json"))
    infobip_client(replay.url).send(MESSAGE)
    [request] = replay.requests_to(INFOBIP_PATH)
    assert request.headers["Authorization"] == f"App {INFOBIP_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "messages": [
            {
                "sender": "DAYSTAR",
                "destinations": [{"to": "254718769882", "messageId": "42"}],
                "content": {"text": MESSAGE.body},
                "webhooks": {
                    "delivery": {"url": CALLBACK},
                    "contentType": "application/json",
                    "callbackData": "42",
                },
            }
        ]
    }
    # Same shape as Infobip's own example request (which adds platform options we do not use).
    official = sample_json("infobip_send_request_v3.json")["messages"][0]
    ours = request.json["messages"][0]
    assert set(official) - {"options"} <= set(ours)
    assert set(official["destinations"][0]) <= set(ours["destinations"][0])
    assert set(official["content"]) == set(ours["content"])


@pytest.mark.parametrize("name", ["infobip_send_response_v3.json", "infobip_send_response_v2.json"])
def test_infobip_published_success_is_accepted(replay, name, caplog):
    caplog.set_level(logging.DEBUG)
    replay.reply_raw(INFOBIP_PATH, sample_text(name))
    result = infobip_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_id == "2250be2d4219-3af1-78856-aabe-1362af1edfd2"
    assert result.http_status == 200
    assert_no_secret(result, caplog)


def test_infobip_v3_success_reports_its_segments(replay):
    replay.reply_raw(INFOBIP_PATH, sample_text("infobip_send_response_v3.json"))
    assert infobip_client(replay.url).send(MESSAGE).segments == 1


def test_infobip_published_validation_error_is_our_request_to_fix(replay):
    replay.reply_raw(INFOBIP_PATH, sample_text("infobip_error_response.json"), status=400)
    result = infobip_client(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert "BAD_REQUEST" in result.detail and "must not be empty" in result.detail


def _legacy_error(message_id: str, text: str) -> dict:
    return {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (401, _legacy_error("UNAUTHORIZED", "Invalid login details"), Outcome.PROVIDER_FAULT),
        (403, {"errorCode": "E403", "description": "Forbidden"}, Outcome.PROVIDER_FAULT),
        (404, _legacy_error("NOT_FOUND", "Not found"), Outcome.PROVIDER_FAULT),
        (429, _legacy_error("TOO_MANY_REQUESTS", "Too many requests"), Outcome.TRANSIENT),
        (500, _legacy_error("GENERAL_ERROR", "Something went wrong"), Outcome.TRANSIENT),
        (503, b"", Outcome.TRANSIENT),
    ],
)
def test_infobip_http_errors_decide_the_outcome(replay, status, body, outcome):
    replay.reply(INFOBIP_PATH, status, body)
    result = infobip_client(replay.url).send(MESSAGE)
    assert result.outcome == outcome
    assert result.http_status == status


def _infobip_refusal(name: str, group: int = 5, group_name: str = "REJECTED") -> dict:
    status = {"groupId": group, "groupName": group_name, "id": 12, "name": name}
    return {"bulkId": "1", "messages": [{"messageId": "42", "status": status}]}


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("REJECTED_DESTINATION", Outcome.PERMANENT),
        ("REJECTED_PREFIX_MISSING", Outcome.PERMANENT),
        ("REJECTED_NOT_ENOUGH_CREDITS", Outcome.PROVIDER_FAULT),
        ("REJECTED_SENDER", Outcome.PROVIDER_FAULT),
        ("REJECTED_SOURCE", Outcome.PROVIDER_FAULT),
    ],
)
def test_infobip_refusal_inside_a_200_decides(replay, name, outcome):
    replay.reply(INFOBIP_PATH, 200, _infobip_refusal(name))
    result = infobip_client(replay.url).send(MESSAGE)
    assert result.outcome == outcome
    assert name in result.detail


def test_infobip_answer_without_a_message_id_keeps_ours(replay):
    status = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}
    replay.reply(INFOBIP_PATH, 200, {"bulkId": "1", "messages": [{"status": status}]})
    result = infobip_client(replay.url).send(MESSAGE)
    assert (result.outcome, result.provider_message_id) == (Outcome.ACCEPTED, "42")


def test_infobip_base_url_as_the_portal_shows_it_gets_https():
    config = InfobipConfig(base_url="xyz123.api.infobip.com/", api_key="k")
    assert config.send_url == "https://xyz123.api.infobip.com/sms/3/messages"


# --- what every client shares ------------------------------------------------------------------


@pytest.fixture(params=sorted(CLIENTS))
def provider(request):
    return request.param


def _refused_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_refused_connection_is_transient_and_not_sent(provider):
    make, _ = CLIENTS[provider]
    result = make(_refused_url()).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, False)
    assert result.provider == provider
    assert result.http_status is None


def test_no_answer_within_the_read_timeout_may_have_been_sent(replay, provider):
    make, path = CLIENTS[provider]
    replay.reply(path, hang=True)
    result = make(replay.url, read_timeout=0.3).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)
    assert "0.3 s" in result.detail
    assert len(replay.requests_to(path)) == 1  # never repeated by the client


def test_a_connection_dropped_after_sending_may_have_been_sent(replay, provider):
    make, path = CLIENTS[provider]
    replay.reply(path, drop=True)
    result = make(replay.url).send(MESSAGE)
    assert (result.outcome, result.maybe_sent) == (Outcome.TRANSIENT, True)


def test_a_base_url_without_a_scheme_is_our_fault_not_a_network_failure(provider):
    make, _ = CLIENTS[provider]
    url = "127.0.0.1:1" if provider != "infobip" else "ftp://127.0.0.1:1"  # Infobip adds https
    result = make(url).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert "Could not build the request" in result.detail


def test_a_redirect_is_not_followed(replay, provider):
    make, path = CLIENTS[provider]
    replay.reply(path, 302, b"")
    result = make(replay.url).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert len(replay.received) == 1


@pytest.mark.parametrize(
    ("make", "missing"),
    [
        (twilio_client, {"auth_token": ""}),
        (twilio_client, {"from_number": ""}),
        (at_client, {"api_key": ""}),
        (at_client, {"username": ""}),
        (infobip_client, {"api_key": ""}),
        (infobip_client, {"base_url": ""}),
    ],
)
def test_an_unconfigured_client_sends_nothing(replay, make, missing):
    result = make(replay.url, **missing).send(MESSAGE)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert "not configured" in result.detail
    assert replay.received == []


@pytest.mark.parametrize("make", [twilio_client, at_client, infobip_client])
def test_reprs_mask_the_secret(make):
    client = make("http://127.0.0.1:1")
    for text in (repr(client), repr(client.config)):
        assert "***" in text
        for secret in SECRETS:
            assert secret not in text


def test_timeouts_must_be_positive():
    for config in (TwilioConfig, AfricasTalkingConfig, InfobipConfig):
        with pytest.raises(ValueError):
            config(read_timeout=0)


def test_production_hosts_are_the_defaults():
    assert TwilioConfig(account_sid=SID).messages_url == (
        f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    )
