"""/healthz: the process answers. /readyz: the database, Redis and an RQ worker are there."""

from flask import jsonify

from app.blueprints.ops import bp
from app.services import health


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    """200 {"status": "ok"} whenever the process can answer; touches neither database nor Redis."""
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz():
    """200 when the database, Redis and at least one RQ worker are all there, else 503; the body
    names each check with ok and, when it failed, a short error."""
    ready, checks = health.readiness()
    response = jsonify(status="ok" if ready else "unavailable", **checks)
    response.status_code = 200 if ready else 503
    return _no_store(response)
