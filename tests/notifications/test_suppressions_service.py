"""The suppression list service: adding by hand (normalised, noted, audited, never twice), lifting
(audited; the contact gets messages again, through the real worker and the provider sandbox),
filters and search, and where each entry came from."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.integrations.notify.base import DeliveryReceipt, DeliveryStatus
from app.models import (
    AuditLog,
    Notification,
    NotificationStatus,
    Role,
    Suppression,
    SuppressionReason,
)
from app.models.base import utcnow
from app.services.actor import Actor
from app.services.errors import NotFound, ValidationFailed
from app.services.notifications import config, gateway, receipts, rules, suppressions
from tests import factories

URGENT = {"priority": "high"}  # ignores quiet hours: the tests do not depend on the clock


@pytest.fixture
def admin():
    return Actor.staff(factories.staff(Role.ADMIN), "10.0.0.7")


def entries() -> list[Suppression]:
    db.session.expire_all()
    return list(db.session.scalars(select(Suppression).order_by(Suppression.id)))


def audit(action: str) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_add_normalises_the_contact_notes_why_and_is_audited(admin):
    sms = suppressions.add("sms", " 0712 345 678 ", "Asked by phone on 3 May", admin)
    email = suppressions.add("email", "Wanjiku@Example.CO.KE", "Asked at the branch", admin)
    assert (sms.contact, sms.reason, sms.detail, sms.created_by_id) == (
        "254712345678", SuppressionReason.MANUAL, "Asked by phone on 3 May", admin.id,
    )  # fmt: skip
    assert email.contact == "Wanjiku@example.co.ke" and email.provider is None
    added = audit("notification_suppression.added")
    assert [(a.target_id, a.details["contact"], a.actor_id, a.ip) for a in added] == [
        (sms.id, "254712345678", admin.id, "10.0.0.7"),
        (email.id, "Wanjiku@example.co.ke", admin.id, "10.0.0.7"),
    ]


@pytest.mark.parametrize(
    ("channel", "contact", "note", "field", "message"),
    [
        ("fax", "0712345678", "x", "channel", "Choose SMS or email."),
        ("sms", "12345", "x", "contact", "Kenyan mobile number"),
        ("sms", "", "x", "contact", "Enter a phone number."),
        ("email", "not-an-address", "x", "contact", "@"),
        ("email", "  ", "x", "contact", "Enter the email address."),
        ("sms", "0712345678", "  ", "note", "Say why"),
        ("sms", "0712345678", "x" * 501, "note", "at most 500"),
        ("sms", "0712345678", "\x00 ", "note", "Say why"),  # NUL is dropped, never stored
    ],
)
def test_bad_input_is_refused_naming_the_field(admin, channel, contact, note, field, message):
    with pytest.raises(ValidationFailed) as caught:
        suppressions.add(channel, contact, note, admin)
    assert field in caught.value.errors and message in caught.value.errors[field]
    assert entries() == []


def test_a_contact_is_listed_once_per_channel(admin):
    db.session.add(Suppression(channel="sms", contact="254712345678", reason="hard_bounce"))
    db.session.commit()
    with pytest.raises(ValidationFailed) as caught:
        suppressions.add("sms", "0712345678", "again", admin)
    assert caught.value.errors == {"contact": "254712345678 is on the list already (hard_bounce)."}
    suppressions.add("email", "member@example.co.ke", "email is another channel", admin)
    assert len(entries()) == 2


def test_remove_lifts_the_entry_audited_and_rules_send_again(admin, member):
    row = gateway.create(member.id, "Your statement is ready.", "sms", options=URGENT)[0]
    entry = suppressions.add("sms", member.phone, "Lost phone", admin)
    assert rules.decide(row, config.current()).action == "skip"

    lifted = suppressions.remove(entry.id, admin, "Found it again")
    assert (lifted.channel, lifted.contact, lifted.reason) == ("sms", member.phone, "manual")
    assert entries() == []
    [removed] = audit("notification_suppression.removed")
    assert (removed.target_id, removed.actor_id, removed.details["note"]) == (
        entry.id, admin.id, "Found it again",
    )  # fmt: skip
    assert removed.details["contact"] == member.phone and removed.details["reason"] == "manual"
    assert rules.decide(row, config.current()) == rules.SEND

    with pytest.raises(NotFound):
        suppressions.remove(entry.id, admin)
    with pytest.raises(NotFound):
        suppressions.remove(2**40, admin)  # no id column holds it: NotFound, never an overflow


def test_after_lifting_the_worker_sends_through_the_provider_again(
    admin, member, notify_live, run_jobs
):
    entry = suppressions.add("sms", member.phone, "Member asked to stop", admin)
    held = gateway.create(member.id, "Your deposit of KES 500.00 is in.", "sms", options=URGENT)[0]
    run_jobs()
    db.session.expire_all()
    held = db.session.get(Notification, held.id)
    assert held.status == NotificationStatus.SKIPPED and "suppression list" in held.skip_reason
    assert notify_live.messages("africastalking") == []

    suppressions.remove(entry.id, admin, "Member asked to get messages again")
    again = gateway.create(member.id, "Your deposit of KES 500.00 is in.", "sms", options=URGENT)[0]
    run_jobs()
    db.session.expire_all()
    again = db.session.get(Notification, again.id)
    assert (again.status, again.provider) == (NotificationStatus.SENT, "africastalking")
    assert [m["to"] for m in notify_live.messages("africastalking")] == [f"+{member.phone}"]


def listed(**filters) -> list[str]:
    page = suppressions.list_entries(
        suppressions.filters_from(
            filters.get("channel"), filters.get("reason"), filters.get("search")
        ),
        filters.get("page", 1),
        filters.get("per_page", 25),
    )
    return [e.contact for e in page.items]


def test_filters_search_and_pages():
    now = utcnow()
    rows = [
        ("sms", "254712345678", "hard_bounce"),
        ("sms", "254798765432", "manual"),
        ("email", "Wanjiku@example.co.ke", "complaint"),
        ("email", "100%_sure@example.co.ke", "unsubscribe"),
    ]
    for n, (channel, contact, reason) in enumerate(rows):
        db.session.add(Suppression(channel=channel, contact=contact, reason=reason,
                                   created_at=now - timedelta(minutes=10 - n)))  # fmt: skip
    db.session.commit()
    newest_first = [r[1] for r in reversed(rows)]
    assert listed() == newest_first
    assert listed(channel="sms") == ["254798765432", "254712345678"]
    assert listed(reason="complaint") == ["Wanjiku@example.co.ke"]
    assert listed(search="0712 345 678") == ["254712345678"]  # as people type numbers
    assert listed(search="+254 798") == ["254798765432"]
    assert listed(search="WANJIKU") == ["Wanjiku@example.co.ke"]  # any case
    assert listed(search="%") == ["100%_sure@example.co.ke"]  # a wildcard is a character
    assert listed(search="_") == ["100%_sure@example.co.ke"]
    assert listed(channel="fax", reason="nonsense", search="\x00") == newest_first  # ignored
    assert listed(page=2, per_page=3) == [rows[0][1]]


def test_origin_names_the_receipt_or_the_person(admin, member, run_jobs):
    sent = gateway.create(member.id, "Hello", "email", "Hello", URGENT)[0]
    sent.status, sent.provider, sent.provider_message_id = "sent", "sendgrid", "sg-msg-1"
    db.session.commit()
    receipts.store([
        DeliveryReceipt(provider="sendgrid", status=DeliveryStatus.DELIVERED,
                        provider_message_id="sg-msg-1", event_id="sg-evt-1"),
        DeliveryReceipt(provider="sendgrid", status=DeliveryStatus.BOUNCED,
                        provider_message_id="sg-msg-1", event_id="sg-evt-2",
                        detail="550 5.1.1 no such user", permanent=True),
    ])  # fmt: skip
    run_jobs()
    [bounced] = entries()
    assert (bounced.contact, bounced.reason, bounced.provider) == (
        member.email, "hard_bounce", "sendgrid",
    )  # fmt: skip
    manual = suppressions.add("sms", member.phone, "Asked by letter", admin)
    invalid = Suppression(channel="sms", contact="254700000001", reason="invalid",
                          provider="twilio", detail="21211 invalid number")  # fmt: skip
    db.session.add(invalid)
    db.session.commit()

    found = suppressions.origins(entries())
    assert found[bounced.id].receipt_status == "bounced"
    assert found[bounced.id].receipt_event == "sg-evt-2" and found[bounced.id].receipt_at
    assert found[manual.id] == suppressions.Origin(added_by=admin.label)
    assert found[invalid.id] == suppressions.Origin()  # refused when sending: no receipt
