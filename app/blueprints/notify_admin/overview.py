"""The Notifications page's landing view: delivery statistics for a period, each provider's
circuit state, and the messages still waiting."""

from flask import request

from app.auth import requires
from app.blueprints.notify_admin import bp
from app.htmx import render_view
from app.services.errors import ValidationFailed
from app.services.notifications import stats


def _chart_data(figures: stats.DeliveryStats) -> dict:
    """What app.js draws: delivered and failed per hour or day, and a stacked bar per provider."""
    fmt = "%H:%M" if figures.unit == "hour" else "%Y-%m-%d"
    rows = figures.rows
    return {
        "trend": {
            "type": "line",
            "labels": [b.strftime(fmt) for b in figures.buckets],
            "datasets": [
                {"label": "Delivered", "data": figures.series["delivered"], "color": "#2e7d32"},
                {"label": "Failed", "data": figures.series["failed"], "color": "#c62828"},
            ],
        },
        "providers": {
            "type": "bar",
            "stacked": True,
            "labels": [f"{r.label} ({'SMS' if r.channel == 'sms' else 'email'})" for r in rows],
            "datasets": [
                {"label": label, "data": [getattr(r.counts, name) for r in rows], "color": colour}
                for name, label, colour in (
                    ("delivered", "Delivered", "#2e7d32"),
                    ("sent", "Sent, no receipt yet", "#1e88e5"),
                    ("failed", "Failed", "#c62828"),
                    ("skipped", "Skipped", "#757575"),
                    ("waiting", "Waiting", "#f9a825"),
                )
            ],
        },
    }  # fmt: skip


@bp.get("/")
@requires("read")
def index():
    """Where notifications stand: sent, delivered, failed, skipped and the delivery rate per
    provider and channel over 24 hours, 7 or 30 days (table and charts), each provider's place in
    the failover order and circuit state, and what is waiting. A bad period is a 400."""
    try:
        figures = stats.delivery_stats(request.args.get("period"))
    except ValidationFailed as exc:
        return render_view(
            "notify_admin/index.html",
            "notify_admin/_overview.html",
            400,
            error=exc.errors["period"],
            period=stats.DEFAULT_PERIOD,
            periods=stats.PERIOD_LABELS,
            figures=None,
        )
    return render_view(
        "notify_admin/index.html",
        "notify_admin/_overview.html",
        figures=figures,
        period=figures.period,
        periods=stats.PERIOD_LABELS,
        chart=_chart_data(figures),
        waiting=stats.waiting_counts(),
        waiting_labels=stats.WAITING_KINDS,
        provider_states=stats.provider_states(),
    )
