"""Sending one stored notification: claim it (so no second worker sends it), apply the rules, then
try the channel's providers in order. A transient failure or a provider fault moves on to the next
provider in the same job (and counts towards that provider's circuit breaker); a permanent
recipient failure stops and suppresses the contact; when every provider failed the notification
is retried later with backoff, up to its max_retries."""

import logging
import time
from datetime import timedelta

from sqlalchemy import insert, or_, select, update

from app.extensions import db
from app.integrations.notify.base import Outcome, SendResult
from app.models import (
    Notification,
    NotificationAttempt,
    NotificationStatus,
    SuppressionReason,
)
from app.models.base import utcnow
from app.services.notifications import activity, config, providers, receipts, rules
from app.services.notifications.status_change import move

log = logging.getLogger(__name__)

RETRY_DELAYS = (60, 300, 1800, 7200)  # seconds after the 1st, 2nd, 3rd, 4th+ failed round
STALE_SENDING = timedelta(minutes=10)
LOST_JOB_AFTER = timedelta(minutes=1)


RECORD_ATTEMPT = insert(NotificationAttempt.__table__)  # built once: bulk runs add one a message


def deliver(notification_id: int) -> str | None:
    """Send one pending notification, once; its final status (None when there was nothing to
    do)."""
    return deliver_many([notification_id])[notification_id]


def deliver_many(notification_ids: list[int]) -> dict[int, str | None]:
    """Send each pending, due notification of `notification_ids`, once; the final status of
    each by id (None when there was nothing to do). The rules are read for the whole batch in a
    few grouped queries; each notification is then claimed and committed before its providers
    are called, and its outcome is committed as it comes (with the next one's claim), so a
    worker that dies mid-batch leaves at most one message in doubt (see
    abandon_stale_sending)."""
    now = utcnow()
    outcome: dict[int, str | None] = dict.fromkeys(notification_ids)
    rows = _pending(notification_ids, now)
    if not rows:
        return outcome
    settings = config.current()
    decisions = rules.decide_many(rows, settings, now)
    to_send = []
    for row in rows:
        decision = decisions[row.id]
        if decision.action == "skip":
            if move(row.id, (NotificationStatus.PENDING,), status=NotificationStatus.SKIPPED,
                     skip_reason=decision.reason):  # fmt: skip
                outcome[row.id] = NotificationStatus.SKIPPED
        elif decision.action == "defer":
            if move(row.id, (NotificationStatus.PENDING,), scheduled_for=decision.until,
                     skip_reason=decision.reason):  # fmt: skip
                outcome[row.id] = NotificationStatus.PENDING
        else:
            to_send.append(row)
    senders = providers.ForBatch()
    raised = []
    claimed = bool(to_send) and _claim(to_send[0])
    db.session.commit()  # the skipped and deferred, and the first one's claim
    for index, row in enumerate(to_send):
        following = to_send[index + 1] if index + 1 < len(to_send) else None
        if claimed:
            try:
                outcome[row.id] = _try_providers(row, settings, senders)
            except Exception:  # noqa: BLE001 - logged; the others still go, then BatchFailed
                db.session.rollback()
                log.exception("notification %s could not be sent", row.id)
                raised.append(row.id)
        # The next one is claimed in the transaction that records this one's outcome: one
        # commit per message, and still none is sent before its claim is committed.
        claimed = following is not None and _claim(following)
        db.session.commit()
    sent = [row.id for row in to_send if outcome[row.id] == NotificationStatus.SENT]
    receipts.apply_waiting(sent)  # receipts that came before we recorded the provider's id
    if raised:
        raise BatchFailed(f"{len(raised)} of {len(to_send)} raised: {raised[:20]}")
    return outcome


class BatchFailed(RuntimeError):
    """Some notifications of a batch raised (each is logged); the rest were sent. Its job is
    retried, and the retry finds the others done."""


def _claim(row: Notification) -> bool:
    """Mark it `sending` (the caller commits before any provider is called): a second job, or
    this one re-run after its worker died, finds it `sending` and does nothing."""
    return move(row.id, (NotificationStatus.PENDING,), status=NotificationStatus.SENDING)


def _pending(notification_ids: list[int], now) -> list[Notification]:
    """The pending notifications of `notification_ids` whose time has come, in id order, loaded
    once and detached: the commits after each send do not make every other one reload."""
    rows = db.session.scalars(
        select(Notification)
        .where(
            Notification.id.in_(notification_ids),
            Notification.status == NotificationStatus.PENDING,
            or_(Notification.scheduled_for.is_(None), Notification.scheduled_for <= now),
        )
        .order_by(Notification.id)
    ).all()
    for row in rows:
        db.session.expunge(row)
    return list(rows)


