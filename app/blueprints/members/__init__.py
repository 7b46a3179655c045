from flask import Blueprint

bp = Blueprint("members", __name__, url_prefix="/members")

from app.blueprints.members import routes  # noqa: E402, F401
