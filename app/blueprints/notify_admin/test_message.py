"""The test message (administrators only): send an SMS or email to any contact through the
failover order or one chosen provider, then watch it provider attempt by provider attempt."""

from flask import flash, request

from app.auth import current_actor, requires
from app.blueprints.api_admin.common import id_from
from app.blueprints.notify_admin import bp
from app.blueprints.notify_admin.message_test_form import MessageTestForm
from app.htmx import is_htmx, render_view
from app.services.errors import ValidationFailed
from app.services.notifications import test_messages
from app.services.notifications.admin_settings import PROVIDER_LABELS


def _result_context(notification_id: int) -> dict:
    progress = test_messages.progress(notification_id)
    return {
        "progress": progress,
        "provider_labels": PROVIDER_LABELS,
        "receipts_expected": test_messages.receipts_expected(progress.notification.provider),
    }


@bp.route("/test-message", methods=["GET", "POST"])
@requires("manage_settings")
def test_message():
    """The test-message form. A valid one is stored and its send enqueued (the worker calls the
    providers, never this request); its result panel then follows the attempts. Invalid input
    comes back as the form with 422 and each message by its field."""
    if request.method == "GET":
        return render_view(
            "notify_admin/test_message.html", "notify_admin/_test_form.html", form=MessageTestForm()
        )
    form = MessageTestForm()
    try:
        row = test_messages.send(
            form.channel.data,
            form.recipient.data,
            form.message.data,
            current_actor(),
            subject=form.subject.data,
            provider=form.provider.data,
        )
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return render_view(
            "notify_admin/test_message.html", "notify_admin/_test_form.html", 422, form=form
        )
    flash(f"Test message #{row.id} queued for {row.recipient_contact}.", "success")
    # The form stays as it was (to send again); the result panel comes out of band for htmx.
    return render_view(
        "notify_admin/test_message.html",
        "notify_admin/_test_form.html",
        form=form,
        result_oob=is_htmx(),
        **_result_context(row.id),
    )


@bp.get("/test-message/status")
@requires("manage_settings")
def test_message_status():
    """The status of the test message `notification_id` (query string), each provider attempt
    (provider, outcome, message id, error, duration) and receipt. Polled every second while it
    can still change; 286 once it is final (delivered, failed, skipped) or has not changed for
    two minutes, which stops the polling."""
    context = _result_context(id_from(request.args, "notification_id", "test message"))
    response = render_view(
        "notify_admin/test_message.html",
        "notify_admin/_test_result.html",
        form=MessageTestForm(formdata=None),
        **context,
    )
    if is_htmx() and context["progress"].final:
        response.status_code = 286
    return response
