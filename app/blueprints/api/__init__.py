"""The accounting API, served at /api/accounting/v1/ and, unchanged, at the previous system's
/wp-json/daystar-accounting/v1/ so that existing integrations keep working."""

from flask import Blueprint

from app.extensions import csrf

BASE_PATH = "/api/accounting/v1"
COMPAT_PATH = "/wp-json/daystar-accounting/v1"

bp = Blueprint("api", __name__)
csrf.exempt(bp)

from app.blueprints.api import resources  # noqa: E402, F401


def register_api(app) -> None:
    app.register_blueprint(bp, url_prefix=BASE_PATH)
    app.register_blueprint(bp, url_prefix=COMPAT_PATH, name="api_compat")
