"""The outbox: events commit with their change, roll back with it, and are dispatched exactly once
even when Redis was down at commit time."""

from datetime import timedelta

import pytest
from flask import current_app
from redis import Redis
from sqlalchemy import update

from app.extensions import db
from app.hooks import hookimpl
from app.jobs.events import dispatch_event, sweep_outbox
from app.models import Event, Member
from app.models.base import utcnow
from app.services import members
from app.services.errors import ValidationFailed
from app.services.events import record_event
from tests import factories
from tests.factories import SYSTEM


class Recorder:
    """A subscriber plugin that remembers what it was called with."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def daystar_event(self, event_id, event_type, sequence, payload):
        self.calls.append((event_id, event_type, sequence, payload))


@pytest.fixture
def recorder(app):
    plugin = Recorder()
    app.extensions["daystar_hooks"].register(plugin)
    yield plugin
    app.extensions["daystar_hooks"].unregister(plugin)


def test_event_is_written_in_the_same_transaction(member):
    event = db.session.query(Event).one()
    assert event.event_type == "member.created"
    assert event.subject_id == member.id
    assert event.payload["member_number"] == member.member_number
    assert event.payload["phone"] == member.phone


def test_rollback_leaves_no_event():
    factories.member(national_id="30000001")
    with pytest.raises(ValidationFailed):
        factories.member(national_id="30000001")  # refused by the unique national ID
    assert db.session.query(Event).count() == 1
    assert db.session.query(Member).count() == 1


def test_an_aborted_transaction_discards_its_event():
    record_event("member.created", "member", 999, {"id": 999})
    db.session.rollback()
    assert db.session.query(Event).count() == 0


def test_sequences_strictly_increase(member, product):
    factories.active_loan(member, product)
    sequences = [e.sequence for e in db.session.query(Event).order_by(Event.id)]
    assert sequences == list(range(1, len(sequences) + 1))


def test_commit_enqueues_dispatch_and_subscribers_see_it_once(recorder, run_jobs):
    member = factories.member()
    run_jobs()
    assert [(c[1], c[3]["id"]) for c in recorder.calls] == [("member.created", member.id)]
    event = db.session.query(Event).one()
    db.session.refresh(event)
    assert event.dispatched_at is not None
    dispatch_event(event.id)  # a second dispatch (retry, duplicate) is a no-op
    assert len(recorder.calls) == 1


def test_event_committed_while_redis_is_down_is_dispatched_by_the_sweep(recorder, run_jobs):
    working = current_app.extensions["redis"]
    current_app.extensions["redis"] = Redis(port=1, socket_connect_timeout=0.2)  # nothing listens
    try:
        member = factories.member()  # the commit succeeds although the enqueue fails
    finally:
        current_app.extensions["redis"] = working
    run_jobs()
    assert recorder.calls == []
    assert sweep_outbox() == 0  # too recent: the normal path may still be on its way
    db.session.execute(update(Event).values(created_at=utcnow() - timedelta(seconds=61)))
    db.session.commit()
    assert sweep_outbox() == 1
    run_jobs()
    assert [c[3]["id"] for c in recorder.calls] == [member.id]
    assert sweep_outbox() == 0


def test_failing_subscriber_leaves_event_undispatched_for_retry(app, run_jobs):
    class Broken:
        @hookimpl
        def daystar_event(self, event_id, event_type, sequence, payload):
            raise RuntimeError("subscriber down")

    plugin = Broken()
    app.extensions["daystar_hooks"].register(plugin)
    try:
        factories.member()
        event = db.session.query(Event).one()
        with pytest.raises(RuntimeError):
            dispatch_event(event.id)
    finally:
        app.extensions["daystar_hooks"].unregister(plugin)
    db.session.refresh(event)
    assert event.dispatched_at is None
    assert event.dispatch_attempts == 1
    dispatch_event(event.id)
    db.session.refresh(event)
    assert event.dispatched_at is not None


def test_unknown_event_type_is_a_programming_error():
    with pytest.raises(ValueError):
        record_event("loan.vanished", "loan", 1, {})


def test_member_payload_uses_plain_json(member):
    payload = db.session.query(Event).one().payload
    assert payload["joined_on"] == member.joined_on.isoformat()
    assert isinstance(payload["sms_opt_in"], bool)
    members.update_member(member.id, {**payload, "first_name": "Achieng"}, SYSTEM)
    assert db.session.query(Event).count() == 1  # edits are audited, not a webhook event
