"""Member messages for outbox events: the right template on the right channels, exactly once."""

from collections import Counter
from datetime import date
from decimal import Decimal

from sqlalchemy import select, update

from app.extensions import db
from app.jobs.events import dispatch_event
from app.models import Event, Notification
from app.services import contributions, loans, repayments
from app.services.notifications import events
from tests import factories

SYSTEM = factories.SYSTEM


def _rows() -> list[Notification]:
    return list(db.session.scalars(select(Notification).order_by(Notification.id)))


def _by(rows, event_type, channel) -> list[Notification]:
    return [r for r in rows if r.event_type == event_type and r.channel == channel]


def test_each_event_notifies_the_member_once_on_both_channels(member, product, run_jobs):
    loan = factories.active_loan(member, product, Decimal("12000"), 6, date(2026, 1, 5))
    declined = factories.pending_loan(member, product, Decimal("30000"))
    loans.decline(declined.id, "Your deposits do not cover this amount.", SYSTEM)
    repayments.record_repayment(loan.id, Decimal("2000"), "cash", None, SYSTEM, date(2026, 2, 5))
    contributions.record_contribution(
        member.id, Decimal("1500"), "deposit", "mpesa", "SLK4H7PQ3Y", SYSTEM, date(2026, 2, 6)
    )
    run_jobs()  # dispatch_event -> notify_event (and the sends, which have no provider here)

    rows = _rows()
    counts = Counter((r.event_type, r.channel) for r in rows)
    expected = {
        "member.created": 1,
        "loan.created": 2,
        "loan.approved": 1,
        "loan.declined": 1,
        "loan.disbursed": 1,
        "repayment.received": 1,
        "contribution.received": 1,
    }
    assert counts == {(kind, ch): n for kind, n in expected.items() for ch in ("sms", "email")}
    for row in rows:
        assert row.recipient_id == member.id and row.priority == "normal"
        assert row.template == events.EVENT_TEMPLATES[row.event_type] == row.notification_type
        assert row.recipient_contact == (member.phone if row.channel == "sms" else member.email)
        event_id = row.dedupe_key.split(":")[1]
        assert row.dedupe_key == f"event:{event_id}:{row.channel}"

    (welcome,) = _by(rows, "member.created", "sms")
    assert f"Your member number is {member.member_number}." in welcome.message
    approved_email = _by(rows, "loan.approved", "email")[0]
    assert approved_email.subject == "Your loan is approved"
    assert "Amount: KES 12,000.00" in approved_email.message
    assert "<strong>KES 12,000.00</strong>" in approved_email.html_message
    declined_email = _by(rows, "loan.declined", "email")[0]
    assert "The reason: Your deposits do not cover this amount." in declined_email.message
    disbursed = _by(rows, "loan.disbursed", "sms")[0].message
    assert f"loan {loan.id} has been sent to you" in disbursed
    assert "is due on 5 Feb 2026" in disbursed
    repaid = _by(rows, "repayment.received", "sms")[0].message
    assert f"we have received KES 2,000.00 for loan {loan.id}. Balance: KES " in repaid
    saved = _by(rows, "contribution.received", "sms")[0].message
    assert "your deposit of KES 1,500.00 (ref SLK4H7PQ3Y). Total deposits: KES 1,500.00." in saved


def test_an_event_dispatched_again_notifies_no_more(member, run_jobs):
    run_jobs()
    first = len(_rows())
    assert first == 2  # welcome by SMS and email
    (event_id,) = db.session.scalars(select(Event.id).where(Event.event_type == "member.created"))
    assert events.notify_for_event(event_id) == []
    db.session.execute(update(Event).values(dispatched_at=None))
    db.session.commit()
    dispatch_event(event_id)
    run_jobs()
    assert len(_rows()) == first


def test_channels_follow_the_settings_and_the_contacts(app, monkeypatch, product, run_jobs):
    monkeypatch.setitem(
        app.config,
        "NOTIFY_OVERRIDES",
        {"channels_welcome": "sms", "channels_loan_application_received": "none"},
    )
    with_email = factories.member()
    without_email = factories.member(email=None)
    factories.pending_loan(with_email, product)
    factories.approved_loan(without_email, product)
    run_jobs()
    got = Counter((r.recipient_id, r.event_type, r.channel) for r in _rows())
    assert got == {
        (with_email.id, "member.created", "sms"): 1,
        (without_email.id, "member.created", "sms"): 1,
        (without_email.id, "loan.approved", "sms"): 1,  # no email address: SMS only
    }


def test_events_without_a_message_store_nothing(member, product):
    factories.active_loan(member, product)
    loans.mark_overdue_defaulted(1, today=date(2027, 1, 1))
    kinds = {"loan.defaulted", "loan.completed"}
    ids = db.session.scalars(select(Event.id).where(Event.event_type.in_(kinds)))
    assert [events.notify_for_event(event_id) for event_id in ids] == [[]]
    assert events.notify_for_event(999_999) == []


def test_event_contexts_offer_every_variable_the_samples_do(member, product):
    """A template checked against the samples when saved must also render for real events."""
    from app.services.notifications.default_templates import sample_context

    loan = factories.active_loan(member, product)
    repayments.record_repayment(loan.id, Decimal("100"), "cash", None, SYSTEM, date(2026, 2, 1))
    contributions.record_contribution(member.id, Decimal("50"), "deposit", "cash", None, SYSTEM)
    for event in db.session.scalars(select(Event)):
        key = events.EVENT_TEMPLATES.get(event.event_type)
        if key is None:
            continue
        context = {"member": events.member_context(member)}
        context.update(events.CONTEXT[event.event_type](event.payload))
        sample = sample_context(key)
        for name, value in context.items():
            assert set(value) == set(sample[name]), (event.event_type, name)
