"""Sandbox tests: a callback receiver, an authorised Daraja client per test, request builders,
the official samples, and a second sandbox server for tests that need another configuration."""

import base64
import contextlib
import json
import threading
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from werkzeug.serving import make_server

from sandbox import create_app
from sandbox.settings import DEFAULTS
from tests.sandbox.receiver import CallbackReceiver

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "mpesa"  # copied from ../shared/reference
TIMESTAMP = "20260101120000"
PHONE = "254712345678"


def sample(name: str):
    return json.loads((SAMPLES / name).read_text())


def shape(value):
    """The structure of a JSON document: keys in order, value types, and the names of
    `{Key|Name: ...}` items, so two bodies of the same kind compare equal."""
    if isinstance(value, dict):
        return [(k, v if k in ("Key", "Name") else shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


@pytest.fixture(autouse=True)
def app_ctx():
    """Overrides the suite's per-test app context and table cleanup: the sandbox tests never
    touch the app, its database or Redis (on PostgreSQL the cleanup alone takes ~1 s a test)."""
    yield


@pytest.fixture
def receiver():
    with CallbackReceiver() as receiver:
        yield receiver


class Daraja:
    """Calls the sandbox's Daraja API like a client would, with a fresh token."""

    def __init__(self, base_url: str, credentials: dict, certificate_pem: bytes):
        self.base_url = base_url
        self.credentials = credentials
        self.certificate_pem = certificate_pem
        self.http = requests.Session()
        self.token = self.new_token()

    def new_token(self) -> str:
        c = self.credentials
        response = self.http.get(
            f"{self.base_url}/oauth/v1/generate",
            params={"grant_type": "client_credentials"},
            auth=(c["consumer_key"], c["consumer_secret"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        return self.token

    def post(self, path: str, body, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.http.post(f"{self.base_url}{path}", json=body, headers=headers, timeout=10)

    def credential(self, password: str | None = None) -> str:
        password = self.credentials["initiator_password"] if password is None else password
        key = x509.load_pem_x509_certificate(self.certificate_pem).public_key()
        return base64.b64encode(key.encrypt(password.encode(), padding.PKCS1v15())).decode()

    def password(self, timestamp: str = TIMESTAMP, shortcode: str | None = None) -> str:
        shortcode = shortcode or self.credentials["shortcode"]
        raw = f"{shortcode}{self.credentials['passkey']}{timestamp}"
        return base64.b64encode(raw.encode()).decode()

    # --- request builders (valid by default; tests break one field at a time) -------------
    def stk_body(self, receiver, **fields) -> dict:
        code = self.credentials["shortcode"]
        body = {
            "BusinessShortCode": code,
            "Password": self.password(),
            "Timestamp": TIMESTAMP,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": "100",
            "PartyA": PHONE,
            "PartyB": code,
            "PhoneNumber": PHONE,
            "CallBackURL": receiver.url("stk"),
            "AccountReference": "LN-000123",
            "TransactionDesc": "Loan repay",
        }
        return body | fields

    def stk_push(self, receiver, **fields) -> requests.Response:
        return self.post("/mpesa/stkpush/v1/processrequest", self.stk_body(receiver, **fields))

    def stk_query(self, checkout_id: str, **fields) -> requests.Response:
        body = {
            "BusinessShortCode": self.credentials["shortcode"],
            "Password": self.password(),
            "Timestamp": TIMESTAMP,
            "CheckoutRequestID": checkout_id,
        }
        return self.post("/mpesa/stkpushquery/v1/query", body | fields)

    def b2c_body(self, receiver, **fields) -> dict:
        body = {
            "OriginatorConversationID": fields.pop("originator", "DSB-000001"),
            "InitiatorName": self.credentials["initiator_name"],
            "SecurityCredential": self.credential(),
            "CommandID": "BusinessPayment",
            "Amount": "5000",
            "PartyA": self.credentials["shortcode"],
            "PartyB": PHONE,
            "Remarks": "Loan disbursement",
            "QueueTimeOutURL": receiver.url("b2c/timeout"),
            "ResultURL": receiver.url("b2c/result"),
            "Occassion": "LN-000123",
        }
        return body | fields

    def b2c(self, receiver, version: str = "v3", **fields) -> requests.Response:
        return self.post(f"/mpesa/b2c/{version}/paymentrequest", self.b2c_body(receiver, **fields))

    def status_body(self, receiver, **fields) -> dict:
        body = {
            "Initiator": self.credentials["initiator_name"],
            "SecurityCredential": self.credential(),
            "CommandID": "TransactionStatusQuery",
            "TransactionID": "",
            "OriginalConversationID": "",
            "PartyA": self.credentials["shortcode"],
            "IdentifierType": "4",
            "ResultURL": receiver.url("status/result"),
            "QueueTimeOutURL": receiver.url("status/timeout"),
            "Remarks": "Check",
            "Occasion": "",
        }
        return body | fields

    def status(self, receiver, **fields) -> requests.Response:
        return self.post("/mpesa/transactionstatus/v1/query", self.status_body(receiver, **fields))

    def balance_body(self, receiver, **fields) -> dict:
        body = {
            "Initiator": self.credentials["initiator_name"],
            "SecurityCredential": self.credential(),
            "CommandID": "AccountBalance",
            "PartyA": self.credentials["shortcode"],
            "IdentifierType": "4",
            "Remarks": "ok",
            "QueueTimeOutURL": receiver.url("balance/timeout"),
            "ResultURL": receiver.url("balance/result"),
        }
        return body | fields

    def balance(self, receiver, **fields) -> requests.Response:
        return self.post("/mpesa/accountbalance/v1/query", self.balance_body(receiver, **fields))

    def register(self, receiver, version: str = "v1", **fields) -> requests.Response:
        body = {
            "ShortCode": self.credentials["shortcode"],
            "ResponseType": "Completed",
            "ConfirmationURL": receiver.url("c2b/confirmation"),
            "ValidationURL": receiver.url("c2b/validation"),
        }
        return self.post(f"/mpesa/c2b/{version}/registerurl", body | fields)


@pytest.fixture
def daraja(daraja_sandbox):
    return Daraja(
        daraja_sandbox.base_url, daraja_sandbox.credentials, daraja_sandbox.certificate_pem
    )


@contextlib.contextmanager
def serve(**config):
    """Another sandbox on its own port, for tests that need a different configuration."""
    app = create_app(dict(DEFAULTS, SANDBOX_CALLBACK_DELAY=None) | config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def flush(base_url: str) -> list[dict]:
    response = requests.post(f"{base_url}/sandbox/api/flush", timeout=30)
    response.raise_for_status()
    return response.json()["delivered"]


def credentials_of(base_url: str) -> dict:
    return requests.get(f"{base_url}/sandbox/api/daraja/credentials", timeout=10).json()


def certificate_of(base_url: str) -> bytes:
    return requests.get(f"{base_url}/sandbox/certificate.cer", timeout=10).content
