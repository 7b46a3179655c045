"""Integrations > Accounting API: API keys, webhook endpoints and their deliveries, and the API
request log with per-key usage. Admin and accountant only (`manage_api_keys`), reads included."""

from flask import Blueprint

bp = Blueprint("api_admin", __name__, url_prefix="/integrations/accounting-api")

from app.blueprints.api_admin import keys, requests_log, webhooks  # noqa: E402, F401
