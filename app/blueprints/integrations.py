"""The Integrations menu. Each page belongs to a blueprint that a later piece of work fills in;
until then it says honestly that the integration is not configured yet. (The Accounting API and
M-Pesa have their own blueprints: app/blueprints/api_admin, app/blueprints/mpesa_admin.)"""

from flask import Blueprint, render_template

from app.auth import requires

PAGES = (
    (
        "notify_admin",
        "/integrations/notifications",
        "Notifications",
        "SMS and email through Twilio, Africa's Talking, Infobip, SendGrid, Mailgun and Amazon SES.",
    ),
    (
        "logs",
        "/integrations/logs",
        "Logs",
        "One log of every integration's events, with filters, error tracking and export.",
    ),
)


def placeholder_blueprint(name: str, url_prefix: str, title: str, purpose: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.get("/")
    @requires("read")
    def index():
        """Says that this integration is not configured yet, and what it will do."""
        return render_template("integrations/not_configured.html", title=title, purpose=purpose)

    return bp


BLUEPRINTS = [placeholder_blueprint(*page) for page in PAGES]
