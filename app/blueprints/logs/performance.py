"""Logs > Performance: API latency, M-Pesa callback acknowledgement, job durations and
notification delivery rates over 24 hours, 7 or 30 days, drawn from the five-minute rollups."""

from flask import request

from app.auth import requires
from app.blueprints.logs import bp
from app.htmx import is_htmx, render_partial, render_view
from app.models import PerformanceSeries
from app.services import performance_charts as charts
from app.services.errors import ValidationFailed

PAGE = "logs/performance.html"
PANEL = "logs/_performance.html"
SERIES_PARTIAL = "logs/_performance_series.html"
ACK_TARGET_MS = 100  # issue 4: p99 acknowledgement under 100 ms
PERCENTILE_COLOURS = (("p50_ms", "p50", "#2e7d32"), ("p95_ms", "p95", "#f9a825"),
                      ("p99_ms", "p99", "#c62828"))  # fmt: skip
LABEL_FORMATS = {"24h": "%H:00", "7d": "%a %d %b %H:00", "30d": "%d %b"}


def _chart(report: charts.Report, item: charts.SeriesReport) -> dict:
    """What app.js's seriesChart draws: the percentiles per bucket (a gap where nothing ran) or,
    for notifications, the delivery rate; plus, for notifications, delivered and failed counts."""
    labels = [bucket.strftime(LABEL_FORMATS[report.period]) for bucket in report.buckets]
    if item.series == PerformanceSeries.NOTIFICATION_DELIVERY:
        return {
            "main": {
                "type": "line",
                "labels": labels,
                "datasets": [{"label": "Delivery rate (%)", "color": "#2e7d32",
                              "data": [p.delivery_rate for p in item.points]}],
            },
            "counts": {
                "type": "bar",
                "labels": labels,
                "datasets": [
                    {"label": "Accepted by a provider", "color": "#1e88e5",
                     "data": [p.count for p in item.points]},
                    {"label": "Delivered", "color": "#2e7d32",
                     "data": [p.delivered for p in item.points]},
                    {"label": "Failed", "color": "#c62828", "data": [p.failed for p in item.points]},
                ],
            },
        }  # fmt: skip
    datasets = [
        {"label": f"{name} (ms)", "color": colour, "data": [getattr(p, attr) for p in item.points]}
        for attr, name, colour in PERCENTILE_COLOURS
    ]
    if item.series == PerformanceSeries.CALLBACK_ACK:
        datasets.append({"label": f"Target: p99 under {ACK_TARGET_MS} ms", "color": "#757575",
                         "data": [ACK_TARGET_MS] * len(labels)})  # fmt: skip
    return {"main": {"type": "line", "labels": labels, "datasets": datasets}}


def _context(report: charts.Report, keys: dict) -> dict:
    return {
        "report": report,
        "period": report.period,
        "periods": charts.PERIOD_LABELS,
        "charts": {series: _chart(report, item) for series, item in report.series.items()},
        "key_labels": {
            series: charts.key_label(series, key) if key else None for series, key in keys.items()
        },
        "ack_target_ms": ACK_TARGET_MS,
        "errors": {},
    }


@bp.get("/performance")
@requires("read")
def performance():
    """The four series over the period, each filtered by its own key (endpoint, callback kind,
    job, channel/provider): a chart per Nairobi hour or day and the figures per key, read from
    the rollups only. An htmx request gets the panel, or with `part` only that series' section;
    bad filters are shown (422)."""
    part = request.args.get("part")
    part = part if is_htmx() and part in charts.FILTERS else None
    try:
        period = charts.check_period(request.args.get("period"))
        keys = charts.check_keys(request.args)
    except ValidationFailed as exc:
        context = {"report": None, "errors": exc.errors, "periods": charts.PERIOD_LABELS,
                   "period": charts.DEFAULT_PERIOD, "ack_target_ms": ACK_TARGET_MS}  # fmt: skip
        if part:
            return render_partial(SERIES_PARTIAL, 422, series=part, **context)
        return render_view(PAGE, PANEL, 422, **context)
    report = charts.report(period, keys, only=part)
    context = _context(report, keys)
    if part:
        return render_partial(SERIES_PARTIAL, series=part, **context)
    return render_view(PAGE, PANEL, **context)
