"""Resending a notification: a NEW row with the same recipient, channel, subject and message (the
original is never sent again), both linked in the audit log, its send enqueued after the commit."""

from dataclasses import dataclass

from app.extensions import db
from app.models import Channel, Member, Notification, NotificationStatus
from app.models.base import utcnow
from app.services import audit
from app.services.actor import Actor
from app.services.after_commit import enqueue_after_commit
from app.services.errors import IllegalTransition
from app.services.lookup import get_or_not_found
from app.services.notifications import config, gateway, rules

RESENDABLE = (NotificationStatus.FAILED, NotificationStatus.SKIPPED, NotificationStatus.DELIVERED)


@dataclass(frozen=True)
class Resent:
    original: Notification
    new: Notification
    note: str  # what happens next, in words: sent shortly, or held by quiet hours


def _contact(original: Notification) -> str | None:
    """The member's contact on the channel today (it may have been corrected since the first
    send); the original contact for a message to no member."""
    if original.recipient_id is None:
        return original.recipient_contact
    member = db.session.get(Member, original.recipient_id)
    if member is None:
        return original.recipient_contact
    return member.phone if original.channel == Channel.SMS else member.email


def resend(notification_id: int, actor: Actor) -> Resent:
    """Store a copy of a failed, skipped or delivered notification as a new pending one and
    enqueue its send after the commit; audited on both rows. IllegalTransition (409) when the
    original is still on its way, or when the sending rules would skip the copy at once (opt-out,
    suppression list, the same text within the duplicate window, no contact, daily limit).
    NotFound for no such notification. Commits."""
    original = get_or_not_found(Notification, notification_id, "There is no such notification.")
    if original.status not in RESENDABLE:
        raise IllegalTransition(
            f"Notification #{original.id} is {original.status}; only a failed, skipped or "
            "delivered notification can be resent."
        )
    settings = config.current()
    copy = Notification(
        recipient_id=original.recipient_id,
        notification_type=original.notification_type,
        channel=original.channel,
        subject=original.subject,
        message=original.message,
        html_message=original.html_message,
        recipient_contact=_contact(original),
        status=NotificationStatus.PENDING,
        priority=original.priority,
        max_retries=int(settings.max_retries),
        event_type=original.event_type,
        template=original.template,
        encoding=original.encoding,
        segments=original.segments,
    )
    now = utcnow()
    # Checked before anything is stored: a copy the rules would skip at once helps nobody.
    decision = rules.decide(copy, settings, now)
    if decision.action == "skip":
        raise IllegalTransition(f"Not resent: {decision.reason}")
    db.session.add(copy)
    db.session.flush()
    details = {"channel": copy.channel, "contact": copy.recipient_contact}
    audit.record(actor, "notification.resent", "notification", original.id,
                 new_notification_id=copy.id, **details)  # fmt: skip
    audit.record(actor, "notification.created_by_resend", "notification", copy.id,
                 original_notification_id=original.id, **details)  # fmt: skip
    enqueue_after_commit(
        gateway.SEND_JOB,
        copy.id,
        queue=gateway.QUEUE_OF[copy.priority],
        job_id=f"notify-{copy.id}",
    )
    db.session.commit()
    note = decision.reason if decision.action == "defer" else "It is being sent now."
    return Resent(original, copy, note)
