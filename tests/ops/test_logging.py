"""Application logs: a request id per web request (echoed, and on every log line of the request),
the RQ job id in job logs, JSON or text lines, and no secret in any of them."""

import base64
import io
import json
import logging
import os
from urllib.parse import quote

import pytest
from flask import Flask

from app import logging_setup, redaction
from app.jobs import get_queue
from app.logging_setup import make_handler
from app.services.api_keys import generate_key
from app.services.crypto import decrypt, encrypt
from config import ConfigError, ProductionConfig

MARK = redaction.MARK


@pytest.fixture
def capture():
    """capture(format, logger=root) -> a StringIO receiving what that logger's records become
    through a handler made by make_handler (the filters and formatter the app installs)."""
    attached = []

    def _capture(log_format: str, logger: logging.Logger | None = None) -> io.StringIO:
        stream = io.StringIO()
        handler = make_handler(log_format, stream)
        logger = logger or logging.getLogger()
        logger.addHandler(handler)
        attached.append((logger, handler))
        return stream

    yield _capture
    for logger, handler in attached:
        logger.removeHandler(handler)


@pytest.fixture
def isolated_logger():
    """A logger whose records reach only the handlers a test attaches (not the app's own)."""
    logger = logging.getLogger("tests.ops.redaction")
    logger.propagate, logger.level = False, logging.DEBUG
    yield logger
    logger.handlers.clear()
    logger.propagate = True


@pytest.fixture(autouse=True)
def _forget_registered():
    yield
    redaction.forget_registered_secrets()


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --- request and job ids ------------------------------------------------------------------------


def test_a_sane_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:42.abc_DEF"})
    assert response.headers["X-Request-ID"] == "lb-7f3a:42.abc_DEF"


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "-starts-with-dash", "tab\there"])
def test_an_absent_or_odd_request_id_is_replaced_by_a_new_one(client, given):
    headers = {"X-Request-ID": given} if given else {}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert first != given and len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_every_log_line_of_a_request_carries_its_id(client, capture):
    stream = capture("json")
    response = client.get("/readyz", headers={"X-Request-ID": "req-123"})  # no worker: a warning
    assert response.status_code == 503 and response.headers["X-Request-ID"] == "req-123"
    logging.getLogger("app.test").warning("outside any request")
    lines = json_lines(stream)
    in_request = [line for line in lines if line["logger"] == "app.services.health"]
    assert in_request and all(line["request_id"] == "req-123" for line in in_request)
    assert in_request[0]["message"].startswith("not ready:")
    outside = [line for line in lines if line["message"] == "outside any request"]
    assert outside[0]["request_id"] is None


