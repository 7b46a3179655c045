"""The notification log: every notification with filters and pages; one notification with every
field, its rendered message, the timeline of its provider attempts and delivery receipts; and the
Resend button, which stores a new notification (never re-sends the same row)."""

from flask import flash, request, url_for

from app.auth import current_actor, requires
from app.blueprints.api_admin.common import id_from, page_number
from app.blueprints.mpesa_admin.refusals import refused
from app.blueprints.notify_admin import bp
from app.blueprints.notify_admin.log_forms import LogFilterForm
from app.htmx import hx_redirect, render_view
from app.models import Notification
from app.services.errors import NotFound, ServiceError
from app.services.notifications import log_query
from app.services.notifications.resend import RESENDABLE, resend
from app.services.notifications.stats import PROVIDER_LABELS
from app.services.pagination import paginate

PER_PAGE = 50


def notification_id_from(values) -> int:
    """The `notification_id` of the query string or form; NotFound when it names none."""
    return id_from(values, "notification_id", "notification")


@bp.get("/log")
@requires("read")
def log():
    """Notifications, newest first, filtered by channel, status, provider, type, recipient
    (phone, email or member number), dates and words in the message; bad filters are shown
    (422) instead of the list."""
    form = LogFilterForm(formdata=request.args)
    context = {"form": form, "filters": form.query_values(), "provider_labels": PROVIDER_LABELS}
    if not form.validate():
        return render_view(
            "notify_admin/log.html", "notify_admin/_log.html", 422, results=None, **context
        )
    results = paginate(log_query.notifications_query(form.checked()), page_number(), PER_PAGE)
    return render_view(
        "notify_admin/log.html",
        "notify_admin/_log.html",
        results=results,
        members=log_query.members_of(results.items),
        **context,
    )


def _timeline(row: Notification, receipts, trail) -> list[dict]:
    """The notification's life in time order: stored, what people did (the audit log), each
    provider attempt, each delivery receipt, and the final stamps."""
    events = [{"at": row.created_at, "kind": "created"}]
    events += [{"at": e.created_at, "kind": "audit", "entry": e} for e in trail]
    events += [{"at": a.created_at, "kind": "attempt", "attempt": a} for a in row.attempts]
    events += [{"at": r.occurred_at or r.received_at, "kind": "receipt", "receipt": r}
               for r in receipts]  # fmt: skip
    for stamp, kind in ((row.sent_at, "sent"), (row.delivered_at, "delivered"),
                        (row.failed_at, "failed")):  # fmt: skip
        if stamp:
            events.append({"at": stamp, "kind": kind})
    order = {"created": 0, "audit": 1, "attempt": 2, "sent": 3, "receipt": 4, "delivered": 5,
             "failed": 5}  # fmt: skip
    return sorted(events, key=lambda e: (e["at"], order[e["kind"]]))


def _detail_view(notification_id: int, status_code: int = 200, /, **context):
    """One notification with every field, its timeline and the Resend button where it applies."""
    row = log_query.notification_detail(notification_id)
    if row is None:
        raise NotFound("There is no such notification.")
    receipts = log_query.receipts_for(row)
    trail = log_query.audit_trail(row.id)
    return render_view(
        "notify_admin/notification.html",
        "notify_admin/_notification.html",
        status_code,
        row=row,
        member=log_query.members_of([row]).get(row.recipient_id),
        receipts=receipts,
        trail=trail,
        timeline=_timeline(row, receipts, trail),
        resendable=row.status in RESENDABLE,
        provider_labels=PROVIDER_LABELS,
        **context,
    )


@bp.get("/log/notification")
@requires("read")
def log_notification():
    """A notification: all its fields, the message as the recipient gets it (an email's HTML in
    a sandboxed frame, never in the page), every provider attempt and delivery receipt in time
    order, and the Resend button for those who may use it."""
    return _detail_view(notification_id_from(request.args))


@bp.post("/log/resend")
@requires("manage_members")
def log_resend():
    """Send a failed, skipped or delivered notification again as a new notification to the
    same recipient (audited, linked to the original); the new one's page is shown. A refusal
    (still on its way, opted out, suppressed, a duplicate...) says why, 4xx."""
    notification_id = notification_id_from(request.form)
    try:
        outcome = resend(notification_id, current_actor())
    except ServiceError as exc:
        return refused(exc)
    flash(
        f"Notification #{outcome.original.id} resent as #{outcome.new.id}. {outcome.note}",
        "success",
    )
    return hx_redirect(url_for("notify_admin.log_notification", notification_id=outcome.new.id))
