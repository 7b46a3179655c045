"""Daraja client fixtures: a replaying loopback server and a client configured for it."""

import pytest

from app.integrations.daraja import DarajaClient, DarajaConfig
from tests.integrations.replay_server import ReplayServer

SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SECRETS = {
    "consumer_secret": "consumer-secret-Xq81",
    "passkey": SANDBOX_PASSKEY,
    "security_credential": "ENCRYPTED-initiator-credential-Zx9==",
}


def config_for(url: str, **changes) -> DarajaConfig:
    """A simulator configuration with short timeouts; `changes` override any field."""
    settings = {
        "environment": "simulator",
        "base_url": url,
        "consumer_key": "consumer-key-Ab12",
        "shortcode": "174379",
        "b2c_shortcode": "600992",
        "initiator_name": "testapi",
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        "retry_delay": 0.0,
        **SECRETS,
        **changes,
    }
    return DarajaConfig(**settings)


@pytest.fixture
def replay():
    server = ReplayServer()
    server.url = server.start()
    yield server
    server.stop()


@pytest.fixture
def replay_client(replay, redis_conn):
    """make(**config changes) -> a DarajaClient talking to the replay server."""
    return lambda **changes: DarajaClient(config_for(replay.url, **changes), redis_conn)