def test_the_api_answers_with_a_request_id_too(client):
    response = client.get("/api/accounting/v1/loans", headers={"X-Request-ID": "ledger-9"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "ledger-9"


def test_log_lines_written_by_a_job_carry_its_job_id(capture, run_jobs):
    stream = capture("json")
    job = get_queue("default").enqueue("logging.warning", "hello from a job")
    run_jobs()
    [line] = [line for line in json_lines(stream) if line["message"] == "hello from a job"]
    assert line["job_id"] == job.id
    assert line["request_id"] is None


def test_text_lines_show_the_job_or_request_id(capture, run_jobs):
    stream = capture("text")
    job = get_queue("default").enqueue("logging.warning", "text from a job")
    run_jobs()
    lines = stream.getvalue().splitlines()
    assert any(line.endswith(f"WARNING [{job.id}] root: text from a job") for line in lines)


# --- formats ------------------------------------------------------------------------------------


def test_json_lines_hold_the_standard_fields_and_the_extra_ones(capture, isolated_logger):
    stream = capture("json", isolated_logger)
    isolated_logger.info("loan %s disbursed", 42, extra={"loan_id": 42, "amount": "1500.00"})
    [line] = json_lines(stream)
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.ops.redaction"
    assert line["message"] == "loan 42 disbursed"
    assert line["request_id"] is None
    assert line["timestamp"].endswith("+00:00") and "T" in line["timestamp"]
    assert (line["loan_id"], line["amount"]) == (42, "1500.00")


def test_json_lines_hold_the_exception(capture, isolated_logger):
    stream = capture("json", isolated_logger)
    try:
        raise RuntimeError("Daraja answered 500")
    except RuntimeError:
        isolated_logger.exception("disbursement failed")
    [line] = json_lines(stream)
    assert "RuntimeError: Daraja answered 500" in line["exception"]
    assert "Traceback" in line["exception"]


def test_text_lines_are_readable(capture, isolated_logger):
    stream = capture("text", isolated_logger)
    isolated_logger.warning("queue %s is deep", "high", extra={"depth": 120})
    line = stream.getvalue().strip()
    assert line.endswith("WARNING [-] tests.ops.redaction: queue high is deep depth=120")


def test_production_logs_json_by_default_and_a_bad_format_is_refused():
    assert os.environ.get("DAYSTAR_LOG_FORMAT", "json") == ProductionConfig.DAYSTAR_LOG_FORMAT
    with pytest.raises(ConfigError, match="DAYSTAR_LOG_FORMAT"):
        make_handler("xml")


@pytest.mark.parametrize(("configured", "app_level"), [("DEBUG", logging.DEBUG),
                                                      ("WARNING", logging.INFO)])  # fmt: skip
def test_the_configured_level_applies_and_the_app_keeps_its_info_lines(configured, app_level):
    root, app_logger = logging.getLogger(), logging.getLogger("app")
    saved = (root.level, list(root.handlers), app_logger.level)
    served = Flask("served")  # not testing: the levels are the configuration's
    served.config["DAYSTAR_LOG_LEVEL"] = configured
    try:
        logging_setup.configure_logging(served)
        assert root.level == logging.getLevelName(configured)
        assert app_logger.getEffectiveLevel() == app_level
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        app_logger.setLevel(saved[2])


# --- redaction ----------------------------------------------------------------------------------

API_KEY = generate_key()
CONSUMER_KEY = "GvzjNnYgNJtwgwfLBkZh65VOwnnMkVXm"
CONSUMER_SECRET = "pjXNIyxBMV1Mf3Ul"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
INITIATOR_PASSWORD = "Safaricom999!*!"
SECURITY_CREDENTIAL = "Lh8xJt4Vq0c+T3n9bYk2/QmZr7wPa1sE5dGfH6jK8lN0oP2qR4sT6uV8wX0yZ1aB3cD=="
OAUTH_TOKEN = "c9SQxWWhmdVRlyh0zh8gZDTkubVF"
TWILIO_AUTH_TOKEN = "7a9f1e2d3c4b5a6978877665544332211"[:32]
SENDGRID_KEY = "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"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
MAILGUN_NEW_KEY = "0123456789abcdef0123456789abcdef-1a2b3c4d-5e6f7a8b"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
PASSWORD = "correct horse battery staple"
DB_PASSWORD = "pg-S3cret-pass"
BASIC = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
STK_PASSWORD = base64.b64encode(f"174379{PASSKEY}20260105120000".encode()).decode()


CASES = {
    # name: (how it is logged, the secret that must not appear)
    "api key in the message": (lambda log: log.info(f"authenticating {API_KEY}"), API_KEY),
    "api key as an argument": (lambda log: log.warning("bad key %s", API_KEY), API_KEY),
    "api key as an extra field": (
        lambda log: log.info("request", extra={"api_key": API_KEY}),
        API_KEY,
    ),
    "api key inside an extra field": (
        lambda log: log.info("request", extra={"query": f"page=2&key={API_KEY}"}),
        API_KEY,
    ),
    "m-pesa consumer key and secret in a dict": (
        lambda log: log.info(
            "settings %s", {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}
        ),
        CONSUMER_SECRET,
    ),
    "m-pesa consumer key as an extra field": (
        lambda log: log.info("token", extra={"consumer_key": CONSUMER_KEY}),
        CONSUMER_KEY,
    ),
    "m-pesa basic auth header": (
        lambda log: log.info("GET /oauth/v1/generate Authorization: Basic %s", BASIC),
        BASIC,
    ),
    "m-pesa passkey": (
        lambda log: log.info("stk settings passkey=%s shortcode=174379", PASSKEY),
        PASSKEY,
    ),
    "m-pesa stk password": (
        lambda log: log.info(
            "stk body %s",
            json.dumps({"BusinessShortCode": "174379", "Password": STK_PASSWORD}),
        ),
        STK_PASSWORD,
    ),
    "m-pesa initiator password": (
        lambda log: log.info("b2c %s", {"initiator_password": INITIATOR_PASSWORD}),
        INITIATOR_PASSWORD,
    ),
    "m-pesa security credential": (
        lambda log: log.info(
            "b2c payload %r",
            {"InitiatorName": "apitest", "SecurityCredential": SECURITY_CREDENTIAL},
        ),
        SECURITY_CREDENTIAL,
    ),
    "oauth bearer token in a header": (
        lambda log: log.info("headers %s", {"Authorization": f"Bearer {OAUTH_TOKEN}"}),
        OAUTH_TOKEN,
    ),
    "oauth bearer token in text": (
        lambda log: log.info("calling with Bearer %s", OAUTH_TOKEN),
        OAUTH_TOKEN,
    ),
    "oauth token answer": (
        lambda log: log.info(
            "token answer %s", json.dumps({"access_token": OAUTH_TOKEN, "expires_in": "3599"})
        ),
        OAUTH_TOKEN,
    ),
    "twilio auth token": (
        lambda log: log.info(
            "twilio %s", {"account_sid": "AC123", "auth_token": TWILIO_AUTH_TOKEN}
        ),
        TWILIO_AUTH_TOKEN,
    ),
    "twilio auth token in an env line": (
        lambda log: log.info("DAYSTAR_TWILIO_AUTH_TOKEN=%s", TWILIO_AUTH_TOKEN),
        TWILIO_AUTH_TOKEN,
    ),
    "sendgrid api key": (lambda log: log.error("sendgrid refused %s", SENDGRID_KEY), SENDGRID_KEY),
    "mailgun api key": (lambda log: log.error("mailgun refused %s", MAILGUN_KEY), MAILGUN_KEY),
    "mailgun api key, new shape": (
        lambda log: log.error("mailgun refused %s", MAILGUN_NEW_KEY),
        MAILGUN_NEW_KEY,
    ),
    "aws secret access key": (
        lambda log: log.info("ses %s", {"secret_access_key": AWS_SECRET, "region": "eu-west-1"}),
        AWS_SECRET,
    ),
    "aws secret in an env line": (
        lambda log: log.info("aws_secret_access_key=%s", AWS_SECRET),
        AWS_SECRET,
    ),
    "aws access key id": (
        lambda log: log.info("signing as %s", AWS_ACCESS_KEY_ID),
        AWS_ACCESS_KEY_ID,
    ),
    "staff password in a form": (
        lambda log: log.info("login form %s", {"email": "a@b.ke", "password": PASSWORD}),
        PASSWORD,
    ),
    "password in a database url": (
        lambda log: log.error("cannot reach postgresql+psycopg://app:%s@db:5432/app", DB_PASSWORD),
        DB_PASSWORD,
    ),
    "authorization header in extra headers": (
        lambda log: log.info("sent", extra={"headers": {"Authorization": f"Basic {BASIC}"}}),
        BASIC,
    ),
    "password in a mapping format": (
        lambda log: log.info(
            "user %(user)s password %(password)s", {"user": "x", "password": PASSWORD}
        ),
        PASSWORD,
    ),
}


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_no_secret_reaches_the_log(case, log_format, capture, isolated_logger):
    log_it, secret = CASES[case]
    stream = capture(log_format, isolated_logger)
    log_it(isolated_logger)
    output = stream.getvalue()
    assert output.strip(), "nothing was logged"
    assert secret not in output
    assert MARK in output
    if log_format == "json":
        json_lines(stream)  # still valid JSON


def test_no_secret_in_an_exception_s_text(capture, isolated_logger):
    stream = capture("json", isolated_logger)
    try:
        raise ConnectionError(f"refused: Authorization: Bearer {OAUTH_TOKEN}")
    except ConnectionError:
        isolated_logger.exception("daraja call failed with %s", API_KEY)
    output = stream.getvalue()
    assert OAUTH_TOKEN not in output and API_KEY not in output
    assert "ConnectionError" in json_lines(stream)[0]["exception"]


def test_a_decrypted_secret_is_redacted_wherever_it_appears(capture, isolated_logger):
    stored = "what ever/the+admin typed 7781"  # no shape, no telling name: only its value
    assert decrypt(encrypt(stored)) == stored
    stream = capture("text", isolated_logger)
    isolated_logger.info("calling the provider with %s", stored)
    isolated_logger.info("in a URL: https://x.example/?a=%s", quote(stored, safe=""))
    output = stream.getvalue()
    assert "the+admin" not in output and "the%2Badmin" not in output
    assert output.count(MARK) == 2


def test_secrets_from_the_environment_overrides_are_registered(capture, isolated_logger):
    logging_setup.register_configured_secrets(
        {
            "MPESA_OVERRIDES": {"consumer_secret": "env-consumer-secret-1", "shortcode": "600999"},
            "NOTIFY_OVERRIDES": {"twilio.auth_token": "env-twilio-token-22"},
            "DAYSTAR_METRICS_TOKEN": "env-metrics-token-333",
        }
    )
    stream = capture("text", isolated_logger)
    isolated_logger.info(
        "values: env-consumer-secret-1 env-twilio-token-22 env-metrics-token-333 600999"
    )
    output = stream.getvalue()
    assert "env-consumer-secret-1" not in output and "env-twilio-token-22" not in output
    assert "env-metrics-token-333" not in output
    assert "600999" in output  # a shortcode is no secret


def test_ordinary_lines_are_left_alone(capture, isolated_logger):
    stream = capture("text", isolated_logger)
    message = (
        "member 42 paid KES 1500.00, receipt QKL1234567; key dsk_live_abc123 (prefix) used; "
        "Basic validation failed; token refreshed"
    )
    isolated_logger.info(message)
    assert stream.getvalue().rstrip().endswith(message)


def test_other_handlers_see_the_redacted_record_too(caplog):
    """The app's handler is the root's first: what a test's caplog (or any later handler) gets
    is already redacted."""
    logging.getLogger("app.ops.test").warning("leaked? %s", API_KEY)
    assert API_KEY not in caplog.text
    assert MARK in caplog.text
