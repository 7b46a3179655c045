"""The integration log browser: entries newest first with filters and pages by key, one entry
with everything it holds and links to the records it names, and the filtered list as CSV."""

import csv
import io
import json

from flask import Response, current_app, request, stream_with_context, url_for

from app.auth import can, requires
from app.blueprints.api.render import csv_cell
from app.blueprints.api_admin.common import id_from
from app.blueprints.logs import bp
from app.blueprints.logs.forms import INTEGRATION_LABELS, LogFilterForm
from app.clock import NAIROBI
from app.htmx import render_view
from app.services import failed_jobs, log_browser
from app.services.errors import NotFound

PER_PAGE = 50
EXPORT_COLUMNS = (
    "id",
    "created_at",
    "integration",
    "level",
    "event",
    "message",
    "error_kind",
    "request_id",
    "job_id",
    "mpesa_transaction_id",
    "notification_id",
    "webhook_delivery_id",
    "api_key_id",
    "member_id",
    "context",
)


def _filtered_view(status: int = 200, /, **context):
    return render_view("logs/index.html", "logs/_entries.html", status, **context)


@bp.get("/")
@requires("read")
def index():
    """Integration log entries, newest first, filtered by integration, level, Nairobi dates,
    text, event, error kind and any correlation id; pages by key (Newer / Older), so a deep
    page is as fast as the first. Bad filters are shown (422) instead of the list."""
    form = LogFilterForm(formdata=request.args)
    context = {
        "form": form,
        "filters": form.query_values(),
        "integration_labels": INTEGRATION_LABELS,
    }
    if not form.validate():
        return _filtered_view(422, results=None, **context)
    results = log_browser.page(form.checked(), PER_PAGE, **form.positions())
    return _filtered_view(results=results, **context)


def _link(endpoint: str, **values) -> str | None:
    """The URL of `endpoint` when it exists and the person's role may open it, else None."""
    view = current_app.view_functions.get(endpoint)
    permission = getattr(view, "required_permission", None)
    if view is None or (permission and not can(permission)):
        return None
    return url_for(endpoint, **values)


def _record_links(row) -> list[dict]:
    """The records the entry names: label, id, and the page to open it (None: the role may not
    open it, or there is none)."""
    related = log_browser.related(row)
    links = []
    if row.mpesa_transaction_id:
        txn = related.transaction
        links.append({
            "label": "M-Pesa transaction",
            "text": f"#{row.mpesa_transaction_id}"
            + (f" · {txn.mpesa_receipt_number}" if txn and txn.mpesa_receipt_number else ""),
            "url": _link("mpesa_admin.transaction", transaction_id=row.mpesa_transaction_id),
        })  # fmt: skip
    if row.notification_id:
        links.append({
            "label": "Notification",
            "text": f"#{row.notification_id}",
            "url": _link("notify_admin.log_notification", notification_id=row.notification_id),
        })  # fmt: skip
    if row.webhook_delivery_id:
        links.append({
            "label": "Webhook delivery",
            "text": f"#{row.webhook_delivery_id}",
            "url": _link("api_admin.delivery_attempts", delivery_id=row.webhook_delivery_id),
        })  # fmt: skip
    if row.api_key_id:
        links.append({
            "label": "API key",
            "text": f"#{row.api_key_id}",
            "url": _link("api_admin.key_usage", key_id=row.api_key_id),
        })  # fmt: skip
    if row.member_id:
        member = related.member
        links.append({
            "label": "Member",
            "text": f"{member.member_number} · {member.full_name}" if member
            else f"#{row.member_id}",
            "url": _link("members.detail", member_id=row.member_id) if member else None,
        })  # fmt: skip
    return links


@bp.get("/entry")
@requires("read")
def entry():
    """One entry: every field, its context as indented JSON (escaped, never run), links to the
    records it names that the person may open, and the other entries of the same request or
    job."""
    row = log_browser.get_entry(id_from(request.args, "entry_id", "log entry"))
    if row is None:
        raise NotFound("There is no such log entry (it may have been pruned).")
    return render_view(
        "logs/entry.html",
        "logs/_entry.html",
        row=row,
        context_json=json.dumps(row.context or {}, indent=2, sort_keys=True, ensure_ascii=False),
        records=_record_links(row),
        same_request=log_browser.neighbours(row, "request_id"),
        same_job=log_browser.neighbours(row, "job_id"),
        failed_job_url=_failed_job_link(row),
        integration_labels=INTEGRATION_LABELS,
    )


def _failed_job_link(row) -> str | None:
    """The failed-job page of the job that wrote the entry, while that job is still among the
    failed ones and the person may open it."""
    queue = (row.context or {}).get("queue")
    if not (row.job_id and isinstance(queue, str) and can("manage_settings")):
        return None
    if not failed_jobs.is_failed(queue, row.job_id):
        return None
    return _link("logs.failed_job", queue=queue, job_id=row.job_id)


def _csv_values(row) -> list[str]:
    values = [getattr(row, name) for name in EXPORT_COLUMNS[:-1]]
    values[1] = row.created_at.astimezone(NAIROBI)
    values.append(json.dumps(row.context or {}, sort_keys=True, ensure_ascii=False))
    return [csv_cell(value) for value in values]


@bp.get("/export.csv")
@requires("read")
def export():
    """The entries the filters match, newest first, as CSV streamed in batches (at most
    EXPORT_LIMIT rows); cells a spreadsheet would run as a formula start with an apostrophe.
    Bad filters: the filter errors (422), no file."""
    form = LogFilterForm(formdata=request.args)
    if not form.validate():
        return _filtered_view(
            422, results=None, form=form, filters=form.query_values(),
            integration_labels=INTEGRATION_LABELS,
        )  # fmt: skip
    filters = form.checked()

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        for row in log_browser.export_rows(filters):
            writer.writerow(_csv_values(row))
            if buffer.tell() > 16_384:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="integration-log.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
