"""Broadcasts: who the filters pick and the live count, the message per member, the job that stores
the notifications (once, however often it runs, resuming after a crash), progress, cancelling,
and a real run through the provider sandbox."""

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.jobs import broadcasts as broadcast_jobs
from app.jobs import get_queue
from app.models import (
    AuditLog,
    Broadcast,
    BroadcastStatus,
    Member,
    MemberStatus,
    Notification,
    NotificationStatus,
    Suppression,
)
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.notifications import broadcast_form, broadcasts, bulk
from tests import factories

SYSTEM = factories.SYSTEM
NO_QUIET_HOURS = {"quiet_hours_start": "00:00", "quiet_hours_end": "00:00"}


def values(**overrides) -> dict:
    """The form's values for a broadcast of our own text to every active member, by both."""
    return {
        "name": "Office hours",
        "channel": "both",
        "template": "",
        "subject": "New office hours",
        "message": "Dear {{ member.first_name }}, our office now opens at 8:00.",
        "priority": "normal",
        "status": "active",
        "loans": "",
        **overrides,
    }


def audience(**overrides) -> broadcast_form.Audience:
    return broadcast_form.parse_audience(values(**overrides))


def rows(broadcast) -> list[Notification]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.broadcast_id == broadcast.id)
            .order_by(Notification.id)
        )
    )


def reload(broadcast) -> Broadcast:
    db.session.expire_all()
    return db.session.get(Broadcast, broadcast.id)


@pytest.fixture
def people():
    """Five members: reachable both ways, opted out of SMS, without email, dormant, and one whose
    email address is on the suppression list."""
    both = factories.member(first_name="Achieng")
    no_sms = factories.member(first_name="Baraka", sms_opt_in=False)
    no_email = factories.member(first_name="Chebet", email=None)
    dormant = factories.member(first_name="Dalmas", status=MemberStatus.DORMANT)
    suppressed = factories.member(first_name="Esther")
    db.session.add(Suppression(channel="email", contact=suppressed.email, reason="hard_bounce"))
    db.session.commit()
    return {"both": both, "no_sms": no_sms, "no_email": no_email, "dormant": dormant, "suppressed": suppressed}  # fmt: skip


# --- who -----------------------------------------------------------------------------------------


def test_the_count_says_how_many_members_each_channel_reaches(people):
    reach = broadcast_form.count(audience())
    assert reach == broadcast_form.Reach(matched=4, sms=3, email=3, reachable=4, suppressed=1)
    sms_only = broadcast_form.count(audience(channel="sms"))
    assert (sms_only.matched, sms_only.sms, sms_only.email, sms_only.reachable) == (4, 3, 0, 3)
    assert sms_only.unreachable == 1  # Baraka opted out of SMS
    assert broadcast_form.count(audience(channel="email", status="any")).email == 4


def test_the_filters_pick_by_status_loans_joining_date_and_member_number(product):
    today = date(2026, 3, 1)
    early = factories.member(joined_on=date(2023, 5, 1))
    borrower = factories.member(joined_on=date(2024, 6, 1))
    factories.active_loan(borrower, product, disbursed_on=date(2026, 1, 5))  # due 5 Feb: overdue
    current = factories.member(joined_on=date(2025, 1, 1))
    factories.active_loan(current, product, disbursed_on=date(2026, 2, 20))  # first due 20 Mar
    exited = factories.member(status=MemberStatus.EXITED)
    applicant = factories.member(joined_on=date(2025, 6, 1))
    factories.pending_loan(applicant, product)  # not a live loan

    def ids(**filters):
        found = broadcast_form.conditions(audience(**filters), today)
        return set(db.session.scalars(select(Member.id).where(*found)))

    everyone = {early.id, borrower.id, current.id, applicant.id}
    assert ids() == everyone
    assert ids(status="any") == everyone | {exited.id}
    assert ids(status="exited") == {exited.id}
    assert ids(loans="with_loan") == {borrower.id, current.id}
    assert ids(loans="overdue") == {borrower.id}
    assert ids(loans="without_loan") == {early.id, applicant.id}
    assert ids(joined_from="2024-01-01", joined_to="2024-12-31") == {borrower.id}
    assert ids(joined_to="2023-12-31") == {early.id}
    numbers = f"{early.member_number.lower()}, {current.member_number}\n{exited.member_number}"
    assert ids(member_numbers=numbers) == {early.id, current.id}  # the exited one is not active
    assert ids(member_numbers=numbers, status="any") == {early.id, current.id, exited.id}


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("channel", "fax", "channel"),
        ("status", "sleeping", "status"),
        ("loans", "rich", "loans"),
        ("joined_from", "1 May 2024", "joined_from"),
        ("joined_to", "2020-01-01", "joined_to"),  # before joined_from
        ("member_numbers", "DST999999 nobody", "member_numbers"),
        ("name", "", "name"),
        ("name", "x" * 121, "name"),
        ("template", "loan_approved", "template"),
        ("subject", "", "subject"),  # an email needs one
        ("message", "  ", "message"),
        ("message", "x" * 10_001, "message"),
        ("priority", "high", "priority"),
        ("starts_at", "tomorrow", "starts_at"),
        ("starts_at", "0001-01-01T00:00", "starts_at"),
    ],
)
def test_a_bad_value_is_named(field, value, error, member):
    form = values(**{"joined_from": "2024-01-01", field: value})
    with pytest.raises(ValidationFailed) as caught:
        broadcasts.create(form, SYSTEM)
    assert error in caught.value.errors
    assert db.session.scalar(select(Broadcast.id)) is None


