"""Africa's Talking's opt-out notification (a member replied STOP to our sender id): the route
puts the number on the suppression list at once, and the member's next SMS is not sent."""

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Notification, NotificationReceipt, Suppression
from app.services.notifications import delivery, gateway

SECRET = "at-optout-secret-0123456789"
URL = f"/callbacks/notify/africastalking/{SECRET}/optout"


@pytest.fixture(autouse=True)
def callback_secret(app):
    saved = app.config["NOTIFY_OVERRIDES"]
    app.config["NOTIFY_OVERRIDES"] = {"africastalking.callback_secret": SECRET}
    yield
    app.config["NOTIFY_OVERRIDES"] = saved


def test_an_opt_out_suppresses_the_number_and_the_next_sms_is_skipped(client, member):
    local = "0" + member.phone[3:]  # as a provider may write it: 07XX...
    response = client.post(URL, data={"senderId": "DAYSTAR", "phoneNumber": local})
    assert (response.status_code, response.get_json()) == (200, {"stored": 1})
    entry = db.session.scalars(select(Suppression)).one()
    assert (entry.channel, entry.contact, entry.reason, entry.provider) == (
        "sms", member.phone, "unsubscribe", "africastalking",
    )  # fmt: skip
    receipt = db.session.scalars(select(NotificationReceipt)).one()
    assert receipt.applied_at is not None and receipt.notification_id is None

    again = client.post(URL, data={"senderId": "DAYSTAR", "phoneNumber": local})
    assert again.get_json() == {"stored": 0}  # the same opt-out twice: one entry
    assert len(db.session.scalars(select(Suppression)).all()) == 1

    [row] = gateway.create(member.id, "Your statement is ready.", "sms", None, {"priority": "high"})
    delivery.deliver(row.id)
    db.session.expire_all()
    row = db.session.get(Notification, row.id)
    assert row.status == "skipped" and "suppress" in row.skip_reason.lower()


def test_an_opt_out_without_a_number_or_with_a_wrong_secret_changes_nothing(client):
    assert client.post(URL, data={"senderId": "DAYSTAR"}).status_code == 400
    wrong = URL.replace(SECRET, "not-the-secret-at-all-000000")
    assert client.post(wrong, data={"phoneNumber": "+254722000000"}).status_code == 403
    assert db.session.scalars(select(Suppression)).all() == []
    assert db.session.scalars(select(NotificationReceipt)).all() == []
