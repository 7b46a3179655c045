from flask import Blueprint

bp = Blueprint("contributions", __name__, url_prefix="/contributions")

from app.blueprints.contributions import routes  # noqa: E402, F401
