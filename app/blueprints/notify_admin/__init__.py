"""Integrations > Notifications: delivery statistics, the notification log, provider settings and
the test-message form, templates, the suppression list and broadcasts."""

from flask import Blueprint

bp = Blueprint("notify_admin", __name__, url_prefix="/integrations/notifications")

from app.blueprints.notify_admin import (  # noqa: E402, F401
    broadcasts,
    log,
    nav,
    overview,
    settings_page,
    suppressions,
    template_editor,
    test_message,
)
