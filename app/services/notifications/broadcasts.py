"""Broadcasts: one message (written for the occasion, or a notice template) to the members a
filter picks, by SMS, email or both. The form's rules are broadcast_form.py's.

Confirming stores the broadcast and enqueues one job. The job pages through the members by id
(PAGE at a time), renders the message for each in the template sandbox, and stores the page's
notifications through bulk.store with the dedupe key "broadcast:<id>:<member id>:<channel>", so
that a job that runs again stores nothing twice. The broadcast's counters and the last member
done are committed with each page, so a job retried after a crash resumes where it stopped.
Each notification is then sent as any other: opt-outs, the suppression list, quiet hours and
the daily limit are applied to it when it is sent (rules.py).

Cancelling stops the job at its next page and skips the notifications still pending. A
broadcast is finished once all of its notifications are stored and none is pending or sending.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import (
    Broadcast,
    BroadcastStatus,
    Channel,
    Member,
    Notification,
    NotificationStatus,
)
from app.models.base import utcnow
from app.models.notifications import UNSENT
from app.services import audit
from app.services.actor import Actor
from app.services.after_commit import enqueue_after_commit
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.lookup import get_or_not_found
from app.services.notifications import bulk
from app.services.notifications.broadcast_form import (
    KIND,
    Audience,
    Composer,
    Content,
    check_message,
    conditions,
    count,
    parse,
)
from app.services.notifications.gateway import CHANNELS
from app.services.notifications.reminders import MEMBER_COLUMNS, _channels, _member
from app.services.notifications.templates import TemplateProblem
from app.services.pagination import Page, paginate

log = logging.getLogger(__name__)

PAGE = 1000  # members per query, INSERT and commit (one step of the progress bar)
RUN_JOB = "app.jobs.broadcasts.run_broadcast"
RUN_QUEUE = "default"
RUN_TIMEOUT = 3600  # seconds: a whole membership is a few minutes of pages
CANCELLED_REASON = "Broadcast cancelled."
PER_PAGE = 20
DONE = (
    NotificationStatus.SENT,
    NotificationStatus.DELIVERED,
    NotificationStatus.FAILED,
    NotificationStatus.SKIPPED,
)
OPEN_BROADCAST = (BroadcastStatus.QUEUED, BroadcastStatus.SENDING)


# --- confirming ---------------------------------------------------------------------------------


def create(values: Mapping, actor: Actor) -> Broadcast:
    """Store the broadcast the form's `values` describe as queued and enqueue its job after the
    commit. ValidationFailed names each bad field (`audience` when the filters reach nobody).
    Audited; commits."""
    audience, content = parse(values)
    reach = count(audience)
    if reach.reachable == 0:
        raise ValidationFailed(
            {"audience": "No member these filters pick can be reached on the chosen channels."}
        )
    check_message(audience, content)
    broadcast = Broadcast(
        name=content.name,
        channel=audience.channel,
        template=content.template,
        subject=content.subject,
        message=content.message,
        effective_on=content.effective_on,
        starts_at=content.starts_at,
        ends_at=content.ends_at,
        priority=content.priority,
        filters=audience.filters(),
        status=BroadcastStatus.QUEUED,
        targeted=reach.matched,
        created_by_id=actor.staff_id,
    )
    db.session.add(broadcast)
    db.session.flush()
    audit.record(
        actor,
        "broadcast.queued",
        "broadcast",
        broadcast.id,
        name=content.name,
        channel=audience.channel,
        template=content.template,
        filters=audience.filters(),
        members=reach.matched,
        reachable=reach.reachable,
    )
    enqueue_after_commit(
        RUN_JOB, broadcast.id, queue=RUN_QUEUE, job_id=job_id(broadcast.id), timeout=RUN_TIMEOUT
    )
    db.session.commit()
    return broadcast


def job_id(broadcast_id: int) -> str:
    return f"broadcast-{broadcast_id}"


# --- the job ------------------------------------------------------------------------------------


def _locked(broadcast_id: int) -> Broadcast | None:
    # Row-locked on PostgreSQL until the commit, so a cancel waits for the page being stored
    # and then skips it too (SQLite has one writer at a time anyway).
    return db.session.scalar(
        select(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .with_for_update(of=Broadcast)
        .execution_options(populate_existing=True)
    )


def _page_items(
    broadcast_id: int, rows, composer: Composer, wanted: tuple[str, ...]
) -> tuple[list[bulk.Outgoing], int]:
    """The page's notifications not stored already, and how many of its members cannot be
    reached on any channel wanted (opted out, no contact, or a message that cannot render)."""
    planned = [(row, _channels(row, wanted)) for row in rows]
    base = {row.id: f"broadcast:{broadcast_id}:{row.id}" for row in rows}
    taken = bulk.taken_keys([f"{base[row.id]}:{c}" for row, pairs in planned for c, _ in pairs])
    items, unreachable = [], 0
    for row, pairs in planned:
        if not pairs:
            unreachable += 1
            continue
        pairs = [(c, to) for c, to in pairs if f"{base[row.id]}:{c}" not in taken]
        if not pairs:
            continue  # stored by an earlier run of the job
        try:
            message = composer.render(_member(row), tuple(c for c, _ in pairs))
        except TemplateProblem as exc:
            log.warning("broadcast %s: member %s skipped: %s", broadcast_id, row.id, exc)
            unreachable += 1
            continue
        for channel, to in pairs:
            text = message.sms if channel == Channel.SMS else message.text
            if text:
                items.append(
                    bulk.Outgoing(
                        recipient_id=row.id,
                        channel=channel,
                        contact=to,
                        message=text,
                        dedupe_key=base[row.id],
                        subject=message.subject if channel == Channel.EMAIL else None,
                        html=message.html if channel == Channel.EMAIL else None,
                    )
                )
    return items, unreachable


def run(broadcast_id: int) -> str | None:
    """Store the notifications of a queued (or half-done) broadcast, page by page, and enqueue
    their sends; nothing is stored twice however often it runs, and it stops at the next page
    once the broadcast is cancelled. The broadcast's status afterwards (None: no such one)."""
    broadcast = _locked(broadcast_id)
    if broadcast is None or broadcast.status not in OPEN_BROADCAST or broadcast.all_created_at:
        db.session.commit()
        return broadcast.status if broadcast else None
    audience, content = Audience.of(broadcast), Content.of(broadcast)
    if broadcast.status == BroadcastStatus.QUEUED:
        broadcast.status = BroadcastStatus.SENDING
        broadcast.started_at = utcnow()
        broadcast.targeted = count(audience).matched
    db.session.commit()
    composer = Composer(content)
    wanted = CHANNELS[audience.channel]
    query = select(*MEMBER_COLUMNS).where(*conditions(audience)).order_by(Member.id).limit(PAGE)
    kind = content.template or KIND
    while True:
        broadcast = _locked(broadcast_id)
        if broadcast.status != BroadcastStatus.SENDING:
            db.session.commit()
            return broadcast.status  # cancelled
        rows = db.session.execute(query.where(Member.id > broadcast.last_member_id)).all()
        if not rows:
            break
        items, unreachable = _page_items(broadcast.id, rows, composer, wanted)
        # Committed with the page's notifications (bulk.store commits), or alone.
        broadcast.last_member_id = rows[-1].id
        broadcast.processed += len(rows)
        broadcast.skipped += unreachable
        broadcast.created += len(items)
        if items:
            bulk.store(items, kind, content.priority, broadcast_id=broadcast.id)
        else:
            db.session.commit()
        db.session.expire_all()  # nothing read here is needed again: keep the session small
    broadcast.created = db.session.scalar(
        select(func.count()).where(Notification.broadcast_id == broadcast.id)
    )
    broadcast.targeted = broadcast.processed  # members who joined or left while it ran
    broadcast.all_created_at = utcnow()
    db.session.commit()
    log.info(
        "broadcast %s: %d members, %d notifications stored, %d members unreachable",
        broadcast.id, broadcast.processed, broadcast.created, broadcast.skipped,
    )  # fmt: skip
    finish_done([broadcast_id])
    return db.session.get(Broadcast, broadcast_id).status