def test_a_notice_needs_a_title_and_an_sms_no_subject(member):
    with pytest.raises(ValidationFailed) as caught:
        broadcasts.create(values(template="policy_change", subject=""), SYSTEM)
    assert caught.value.errors == {"subject": "Give the notice a title (it is the email's subject too)."}  # fmt: skip
    assert broadcasts.create(values(channel="sms", subject=""), SYSTEM).status == "queued"


def test_filters_that_reach_nobody_cannot_be_sent(member):
    with pytest.raises(ValidationFailed) as caught:
        broadcasts.create(values(loans="overdue"), SYSTEM)
    assert list(caught.value.errors) == ["audience"]


def test_a_message_that_cannot_be_rendered_is_refused_at_once(member):
    with pytest.raises(ValidationFailed) as caught:
        broadcasts.create(values(message="Dear {{ member.first_name "), SYSTEM)
    assert "error on line 1" in caught.value.errors["message"]
    with pytest.raises(ValidationFailed) as caught:
        broadcasts.create(values(message="Hi {{ member.password }}"), SYSTEM)
    assert "message" in caught.value.errors


# --- what each member gets -----------------------------------------------------------------------


def test_each_member_gets_the_message_rendered_for_them(people, run_jobs):
    broadcast = broadcasts.create(values(), SYSTEM)
    assert broadcast.targeted == 4
    assert broadcasts.run(broadcast.id) == BroadcastStatus.SENDING
    stored = rows(broadcast)
    by_member = Counter((r.recipient_id, r.channel) for r in stored)
    p = people
    assert by_member == {
        (p["both"].id, "sms"): 1, (p["both"].id, "email"): 1,
        (p["no_sms"].id, "email"): 1,
        (p["no_email"].id, "sms"): 1,
        (p["suppressed"].id, "sms"): 1, (p["suppressed"].id, "email"): 1,
    }  # fmt: skip
    sms = next(r for r in stored if r.recipient_id == p["both"].id and r.channel == "sms")
    assert sms.message == "Dear Achieng, our office now opens at 8:00."
    assert sms.dedupe_key == f"broadcast:{broadcast.id}:{p['both'].id}:sms"
    assert (sms.status, sms.priority, sms.notification_type, sms.template) == (
        "pending", "normal", "broadcast", "broadcast",
    )  # fmt: skip
    email = next(r for r in stored if r.recipient_id == p["no_sms"].id)
    assert (email.subject, email.recipient_contact) == ("New office hours", p["no_sms"].email)
    assert "Dear Baraka" in email.message and "Dear Baraka" in email.html_message
    broadcast = reload(broadcast)
    assert (broadcast.targeted, broadcast.processed, broadcast.created, broadcast.skipped) == (4, 4, 6, 0)  # fmt: skip
    # The sends are queued in batches on the priority's queue (normal: "default").
    jobs = [j for j in get_queue("default").get_jobs() if j.func_name == bulk.BATCH_JOB]
    assert sorted(i for j in jobs for i in j.args[0]) == [r.id for r in stored]


def test_a_policy_change_fills_in_the_template(member):
    form = values(
        template="policy_change",
        subject="New loan interest rates",
        message="The Development Loan's rate is 11% a year.",
        effective_on="2027-01-01",
        priority="low",
    )
    broadcast = broadcasts.create(form, SYSTEM)
    broadcasts.run(broadcast.id)
    sms, email = sorted(rows(broadcast), key=lambda r: r.channel)[::-1]
    assert sms.message == (
        "Daystar SACCO: New loan interest rates. The Development Loan's rate is 11% a year. "
        "From 1 Jan 2027."
    )
    assert (sms.template, sms.priority) == ("policy_change", "low")
    assert email.subject == "New loan interest rates"
    assert f"Dear {member.first_name}" in email.message


