"""Integration log entries written as the integrations write them, at chosen times."""

from datetime import UTC, datetime

import pytest

from app.extensions import db
from app.models import IntegrationLogEntry, Role

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 12:00 in Nairobi


def add_entry(**fields) -> IntegrationLogEntry:
    """One entry (committed); every field may be given, the rest are plain defaults."""
    values = {
        "integration": "mpesa",
        "level": "info",
        "event": "mpesa.callback_processed",
        "message": "Callback processed.",
        "context": {},
        "created_at": NOW,
        **fields,
    }
    row = IntegrationLogEntry(**values)
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def accountant_client(login):
    return login(Role.ACCOUNTANT)


HX = {"HX-Request": "true"}
