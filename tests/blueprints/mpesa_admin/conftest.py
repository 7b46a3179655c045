"""Fixtures for the M-Pesa pages: roles, M-Pesa settings (also pointing at the Daraja sandbox),
and transactions made through the services."""

import pytest

from app.extensions import db
from app.models import MpesaStatus, Role
from app.services import settings as stored_settings
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import payments
from app.services.mpesa.transactions import move
from tests.factories import SYSTEM

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def is_page(response) -> bool:
    return "<html" in response.text


@pytest.fixture
def accountant_client(login):
    return login(Role.ACCOUNTANT)


@pytest.fixture
def save_settings():
    """save(**values) stores M-Pesa settings as the settings page would (secrets encrypted)."""
    return lambda **values: mpesa_config.save(values, SYSTEM)


@pytest.fixture
def overrides(app):
    """set(**fields): M-Pesa settings as if environment variables set them (undone afterwards)."""
    saved = dict(app.config.get("MPESA_OVERRIDES", {}))

    def _set(**fields):
        app.config["MPESA_OVERRIDES"] = {**saved, **fields}

    yield _set
    app.config["MPESA_OVERRIDES"] = saved


@pytest.fixture
def sandbox_settings(daraja_sandbox, live_server, save_settings):
    """M-Pesa settings pointing at the Daraja sandbox (simulator environment), with our public
    address the live test server, so the sandbox's callbacks reach the app over HTTP."""
    credentials = daraja_sandbox.credentials
    save_settings(
        environment="simulator",
        base_url=daraja_sandbox.base_url,
        consumer_key=credentials["consumer_key"],
        consumer_secret=credentials["consumer_secret"],
        shortcode=credentials["shortcode"],
        passkey=credentials["passkey"],
        initiator_name=credentials["initiator_name"],
        security_credential=daraja_sandbox.security_credential(),
        public_base_url=live_server,
        callback_secret="callback-secret-0123456789abcdef",
    )
    return daraja_sandbox


@pytest.fixture
def stk_request(member):
    """make(amount=..., **kwargs) -> a queued STK Push contribution request for the member."""

    def _make(amount="1500", **kwargs):
        values = {
            "phone": member.phone,
            "amount": amount,
            "account_reference": member.member_number,
            "description": "Contribution",
            "member_id": member.id,
            "payment_purpose": "contribution",
            "contribution_kind": "deposit",
            "actor": SYSTEM,
        } | kwargs
        return payments.create_request(**values)

    return _make


def mark_sent(txn, checkout_request_id: str, merchant_request_id: str | None = None) -> None:
    """What the sending job does once Daraja accepts a push: pending, with Daraja's ids. (The
    job itself needs Daraja; the tests that are about pages start from its result.)"""
    assert move(
        txn.id,
        (MpesaStatus.QUEUED,),
        MpesaStatus.PENDING,
        checkout_request_id=checkout_request_id,
        merchant_request_id=merchant_request_id,
    )
    db.session.commit()


def stored_value(name: str) -> str | None:
    return stored_settings.stored(mpesa_config.PREFIX).get(name)
