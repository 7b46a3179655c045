"""API fixtures: keys with chosen permissions and their Authorization headers."""

import pytest

from app.models import ApiPermission
from app.services import api_keys
from tests.factories import SYSTEM

ALL_PERMISSIONS = [p.value for p in ApiPermission]


@pytest.fixture
def make_key():
    """make_key(permissions=ALL, **options) -> (ApiKey, plaintext)."""

    def _make(permissions=None, name="Ledger sync", **options):
        return api_keys.create_key(name, permissions or ALL_PERMISSIONS, SYSTEM, **options)

    return _make


@pytest.fixture
def auth_headers(make_key):
    """auth_headers(permissions=ALL) -> headers carrying a new key's bearer token."""

    def _headers(permissions=None, **options):
        _, plaintext = make_key(permissions, **options)
        return {"Authorization": f"Bearer {plaintext}"}

    return _headers
