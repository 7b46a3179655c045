"""/metrics for Prometheus, and the per-request API metrics.

Access: with DAYSTAR_METRICS_TOKEN set, the scraper must send `Authorization: Bearer <token>`
(else 401); with DAYSTAR_METRICS_ALLOWED_IPS set, it must come from one of those networks (else
403); with both set, both apply. With neither, /metrics is switched off: 404, as for any unknown
address (nothing about the service is revealed, and a scrape of a misconfigured server fails
plainly), except from loopback when METRICS_OPEN_ON_LOOPBACK is set (development)."""

import hashlib
import hmac
import ipaddress
import logging
import os
import time
from functools import lru_cache

from flask import Response, abort, current_app, g, request

from app.blueprints.api.errors import is_api_request
from app.blueprints.ops import bp
from app.services import metrics

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def allowed_networks(setting: str | None) -> tuple:
    """The allow-list as networks; ValueError naming a bad entry."""
    networks = []
    for item in (setting or "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"DAYSTAR_METRICS_ALLOWED_IPS: {item!r} is not an IP address or CIDR range"
            ) from None
    return tuple(networks)


@bp.record_once
def _check_settings(state) -> None:
    """A bad allow-list stops the app at start-up rather than at the first scrape; the
    multi-process directory is made if missing (prometheus_client fails without it)."""
    from config import ConfigError

    try:
        allowed_networks(state.app.config.get("DAYSTAR_METRICS_ALLOWED_IPS"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if metrics.multiprocess_mode():
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def _address(ip: str | None):
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _token_matches(expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    # Digests of equal length: the comparison takes the same time whatever was sent.
    return hmac.compare_digest(
        hashlib.sha256(given.strip().encode()).digest(),
        hashlib.sha256(expected.encode()).digest(),
    )


def _refusal() -> Response | None:
    """Why this caller may not read /metrics (a response), or None when it may."""
    config = current_app.config
    token = (config.get("DAYSTAR_METRICS_TOKEN") or "").strip()
    try:
        networks = allowed_networks(config.get("DAYSTAR_METRICS_ALLOWED_IPS"))
    except ValueError as exc:
        log.error("%s; refusing every scrape", exc)
        return _plain(403, "Forbidden: the metrics allow-list is misconfigured.")
    address = _address(request.remote_addr)
    if not token and not networks:
        if config.get("METRICS_OPEN_ON_LOOPBACK") and address is not None and address.is_loopback:
            return None
        abort(404)
    if networks and (address is None or not any(address in net for net in networks)):
        return _plain(403, f"Forbidden: {request.remote_addr} may not read the metrics.")
    if token and not _token_matches(token):
        response = _plain(401, "Unauthorized: send 'Authorization: Bearer <metrics token>'.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="daystar-metrics"'
        return response
    return None


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


@bp.get("/metrics")
def prometheus_metrics():
    """The metrics in Prometheus text format, to a caller the access rule admits."""
    refused = _refusal()
    if refused is not None:
        return refused
    response = Response(metrics.scrape(), content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_app_request
def _count_api_request(response):
    """Accounting API requests only: count it by endpoint, method and status, and time it."""
    if is_api_request():
        started = g.get("api_started") or g.get("request_started") or time.perf_counter()
        metrics.observe_api_request(
            request.endpoint, request.method, response.status_code, time.perf_counter() - started
        )
    return response
