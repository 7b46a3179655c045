from flask import Blueprint

bp = Blueprint("repayments", __name__, url_prefix="/repayments")

from app.blueprints.repayments import routes  # noqa: E402, F401
