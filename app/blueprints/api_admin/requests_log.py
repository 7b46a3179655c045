"""The API request log browser and each key's usage: requests per day, error rate, p95 latency."""

from flask import request

from app.auth import requires
from app.blueprints.api_admin import bp
from app.blueprints.api_admin.common import id_from, page_number
from app.blueprints.api_admin.forms import USAGE_DAYS, LogFilterForm
from app.htmx import render_view
from app.services import api_keys, api_log
from app.services.errors import ValidationFailed

DEFAULT_USAGE_DAYS = 30


def usage_context(key, days: int = DEFAULT_USAGE_DAYS) -> dict:
    """What the usage panel shows: the figures, and the chart's data for the browser."""
    usage = api_log.key_usage(key.id, days)
    chart = {
        "labels": [d.day.isoformat() for d in usage.days],
        "requests": [d.requests for d in usage.days],
        "errors": [d.errors for d in usage.days],
    }
    return {"key": key, "usage": usage, "days": days, "chart": chart, "day_choices": USAGE_DAYS}


@bp.get("/log")
@requires("manage_api_keys")
def request_log():
    """API requests, newest first, filtered by key, status or status class, path and dates;
    bad filters are shown (422). With one key chosen, its usage is shown too."""
    keys = [row.key for row in api_keys.list_keys()]
    form = LogFilterForm(keys, formdata=request.args)
    context = {"form": form, "results": None, "keys": {k.id: k for k in keys}, "tab": "log"}
    status = 422
    if form.validate():
        try:
            context["results"] = api_log.search(
                key_id=form.key_id.data,
                status=form.status.data,
                path=form.path.data,
                date_from=form.date_from.data,
                date_to=form.date_to.data,
                page=page_number(),
                per_page=form.per_page.data,
            )
            status = 200
        except ValidationFailed as exc:
            form.show_errors(exc.errors)
    key_text = form.key_id.data or ""
    chosen = (
        context["keys"].get(int(key_text)) if key_text.isascii() and key_text.isdigit() else None
    )
    if chosen is not None and context["results"] is not None:
        context.update(usage_context(chosen))
    return render_view(
        "api_admin/log.html",
        "api_admin/_log_results.html",
        status,
        filters=form.filters(),
        **context,
    )


@bp.get("/usage")
@requires("manage_api_keys")
def key_usage():
    """One key's requests per day over the last 7, 30 or 90 days as a chart, with its error rate
    and p95 latency."""
    key = api_keys.get_key(id_from(request.args, "key_id", "API key"))
    days = request.args.get("days", str(DEFAULT_USAGE_DAYS))
    days = int(days) if days in USAGE_DAYS else DEFAULT_USAGE_DAYS
    return render_view(
        "api_admin/usage.html", "api_admin/_usage.html", tab="log", **usage_context(key, days)
    )
