"""The suppression list: contacts no message goes to on a channel (a bounce, a complaint, an
unsubscribe, a number the provider says does not exist, or added by hand), where each came from,
with filters and pages. Everyone may read it; administrators (`manage_settings`) add a contact by
hand or lift one after a confirmation. The rules are app/services/notifications/suppressions.py's."""

from flask import flash, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectChoice, SelectField, StringField, TextAreaField

from app.auth import current_actor, requires
from app.blueprints.api_admin.common import id_from, page_number
from app.blueprints.forms import ServiceErrorsMixin, without_nul
from app.blueprints.notify_admin import bp
from app.htmx import hx_redirect, is_htmx, render_view
from app.services.errors import ValidationFailed
from app.services.notifications import suppressions

PAGE = "notify_admin/suppressions.html"
LIST = "notify_admin/_suppressions.html"
ADD_FORM = "notify_admin/_suppression_form.html"
REMOVE_FORM = "notify_admin/_suppression_remove.html"
PER_PAGE = 25
REASON_LABELS = {
    "stop": "STOP reply",
    "hard_bounce": "hard bounce",
    "complaint": "spam complaint",
    "unsubscribe": "unsubscribed",
    "invalid": "invalid contact",
    "manual": "added by hand",
}


class AddForm(ServiceErrorsMixin, FlaskForm):
    channel = SelectField(
        "Channel",
        choices=[SelectChoice("sms", "SMS"), SelectChoice("email", "Email")],
        filters=[without_nul],
        validate_choice=False,
    )
    contact = StringField(
        "Phone number or email address",
        filters=[without_nul],
        description="For example 0712 345 678, or name@example.co.ke.",
        render_kw={"autocomplete": "off"},
    )
    note = TextAreaField(
        "Why must messages stop?",
        filters=[without_nul],
        description="For example: the member asked by phone on 3 May. It goes in the audit log.",
        render_kw={"rows": 2},
    )


class RemoveForm(ServiceErrorsMixin, FlaskForm):
    suppression_id = HiddenField(filters=[without_nul])
    note = TextAreaField("Note (optional)", filters=[without_nul], render_kw={"rows": 2})


def _list_view(partial: str = LIST, status: int = 200, /, **context):
    """The list page (or `partial` of it) with one page of entries as the filters choose."""
    filters = suppressions.filters_from(
        request.args.get("channel"), request.args.get("reason"), request.args.get("q")
    )
    results = suppressions.list_entries(filters, page_number(), PER_PAGE)
    return render_view(
        PAGE,
        partial,
        status,
        filters=filters,
        results=results,
        origins=suppressions.origins(results.items),
        channels=suppressions.CHANNELS,
        reasons=REASON_LABELS,
        **context,
    )


def _after_change():
    """After a change: htmx swaps the list in and closes the panel; a browser is redirected."""
    if not is_htmx():
        return hx_redirect(url_for("notify_admin.suppressions"))
    response = _list_view(close_panel=True)
    response.headers["HX-Retarget"] = "#suppressions"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


@bp.get("/suppressions", endpoint="suppressions")
@requires("read")
def suppression_list():
    """The suppression list, newest first: by channel, reason and contact, 25 a page."""
    return _list_view()


@bp.route("/suppressions/add", methods=["GET", "POST"])
@requires("manage_settings")
def suppression_add():
    """The form to stop all messages to a contact on one channel (reason "manual", with a note);
    adding is audited; 422 with the reasons next to the fields."""
    form = AddForm()
    if request.method == "GET":
        return _list_view(ADD_FORM, add_form=form)
    try:
        entry = suppressions.add(
            form.channel.data, form.contact.data, form.note.data, current_actor()
        )
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _list_view(ADD_FORM, 422, add_form=form)
    flash(f"No more {entry.channel} messages go to {entry.contact}.", "success")
    return _after_change()


@bp.route("/suppressions/remove", methods=["GET", "POST"])
@requires("manage_settings")
def suppression_remove():
    """The confirmation, then lifting the entry (audited): messages go to the contact again."""
    form = RemoveForm()
    values = request.args if request.method == "GET" else request.form
    entry = suppressions.get(id_from(values, "suppression_id", "suppression list entry"))
    form.suppression_id.data = str(entry.id)
    if request.method == "GET":
        return _list_view(REMOVE_FORM, remove_form=form, entry=entry)
    try:
        lifted = suppressions.remove(entry.id, current_actor(), form.note.data)
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _list_view(REMOVE_FORM, 422, remove_form=form, entry=entry)
    flash(f"{lifted.contact} is off the list: {lifted.channel} messages go to it again.", "success")
    return _after_change()
