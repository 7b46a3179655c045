"""Statement reconciliation pages: upload an org-portal statement, watch the run's progress, read
the report by category, download it as CSV, and send unmatched receipts to the suspense queue.
Admin and accountant only (`reconciliation`)."""

from flask import Response, flash, request, stream_with_context, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField

from app.auth import current_actor, requires
from app.blueprints.api_admin.common import id_from, page_number
from app.blueprints.forms import ServiceErrorsMixin
from app.blueprints.mpesa_admin import bp
from app.htmx import hx_redirect, is_htmx, render_view
from app.jobs.mpesa_reconcile import enqueue_reconciliation
from app.models import ReconciliationStatus
from app.services.errors import IllegalTransition, ValidationFailed
from app.services.mpesa import reconciliation as service
from app.services.pagination import paginate

PAGE = "mpesa_admin/reconciliation.html"
REPORT = "mpesa_admin/report.html"
RUNS_PER_PAGE = 20
POLL_DONE = 286  # htmx stops polling on this status


class UploadForm(ServiceErrorsMixin, FlaskForm):
    statement = FileField(
        "Statement (CSV)",
        description="The organisation portal's export, as CSV: metadata lines first are fine.",
        render_kw={"accept": ".csv,text/csv"},
    )


def _index_view(partial: str, status: int = 200, /, **context):
    """The reconciliation page (or `partial` of it): the upload form and the past runs."""
    context.setdefault("form", UploadForm())
    context.setdefault(
        "runs", paginate(service.reconciliations_query(), page_number(), RUNS_PER_PAGE)
    )
    return render_view(PAGE, partial, status, **context)


@bp.get("/reconciliation")
@requires("reconciliation")
def reconciliation_index():
    """The statement upload form and every reconciliation, newest first."""
    return _index_view("mpesa_admin/_reconciliations.html")


@bp.post("/reconciliation")
@requires("reconciliation")
def reconciliation_upload():
    """Store an uploaded statement and start its reconciliation; a file that is not a
    statement gets the form again (422) saying what is wrong, with the line."""
    form = UploadForm()
    upload = request.files.get("statement")
    try:
        data = upload.stream.read(service.MAX_STATEMENT_BYTES + 1) if upload else b""
        text = service.decode_upload(data)
        started = service.start(upload.filename, text, current_actor())
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _index_view("mpesa_admin/_upload_form.html", 422, form=form)
    flash(
        f"Statement {started.filename} uploaded: {started.rows_total:,} rows to check.", "success"
    )
    return hx_redirect(url_for("mpesa_admin.reconciliation_report", reconciliation_id=started.id))


def _reconciliation():
    return service.get_reconciliation(id_from(request.args, "reconciliation_id", "reconciliation"))


def _report_view(reconciliation, partial: str, status: int = 200, /, **context):
    """The report page (or `partial` of it); the items of one category once the run is done."""
    if reconciliation.status == ReconciliationStatus.FINISHED:
        category = service.check_category(
            request.values.get("category") or service.default_category(reconciliation)
        )
        context.setdefault("category", category)
        context.setdefault("totals", service.totals(reconciliation))
        context.setdefault("items", service.items_page(reconciliation.id, category, page_number()))
    return render_view(
        REPORT,
        partial,
        status,
        reconciliation=reconciliation,
        categories=service.CATEGORIES,
        labels=service.CATEGORY_LABELS,
        **context,
    )


@bp.get("/reconciliation/report")
@requires("reconciliation")
def reconciliation_report():
    """One reconciliation: its progress while it runs, then the counts per category and the
    items of one category."""
    return _report_view(_reconciliation(), "mpesa_admin/_status.html")


@bp.get("/reconciliation/progress")
@requires("reconciliation")
def reconciliation_progress():
    """The run's status for the progress bar's poll: 286 (stop polling) with the report once
    the run has finished or failed. A run still queued is queued again (a no-op if its job
    exists), so that a job lost while Redis was down starts after all."""
    reconciliation = _reconciliation()
    done = reconciliation.status in (ReconciliationStatus.FINISHED, ReconciliationStatus.FAILED)
    if reconciliation.status == ReconciliationStatus.QUEUED:
        enqueue_reconciliation(reconciliation.id)
    status = POLL_DONE if done and is_htmx() else 200
    return _report_view(reconciliation, "mpesa_admin/_status.html", status)


@bp.get("/reconciliation/items")
@requires("reconciliation")
def reconciliation_items():
    """One page of the report's items of one category."""
    reconciliation = _reconciliation()
    if reconciliation.status != ReconciliationStatus.FINISHED:
        raise IllegalTransition("The reconciliation has not finished yet.")
    return _report_view(reconciliation, "mpesa_admin/_items.html")


@bp.get("/reconciliation/export")
@requires("reconciliation")
def reconciliation_export():
    """The whole report as CSV, streamed (a finished run only)."""
    reconciliation = _reconciliation()
    if reconciliation.status != ReconciliationStatus.FINISHED:
        raise IllegalTransition("The reconciliation has not finished yet: its report is not ready.")
    response = Response(
        stream_with_context(service.export_csv(reconciliation.id)), mimetype="text/csv"
    )
    name = f"mpesa-reconciliation-{reconciliation.id}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.post("/reconciliation/suspense")
@requires("reconciliation")
def reconciliation_send_to_suspense():
    """Put an unmatched statement receipt (money in) into the suspense queue; again is a no-op."""
    item = service.get_item(id_from(request.form, "item_id", "report item"))
    held = service.send_to_suspense(item.id, current_actor())
    flash(f"Receipt {held.receipt} is in the suspense queue (item {held.id}).", "success")
    reconciliation = service.get_reconciliation(item.reconciliation_id)
    return _report_view(reconciliation, "mpesa_admin/_items.html")
