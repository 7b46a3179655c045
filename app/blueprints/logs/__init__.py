"""Integrations > Logs: the integration log browser with its CSV export, error tracking, the
performance charts and the failed-jobs registry."""

from flask import Blueprint

bp = Blueprint("logs", __name__, url_prefix="/integrations/logs")

from app.blueprints.logs import (  # noqa: E402, F401
    browser,
    errors,
    failed_jobs,
    nav,
    performance,
)
