"""Integrations > M-Pesa: settings, the transaction monitor, the suspense queue and statement
reconciliation."""

from flask import Blueprint

bp = Blueprint("mpesa_admin", __name__, url_prefix="/integrations/mpesa")

from app.blueprints.mpesa_admin import (  # noqa: E402, F401
    live_status,
    nav,
    overview,
    reconciliation,
    settings_page,
    suspense,
    transactions,
)