def finish_done(broadcast_ids: Iterable[int]) -> int:
    """Mark finished those of the broadcasts whose notifications are all stored and none is
    pending or sending; how many. Commits."""
    ids = list(broadcast_ids)
    if not ids:
        return 0
    in_flight = (
        select(Notification.id)
        .where(Notification.broadcast_id == Broadcast.id, Notification.status.in_(UNSENT))
        .exists()
    )
    moved = db.session.execute(
        update(Broadcast)
        .where(
            Broadcast.id.in_(ids),
            Broadcast.status == BroadcastStatus.SENDING,
            Broadcast.all_created_at.is_not(None),
            ~in_flight,
        )
        .values(status=BroadcastStatus.FINISHED, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return moved


def open_ids() -> tuple[list[int], list[int]]:
    """Broadcasts not finished: (those still storing their notifications, those sending)."""
    rows = db.session.execute(
        select(Broadcast.id, Broadcast.all_created_at).where(Broadcast.status.in_(OPEN_BROADCAST))
    ).all()
    return [r.id for r in rows if r.all_created_at is None], [
        r.id for r in rows if r.all_created_at
    ]


# --- cancelling ---------------------------------------------------------------------------------


def cancel(broadcast_id: int, actor: Actor) -> int:
    """Stop a queued or sending broadcast: no more notifications are stored and those still
    pending are skipped ("Broadcast cancelled."); how many were skipped. IllegalTransition
    once it has finished. Audited; commits."""
    get_or_not_found(Broadcast, broadcast_id, f"There is no broadcast {broadcast_id}.")
    broadcast = _locked(broadcast_id)
    if broadcast.status not in OPEN_BROADCAST:
        db.session.rollback()
        raise IllegalTransition(f"This broadcast is {broadcast.status}: there is nothing to stop.")
    skipped = db.session.execute(
        update(Notification)
        .where(
            Notification.broadcast_id == broadcast.id,
            Notification.status == NotificationStatus.PENDING,
        )
        .values(
            status=NotificationStatus.SKIPPED, skip_reason=CANCELLED_REASON, updated_at=utcnow()
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    broadcast.status = BroadcastStatus.CANCELLED
    broadcast.cancelled_at = utcnow()
    broadcast.cancelled_by_id = actor.staff_id
    audit.record(
        actor,
        "broadcast.cancelled",
        "broadcast",
        broadcast.id,
        name=broadcast.name,
        created=broadcast.created,
        skipped=skipped,
    )
    db.session.commit()
    return skipped


# --- progress -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A broadcast and its notifications counted by status, for the progress bar: members done
    of those targeted while its notifications are being stored, then notifications done (sent,
    delivered, failed or skipped) of those stored."""

    broadcast: Broadcast
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def phase(self) -> str:
        """queued, creating, sending, finished or cancelled."""
        b = self.broadcast
        if b.status == BroadcastStatus.SENDING and b.all_created_at is None:
            return "creating"
        return b.status

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in DONE)

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(s, 0) for s in UNSENT)

    @property
    def value(self) -> int:
        if self.phase == "queued":
            return 0
        if self.phase == "creating":
            return min(self.broadcast.processed, self.maximum)
        return min(self.done, self.maximum)

    @property
    def maximum(self) -> int:
        if self.phase == "creating":
            return max(self.broadcast.targeted, self.broadcast.processed, 1)
        return max(self.broadcast.created, 1)

    @property
    def percent(self) -> int:
        if self.phase == "finished":
            return 100
        return self.value * 100 // self.maximum

    @property
    def polling(self) -> bool:
        return self.broadcast.status in OPEN_BROADCAST

    @property
    def audience(self) -> Audience:
        return Audience.of(self.broadcast)


def _counts(broadcast_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if broadcast_ids:
        rows = db.session.execute(
            select(Notification.broadcast_id, Notification.status, func.count())
            .where(Notification.broadcast_id.in_(broadcast_ids))
            .group_by(Notification.broadcast_id, Notification.status)
        ).all()
        for broadcast_id, status, n in rows:
            counts[broadcast_id][status] = n
    return counts


def progress(broadcast_id: int) -> Progress:
    """Where the broadcast stands; one that has just finished is marked so (commits then).
    NotFound when there is no such broadcast."""
    broadcast = get_or_not_found(Broadcast, broadcast_id, f"There is no broadcast {broadcast_id}.")
    sending = broadcast.status == BroadcastStatus.SENDING and broadcast.all_created_at
    if sending and finish_done([broadcast.id]):
        db.session.refresh(broadcast)
    return Progress(broadcast, _counts([broadcast.id])[broadcast.id])


def recent(page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Broadcasts, newest first, one page of Progress: three queries whatever the page size
    (finishing any that just finished may add one)."""
    listed = paginate(select(Broadcast).order_by(Broadcast.id.desc()), page, per_page)
    sending = [
        b.id for b in listed.items if b.status == BroadcastStatus.SENDING and b.all_created_at
    ]
    if sending and finish_done(sending):
        listed = paginate(select(Broadcast).order_by(Broadcast.id.desc()), page, per_page)
    counts = _counts([b.id for b in listed.items])
    listed.items = [Progress(b, counts[b.id]) for b in listed.items]
    return listed