def test_members_with_no_channel_to_use_are_counted_not_stored():
    factories.member(sms_opt_in=False, email_opt_in=False)
    reachable = factories.member()
    broadcast = broadcasts.create(values(channel="sms"), SYSTEM)
    broadcasts.run(broadcast.id)
    broadcast = reload(broadcast)
    assert (broadcast.targeted, broadcast.created, broadcast.skipped) == (2, 1, 1)
    assert [r.recipient_id for r in rows(broadcast)] == [reachable.id]


# --- the job: once, and resumable ----------------------------------------------------------------


def test_running_the_job_twice_stores_nothing_twice(people, run_jobs):
    broadcast = broadcasts.create(values(), SYSTEM)
    # Confirming enqueued one job; enqueueing it again while it exists is a no-op.
    assert broadcast_jobs.enqueue_broadcast(broadcast.id) is None
    run_jobs()
    first = [(r.id, r.dedupe_key) for r in rows(broadcast)]
    assert len(first) == 6
    assert broadcasts.run(broadcast.id) in ("sending", "finished")  # done already: nothing to do
    # Even forced back to the start (as a retry after a crash before any counter was saved)...
    broadcast = reload(broadcast)
    broadcast.status, broadcast.all_created_at, broadcast.last_member_id = "sending", None, 0
    db.session.commit()
    broadcasts.run(broadcast.id)
    assert [(r.id, r.dedupe_key) for r in rows(broadcast)] == first  # ...no duplicate
    assert reload(broadcast).created == 6


def test_a_job_that_crashed_resumes_after_the_last_page_stored(monkeypatch):
    members = [factories.member() for _ in range(5)]
    broadcast = broadcasts.create(values(channel="sms"), SYSTEM)
    monkeypatch.setattr(broadcasts, "PAGE", 2)
    real_store, calls = bulk.store, []

    def store_then_crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("the database went away")
        return real_store(*args, **kwargs)

    monkeypatch.setattr(bulk, "store", store_then_crash)
    with pytest.raises(ConnectionError):
        broadcasts.run(broadcast.id)
    db.session.rollback()
    half = reload(broadcast)
    assert (half.status, half.processed, half.created, half.last_member_id) == (
        "sending", 2, 2, members[1].id,
    )  # fmt: skip
    assert broadcasts.Progress(half).phase == "creating"
    assert (broadcasts.Progress(half).value, broadcasts.Progress(half).maximum) == (2, 5)
    broadcasts.run(broadcast.id)  # RQ's retry
    done = reload(broadcast)
    assert (done.processed, done.created, done.targeted) == (5, 5, 5)
    assert sorted(r.recipient_id for r in rows(broadcast)) == [m.id for m in members]


def test_the_sweep_restarts_a_lost_job_and_finishes_a_done_broadcast(member, redis_conn, run_jobs):
    broadcast = broadcasts.create(values(channel="sms"), SYSTEM)
    get_queue("default").empty()  # Redis lost the job
    assert broadcast_jobs.sweep_broadcasts() == 0
    assert [j.func_name for j in get_queue("default").get_jobs()] == [
        "app.jobs.broadcasts.run_broadcast"
    ]
    get_queue("default").empty()
    broadcasts.run(broadcast.id)
    db.session.execute(
        Notification.__table__.update()
        .where(Notification.broadcast_id == broadcast.id)
        .values(status="sent")
    )
    db.session.commit()
    assert broadcast_jobs.sweep_broadcasts() == 1
    assert reload(broadcast).status == BroadcastStatus.FINISHED


# --- progress and cancelling ---------------------------------------------------------------------


def _mark(broadcast, status: str, how_many: int) -> None:
    pending = [r for r in rows(broadcast) if r.status == "pending"][:how_many]
    for row in pending:
        row.status = status
    db.session.commit()


def test_progress_counts_members_then_messages(people):
    broadcast = broadcasts.create(values(), SYSTEM)
    queued = broadcasts.progress(broadcast.id)
    assert (queued.phase, queued.value, queued.percent, queued.polling) == ("queued", 0, 0, True)
    broadcasts.run(broadcast.id)
    sending = broadcasts.progress(broadcast.id)
    assert (sending.phase, sending.value, sending.maximum, sending.waiting) == ("sending", 0, 6, 6)
    _mark(broadcast, "sent", 2)
    _mark(broadcast, "delivered", 1)
    _mark(broadcast, "failed", 1)
    _mark(broadcast, "skipped", 1)
    midway = broadcasts.progress(broadcast.id)
    assert (midway.done, midway.value, midway.percent, midway.waiting) == (5, 5, 83, 1)
    assert midway.counts == {"sent": 2, "delivered": 1, "failed": 1, "skipped": 1, "pending": 1}
    _mark(broadcast, "sent", 1)
    done = broadcasts.progress(broadcast.id)  # notices the end, and records it
    assert (done.phase, done.percent, done.polling) == ("finished", 100, False)
    assert reload(broadcast).finished_at is not None
    listed = broadcasts.recent().items
    assert [(p.broadcast.id, p.counts["sent"]) for p in listed] == [(broadcast.id, 3)]


