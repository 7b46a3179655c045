"""Error tracking: the integration log's errors grouped by integration and kind."""

from flask import request

from app.auth import requires
from app.blueprints.logs import bp
from app.blueprints.logs.forms import INTEGRATION_LABELS, ErrorsForm
from app.clock import NAIROBI
from app.htmx import render_view
from app.models.base import utcnow
from app.services import error_tracking


def _log_filters(group, since_day) -> dict:
    """The log browser's query for one group's entries over the period."""
    values = {"integration": group.integration, "level": group.level, "date_from": since_day}
    if group.error_kind:
        values["error_kind"] = group.error_kind
    return values


@bp.get("/errors")
@requires("read")
def errors():
    """Errors (and warnings, if asked) of the last 24 hours, 7 or 30 days grouped by integration
    and kind: how many, first and last seen, the latest message, and a link to the entries.
    A bad period is shown (422)."""
    form = ErrorsForm(formdata=request.args)
    context = {"form": form, "integration_labels": INTEGRATION_LABELS, "groups": None}
    if not form.validate():
        return render_view("logs/errors.html", "logs/_errors.html", 422, **context)
    now = utcnow()
    groups = error_tracking.groups(form.period.data, form.warnings.data, now)
    since_day = (now - error_tracking.PERIODS[form.period.data]).astimezone(NAIROBI).date()
    return render_view(
        "logs/errors.html",
        "logs/_errors.html",
        **{**context, "groups": groups},
        links=[_log_filters(group, since_day.isoformat()) for group in groups],
        period_label=error_tracking.PERIOD_LABELS[form.period.data],
        query=form.query_values(),
        total=sum(group.count for group in groups),
    )
