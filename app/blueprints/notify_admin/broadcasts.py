"""Broadcasts: one message to a filtered set of members (a policy change, planned maintenance),
by SMS, email or both. The form shows live how many members it will reach and the message as
the first of them gets it; confirming stores it and starts its job, and its page shows a
progress bar (polled) until every message has gone. Everyone may read the list and the
progress; administrators (`manage_settings`) send and cancel. The rules are
app/services/notifications/broadcast_form.py's and broadcasts.py's."""

from flask import flash, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.widgets import DateInput, DateTimeLocalInput

from app.auth import current_actor, requires
from app.blueprints.api_admin.common import id_from, page_number
from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.blueprints.notify_admin import bp
from app.htmx import hx_redirect, is_htmx, render_view
from app.jobs.broadcasts import enqueue_broadcast
from app.services.errors import ValidationFailed
from app.services.notifications import broadcast_form
from app.services.notifications import broadcasts as service

SEND = "manage_settings"  # who may send and cancel broadcasts
LIST_PAGE = "notify_admin/broadcasts.html"
LIST = "notify_admin/_broadcasts.html"
NEW_PAGE = "notify_admin/broadcast_new.html"
FORM = "notify_admin/_broadcast_form.html"
PREVIEW = "notify_admin/_broadcast_preview.html"
DETAIL_PAGE = "notify_admin/broadcast.html"
PROGRESS = "notify_admin/_broadcast_progress.html"
POLL_DONE = 286  # htmx stops polling on this status


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(str(value), label) for value, label in labels.items()]


class BroadcastForm(ServiceErrorsMixin, FlaskForm):
    """Renders the fields; the rules are the service's."""

    name = StringField(
        "Name",
        filters=[without_nul],
        description="For your list of broadcasts; members do not see it.",
        render_kw={"maxlength": broadcast_form.MAX_NAME, "autocomplete": "off"},
    )
    channel = SelectField(
        "Send by",
        choices=_choices(broadcast_form.CHANNEL_LABELS),
        default="both",
        validate_choice=False,
    )
    template = SelectField(
        "Message", choices=_choices(broadcast_form.TEMPLATES), default="", validate_choice=False
    )
    subject = StringField(
        "Subject or title",
        filters=[without_nul],
        description="The email's subject; for a policy change or maintenance notice, its title.",
        render_kw={"maxlength": 200},
    )
    message = TextAreaField(
        "Text",
        filters=[without_nul],
        description=(
            "Your own message may use {{ member.first_name }}, {{ member.member_number }} and "
            "{{ sacco.name }}. For a template, the notice's text (or the update's summary)."
        ),
        render_kw={"rows": 5},
    )
    effective_on = StringField(
        "Applies from (policy change)", widget=DateInput(), filters=[without_nul]
    )
    starts_at = StringField(
        "Starts (maintenance, Nairobi time)", widget=DateTimeLocalInput(), filters=[without_nul]
    )
    ends_at = StringField("Ends", widget=DateTimeLocalInput(), filters=[without_nul])
    priority = SelectField(
        "Priority",
        choices=_choices(broadcast_form.PRIORITIES),
        default="normal",
        validate_choice=False,
        description="Either way quiet hours, opt-outs and the daily limit apply.",
    )
    status = SelectField(
        "Members",
        choices=_choices(broadcast_form.STATUSES),
        default="active",
        validate_choice=False,
    )
    loans = SelectField(
        "Loans",
        choices=[SelectChoice(v, label.capitalize()) for v, label in broadcast_form.LOANS.items()],
        default="",
        validate_choice=False,
    )
    joined_from = StringField("Joined from", widget=DateInput(), filters=[without_nul])
    joined_to = StringField("Joined to", widget=DateInput(), filters=[without_nul])
    member_numbers = TextAreaField(
        "Only these member numbers (optional)",
        filters=[without_nul],
        description="Separated by spaces, commas or new lines, e.g. DST000123 DST000124.",
        render_kw={"rows": 2, "autocomplete": "off"},
    )


def _new_view(partial: str, form: BroadcastForm, status: int = 200, /):
    """The new-broadcast page (or `partial` of it) with the live count for the form's values;
    asked for the preview alone, 422 when the filters cannot be used."""
    preview = broadcast_form.preview(request.form if request.method == "POST" else {})
    if partial == PREVIEW and preview.filter_errors:
        status = 422
    return render_view(NEW_PAGE, partial, status, form=form, preview=preview)


@bp.get("/broadcasts", endpoint="broadcasts")
@requires("read")
def broadcast_list():
    """Every broadcast, newest first, with its figures, 20 a page."""
    return render_view(LIST_PAGE, LIST, results=service.recent(page_number()))


@bp.route("/broadcasts/new", methods=["GET", "POST"])
@requires(SEND)
def broadcast_new():
    """The broadcast form with its live count; a valid one is stored, its job started, and its
    progress page opened (audited); an invalid one comes back with 422 and the reasons."""
    form = BroadcastForm()
    if request.method == "GET":
        return _new_view(FORM, form)
    try:
        broadcast = service.create(request.form, current_actor())
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _new_view(FORM, form, 422)
    flash(f"Broadcast “{broadcast.name}” confirmed: it is being sent.", "success")
    return hx_redirect(url_for("notify_admin.broadcast", broadcast_id=broadcast.id))


@bp.post("/broadcasts/preview")
@requires(SEND)
def broadcast_preview():
    """How many members the form's filters reach (by SMS, by email) and the message as the first
    of them gets it; 422 with the reasons when the filters cannot be used."""
    return _new_view(PREVIEW, BroadcastForm())


def _broadcast_id() -> int:
    return id_from(request.values, "broadcast_id", "broadcast")


@bp.get("/broadcasts/view")
@requires("read")
def broadcast():
    """One broadcast: what it says, to whom, and its progress (polled while it runs)."""
    return render_view(DETAIL_PAGE, PROGRESS, progress=service.progress(_broadcast_id()))


@bp.get("/broadcasts/progress")
@requires("read")
def broadcast_progress():
    """The progress bar's poll: 286 (stop polling) once the broadcast is finished or cancelled.
    One whose notifications are still being stored has its job enqueued again (a no-op while
    it exists), so that a job lost while Redis was down starts after all."""
    progress = service.progress(_broadcast_id())
    if progress.phase in ("queued", "creating"):
        enqueue_broadcast(progress.broadcast.id)
    status = POLL_DONE if not progress.polling and is_htmx() else 200
    return render_view(DETAIL_PAGE, PROGRESS, status, progress=progress)


@bp.post("/broadcasts/cancel")
@requires(SEND)
def broadcast_cancel():
    """Stop the broadcast: nothing more is stored, and its pending messages are skipped
    (audited). 409 once it has finished."""
    broadcast_id = _broadcast_id()
    skipped = service.cancel(broadcast_id, current_actor())
    flash(f"Broadcast cancelled: {skipped:,} messages not yet sent were skipped.", "success")
    if not is_htmx():
        return hx_redirect(url_for("notify_admin.broadcast", broadcast_id=broadcast_id))
    return render_view(DETAIL_PAGE, PROGRESS, progress=service.progress(broadcast_id))
