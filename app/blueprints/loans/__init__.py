from flask import Blueprint

bp = Blueprint("loans", __name__, url_prefix="/loans")

from app.blueprints.loans import routes  # noqa: E402, F401
