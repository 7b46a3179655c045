"""Operations endpoints for machines: /healthz and /readyz (load balancers, orchestrators) and
/metrics (Prometheus). No sign-in, no CSRF, no rate limit; /metrics has its own access rule."""

from flask import Blueprint

from app.extensions import csrf

bp = Blueprint("ops", __name__)
csrf.exempt(bp)

from app.blueprints.ops import health, metrics  # noqa: E402, F401