def test_cancelling_skips_the_pending_messages_and_stops_the_job(people):
    officer = factories.staff("admin")
    from app.services.actor import Actor

    actor = Actor.staff(officer, "10.0.0.9")
    broadcast = broadcasts.create(values(), SYSTEM)
    broadcasts.run(broadcast.id)
    _mark(broadcast, "sent", 2)
    assert broadcasts.cancel(broadcast.id, actor) == 4
    cancelled = reload(broadcast)
    assert (cancelled.status, cancelled.cancelled_by_id) == ("cancelled", officer.id)
    statuses = Counter((r.status, r.skip_reason) for r in rows(broadcast))
    assert statuses == {("sent", None): 2, ("skipped", "Broadcast cancelled."): 4}
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "broadcast.cancelled"))
    assert (entry.actor_id, entry.target_id, entry.details["skipped"]) == (
        officer.id,
        broadcast.id,
        4,
    )
    progress = broadcasts.progress(broadcast.id)
    assert (progress.phase, progress.polling, progress.done) == ("cancelled", False, 6)
    with pytest.raises(IllegalTransition):
        broadcasts.cancel(broadcast.id, actor)


def test_a_broadcast_cancelled_before_its_job_ran_stores_nothing(people, run_jobs):
    broadcast = broadcasts.create(values(), SYSTEM)
    assert broadcasts.cancel(broadcast.id, SYSTEM) == 0
    run_jobs()
    assert rows(broadcast) == []
    assert reload(broadcast).status == "cancelled"


def test_a_job_stops_at_the_next_page_once_cancelled(monkeypatch):
    for _ in range(4):
        factories.member()
    broadcast = broadcasts.create(values(channel="sms"), SYSTEM)
    monkeypatch.setattr(broadcasts, "PAGE", 2)
    real_store = bulk.store

    def store_then_cancel(*args, **kwargs):
        ids = real_store(*args, **kwargs)
        broadcasts.cancel(broadcast.id, SYSTEM)  # staff press Cancel while the page is stored
        return ids

    monkeypatch.setattr(bulk, "store", store_then_cancel)
    assert broadcasts.run(broadcast.id) == "cancelled"
    stored = rows(broadcast)
    assert len(stored) == 2 and {r.status for r in stored} == {"skipped"}
    assert reload(broadcast).processed == 2


# --- audited -------------------------------------------------------------------------------------


def test_confirming_is_audited_with_the_filters(member):
    broadcast = broadcasts.create(values(loans="", joined_from="2020-01-01"), SYSTEM)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "broadcast.queued"))
    assert entry.target_id == broadcast.id
    assert entry.details["filters"]["joined_from"] == "2020-01-01"
    assert (entry.details["members"], entry.details["reachable"]) == (1, 1)


# --- for real: the sandbox providers -------------------------------------------------------------


def test_a_broadcast_goes_out_through_the_providers_and_finishes(
    app, notify_live, run_jobs, monkeypatch
):
    app.config["NOTIFY_OVERRIDES"].update(NO_QUIET_HOURS)  # the test must not depend on the clock
    monkeypatch.setattr(clock, "today", lambda: date(2026, 3, 1))
    members = [factories.member(first_name=name) for name in ("Faith", "Gitau", "Halima")]
    factories.member(first_name="Imani", sms_opt_in=False, email_opt_in=False)
    run_jobs()  # their welcome messages first
    broadcast = broadcasts.create(values(), SYSTEM)
    run_jobs()  # the broadcast's job, then its send batches
    stored = rows(broadcast)
    assert len(stored) == 6
    assert {r.status for r in stored} == {NotificationStatus.SENT}
    sent = str(notify_live.messages("africastalking"))
    for member in members:
        assert f"Dear {member.first_name}, our office now opens at 8:00." in sent
    notify_live.flush()  # delivery reports reach our callback routes
    run_jobs()
    progress = broadcasts.progress(broadcast.id)
    assert (progress.phase, progress.percent) == ("finished", 100)
    assert progress.counts.get("delivered", 0) >= 3  # the SMS receipts, at least
    assert (progress.broadcast.targeted, progress.broadcast.skipped) == (4, 1)
