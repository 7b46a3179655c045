"""The M-Pesa page's landing view."""

from app.auth import requires
from app.blueprints.mpesa_admin import bp
from app.htmx import render_view
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import monitor


@bp.get("/")
@requires("read")
def index():
    """Where M-Pesa stands: environment, what each use still lacks in the settings, when the last
    callback came, how many transactions wait (pending, unknown, held...), the last known
    balance, and links to the pages."""
    config = mpesa_config.current()
    return render_view(
        "mpesa_admin/index.html",
        "mpesa_admin/_overview.html",
        tab="overview",
        mpesa=config,
        missing=monitor.missing_settings(config),
        last_callback_at=monitor.last_callback_at(),
        counts=monitor.counts_by_status(),
        balance=monitor.last_balance(),
    )