def _try_providers(
    row: Notification, settings: config.NotifySettings, senders: providers.ForBatch
) -> str:
    # A provider named before any has answered was forced (an administrator's test message): it
    # alone is tried, even while its circuit is open, since the test is how staff see it is back.
    forced = row.provider
    order = [forced] if forced else settings.order(row.channel)
    failures = []
    for name in order:
        if not forced and senders.cooling_off(name):
            failures.append(f"{name}: skipped (cooling off after repeated failures)")
            continue
        client = senders.client(name)
        if client is None:
            failures.append(f"{name}: not configured")
            continue
        started = time.monotonic()
        result = client.send(senders.message(row, name))
        _record_attempt(row, result, started)
        if result.outcome == Outcome.ACCEPTED:
            senders.succeeded(name)
            _accepted(row, result)
            return NotificationStatus.SENT
        if result.outcome == Outcome.PERMANENT:
            _permanent(row, result)
            return NotificationStatus.FAILED
        if senders.failed(
            name,
            int(settings.circuit_threshold),
            int(settings.circuit_window_seconds),
            int(settings.circuit_cooling_off_seconds),
        ):
            activity.circuit_opened(row, name, int(settings.circuit_cooling_off_seconds))
            db.session.commit()
        failures.append(f"{name}: {result.detail or result.outcome}")
    return _every_provider_failed(
        row, "; ".join(failures) or "No provider is configured for this channel."
    )


def _record_attempt(row: Notification, result: SendResult, started: float) -> None:
    db.session.execute(
        RECORD_ATTEMPT,
        {
            "notification_id": row.id,
            "provider": result.provider,
            "outcome": str(result.outcome),
            "detail": result.detail[:2000],
            "response": result.response[:2000],
            "http_status": result.http_status,
            "provider_message_id": result.provider_message_id,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )
    if result.outcome != Outcome.ACCEPTED:
        activity.provider_failed(row, result)
    if result.outcome not in (Outcome.ACCEPTED, Outcome.PERMANENT):
        # The next provider may take seconds to answer: no transaction is left open meanwhile.
        # An accepted or refused message commits its attempt with its new status, at once.
        db.session.commit()


def _accepted(row: Notification, result: SendResult) -> None:
    values = {
        "status": NotificationStatus.SENT,
        "provider": result.provider,
        "provider_message_id": result.provider_message_id,
        "provider_response": result.response[:2000],
        "sent_at": utcnow(),
    }
    if result.cost is not None:
        values.update(cost=result.cost, currency=result.currency)
    if result.segments:
        values["segments"] = result.segments
    move(row.id, (NotificationStatus.SENDING,), **values)


def _permanent(row: Notification, result: SendResult) -> None:
    move(
        row.id,
        (NotificationStatus.SENDING,),
        status=NotificationStatus.FAILED,
        provider=result.provider,
        provider_response=result.response[:2000],
        failed_at=utcnow(),
        skip_reason=result.detail[:200] or "The provider says the recipient cannot receive it.",
    )
    receipts.suppress(row.channel, row.recipient_contact, SuppressionReason.INVALID,
                      result.provider, result.detail)  # fmt: skip
    activity.failed(
        row, result.detail, retrying=False, kind=f"{result.provider}: recipient refused"
    )


def _every_provider_failed(row: Notification, why: str) -> str:
    if row.retry_count < row.max_retries:
        delay = RETRY_DELAYS[min(row.retry_count, len(RETRY_DELAYS) - 1)]
        move(
            row.id,
            (NotificationStatus.SENDING,),
            status=NotificationStatus.PENDING,
            retry_count=row.retry_count + 1,
            scheduled_for=utcnow() + timedelta(seconds=delay),
            skip_reason=f"Every provider failed; retrying in {delay // 60 or 1} min: {why}"[:200],
        )
        activity.failed(row, why, retrying=True)
        return NotificationStatus.PENDING
    move(
        row.id,
        (NotificationStatus.SENDING,),
        status=NotificationStatus.FAILED,
        failed_at=utcnow(),
        skip_reason=f"Every provider failed {row.retry_count + 1} times: {why}"[:200],
    )
    activity.failed(row, why, retrying=False)
    return NotificationStatus.FAILED


def due_ids(limit: int = 1000) -> list[int]:
    """Pending notifications whose time has come (scheduled, deferred or being retried), and
    unscheduled ones older than a minute whose job Redis lost."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(Notification.id)
            .where(
                Notification.status == NotificationStatus.PENDING,
                or_(
                    Notification.scheduled_for <= now,
                    Notification.scheduled_for.is_(None)
                    & (Notification.created_at < now - LOST_JOB_AFTER),
                ),
            )
            .order_by(Notification.id)
            .limit(limit)
        )
    )


def abandon_stale_sending() -> int:
    """Notifications left `sending` by a worker that died: they may or may not have reached the
    provider, so they are failed (staff may resend), never sent again automatically."""
    cutoff = utcnow() - STALE_SENDING
    moved = db.session.execute(
        update(Notification)
        .where(Notification.status == NotificationStatus.SENDING, Notification.updated_at < cutoff)
        .values(
            status=NotificationStatus.FAILED,
            failed_at=utcnow(),
            skip_reason="The worker stopped while sending; not sent again to avoid a duplicate.",
        )
    ).rowcount
    db.session.commit()
    return moved
