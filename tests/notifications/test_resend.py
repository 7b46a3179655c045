"""Resending: a new notification with the same recipient, channel, subject and message, linked to
the original in the audit log and enqueued after the commit; the original is never sent again.
One resend goes all the way to the provider sandbox."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.jobs import get_queue
from app.models import AuditLog, Notification, NotificationAttempt, NotificationStatus, Suppression
from app.models.base import utcnow
from app.services.errors import IllegalTransition, NotFound
from app.services.notifications import gateway
from app.services.notifications.resend import resend
from tests.factories import SYSTEM

URGENT = {"priority": "high"}  # ignores quiet hours, so the tests do not depend on the clock


def stored(member, channel="sms", status=NotificationStatus.FAILED, **values):
    """A notification to the member as the gateway stores it, moved to `status`."""
    row = gateway.create(member.id, "Your loan of KES 12,000.00 is approved.", channel,
                         "Loan approved", URGENT | {"type": "loan_approved",
                                                    "template": "loan_approved"})[0]  # fmt: skip
    get_queue("high").empty()  # the test decides what runs
    for name, value in {"status": status, **values}.items():
        setattr(row, name, value)
    db.session.commit()
    return row


def send_jobs() -> list[tuple]:
    return [job.args for job in get_queue("high").jobs if job.func_name == gateway.SEND_JOB]


@pytest.mark.parametrize(
    "status",
    [NotificationStatus.FAILED, NotificationStatus.SKIPPED, NotificationStatus.DELIVERED],
)
def test_a_new_row_is_stored_audited_and_enqueued(member, status):
    original = stored(
        member, "email", status, html_message="<p>Approved</p>", provider="sendgrid",
        provider_message_id="sg-1", retry_count=3, skip_reason="Every provider failed",
        created_at=utcnow() - timedelta(hours=2),
    )  # fmt: skip
    outcome = resend(original.id, SYSTEM)
    copy = outcome.new
    assert copy.id != original.id and copy.status == NotificationStatus.PENDING
    same = ("recipient_id", "channel", "subject", "message", "html_message", "recipient_contact",
            "notification_type", "priority", "template")  # fmt: skip
    assert [getattr(copy, f) for f in same] == [getattr(original, f) for f in same]
    assert (copy.provider, copy.provider_message_id, copy.retry_count, copy.skip_reason) == (
        None, None, 0, None)  # fmt: skip
    assert outcome.note == "It is being sent now."
    # The original is untouched.
    db.session.expire_all()
    assert db.session.get(Notification, original.id).status == status
    # Enqueued after the commit, for the new row only.
    assert send_jobs() == [(copy.id,)]
    entries = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    resent = [(e.action, e.target_id, e.details) for e in entries if "resen" in e.action]
    contact = {"channel": "email", "contact": member.email}
    assert resent == [
        ("notification.resent", original.id, {"new_notification_id": copy.id, **contact}),
        ("notification.created_by_resend", copy.id,
         {"original_notification_id": original.id, **contact}),
    ]  # fmt: skip
    assert all(e.actor_label == "tests" for e in entries if "resen" in e.action)


@pytest.mark.parametrize(
    "status", [NotificationStatus.PENDING, NotificationStatus.SENDING, NotificationStatus.SENT]
)
def test_a_notification_on_its_way_is_not_resent(member, status):
    original = stored(member, status=status)
    with pytest.raises(IllegalTransition) as caught:
        resend(original.id, SYSTEM)
    assert f"is {status}; only a failed, skipped or delivered" in caught.value.message
    assert db.session.scalar(select(Notification.id).where(Notification.id != original.id)) is None
    assert send_jobs() == []


def test_no_such_notification():
    with pytest.raises(NotFound):
        resend(999_999, SYSTEM)


def test_the_members_corrected_phone_number_is_used(member):
    original = stored(member)
    member.phone = "254733000111"  # as the members service stores it
    db.session.commit()
    assert resend(original.id, SYSTEM).new.recipient_contact == "254733000111"


def test_a_copy_the_rules_would_skip_is_refused_with_the_reason(member):
    original = stored(member)
    db.session.add(Suppression(channel="sms", contact=member.phone, reason="stop"))
    db.session.commit()
    with pytest.raises(IllegalTransition) as caught:
        resend(original.id, SYSTEM)
    assert caught.value.status_code == 409
    assert caught.value.message == "Not resent: The contact is on the suppression list (stop)."
    assert send_jobs() == [] and db.session.scalar(select(AuditLog.id).where(
        AuditLog.action == "notification.resent")) is None  # fmt: skip


def test_the_same_text_just_delivered_is_not_sent_twice(member):
    original = stored(member, status=NotificationStatus.DELIVERED)
    with pytest.raises(IllegalTransition) as caught:
        resend(original.id, SYSTEM)
    assert "The same message went to this contact within the hour." in caught.value.message


def test_a_resend_goes_to_the_provider(member, notify_live, run_jobs):
    original = stored(member)
    original_attempts = db.session.scalars(select(NotificationAttempt.id)).all()
    copy = resend(original.id, SYSTEM).new
    run_jobs()
    db.session.expire_all()
    copy = db.session.get(Notification, copy.id)
    assert (copy.status, copy.provider) == (NotificationStatus.SENT, "africastalking")
    sent = [m for m in notify_live.messages("africastalking") if copy.message in str(m)]
    assert [m["to"] for m in sent] == [f"+{member.phone}"]
    attempts = db.session.scalars(select(NotificationAttempt)).all()
    assert original_attempts == [] and [a.notification_id for a in attempts] == [copy.id]
    assert db.session.get(Notification, original.id).status == NotificationStatus.FAILED
    notify_live.flush()  # the delivery report reaches the callback route
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Notification, copy.id).status == NotificationStatus.DELIVERED
