"""Read endpoints of the accounting API (placeholder: being built)."""

from flask import jsonify

from app.blueprints.api import bp
from app.blueprints.api.auth import require_permission


@bp.get("/loans")
@require_permission("read_loans")
def list_loans():
    """Placeholder."""
    return jsonify(loans=[])
