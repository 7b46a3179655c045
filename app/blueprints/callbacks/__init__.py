"""Callbacks from outside: M-Pesa's results and the SMS/email providers' delivery reports. No
session and no CSRF: each route authenticates its sender otherwise (a secret path segment, the
provider's signature, optionally Safaricom's addresses)."""

import hmac
import logging
from time import perf_counter

from flask import Blueprint, abort, g, jsonify, request

from app.extensions import csrf, limiter
from app.integrations.notify.base import WebhookRejected
from app.models import CallbackKind, PerformanceSeries
from app.services import performance
from app.services.mpesa import callbacks
from app.services.mpesa import config as mpesa_config
from app.services.notifications import webhooks

log = logging.getLogger(__name__)

bp = Blueprint("callbacks", __name__)
csrf.exempt(bp)
limiter.exempt(bp)

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@bp.before_request
def _start_clock() -> None:
    g.callback_started = perf_counter()


@bp.after_request
def _time_acknowledgement(response):
    """An M-Pesa callback's time from request to answer goes to the Performance page, recorded
    after the answer has been sent (one Redis call, skipped while Redis is down)."""
    kind = g.get("callback_kind")
    if kind is not None:
        performance.record_when_sent(
            response, PerformanceSeries.CALLBACK_ACK, kind, g.callback_started
        )
    return response


def _check_secret(settings: mpesa_config.MpesaSettings, secret: str) -> None:
    expected = settings.callback_secret
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        abort(403)


def _check_source(settings: mpesa_config.MpesaSettings) -> None:
    """The optional allow-list of Safaricom's addresses: off, log-only, or enforced (403)."""
    if settings.callback_ip_mode == "off" or settings.source_allowed(request.remote_addr):
        return
    log.warning("M-Pesa callback to %s from %s, which is not on the allow-list (%s)",
                request.path.split("/")[-1], request.remote_addr, settings.callback_ip_mode)  # fmt: skip
    if settings.callback_ip_mode == "enforce":
        abort(403)


def _store(kind: str):
    g.callback_kind = kind  # timed by _time_acknowledgement
    raw = request.get_data(cache=False)
    if kind == CallbackKind.C2B_VALIDATION:
        return jsonify(callbacks.validate_paybill(raw, request.headers, request.remote_addr))
    callback, errors = callbacks.receive(kind, raw, request.headers, request.remote_addr)
    if errors:
        detail = "; ".join(f"{field} {message}" for field, message in errors.items())
        return jsonify({"ResultCode": 1, "ResultDesc": f"Rejected: {detail}"[:500]}), 400
    return jsonify(ACCEPTED)


@bp.post("/callbacks/mpesa/<secret>/<path:kind>")
# The same routes without the word "mpesa", which Daraja refuses in C2B URLs (mpesa.md §7.1).
@bp.post("/callbacks/daraja/<secret>/<path:kind>")
def mpesa(secret: str, kind: str):
    """Store an M-Pesa callback before anything reads it, then answer in Daraja's format: 200
    "Accepted" at once (processing follows in a job), 400 naming what is wrong with an unreadable
    body (kept and flagged), 403 for a wrong secret or a refused address (nothing stored)."""
    settings = mpesa_config.for_callbacks()
    _check_secret(settings, secret)
    callback_kind = callbacks.PATHS.get(kind)
    if callback_kind is None:
        abort(404)
    _check_source(settings)
    return _store(callback_kind)


@bp.post("/wp-json/daystar/v1/mpesa/callback")
def legacy_stk():
    """The previous system's STK callback URL, for pushes it sent before the switch. It has no
    secret: like every callback, it credits only a request of ours whose ids, amount and phone
    match (and, with verify-before-credit, what STK Query confirms)."""
    _check_source(mpesa_config.for_callbacks())
    return _store(CallbackKind.STK)


@bp.post("/callbacks/notify/<provider>/status")
@bp.post("/callbacks/notify/<provider>/events")
@bp.post("/callbacks/notify/<provider>/<secret>/<any(status, optout):kind>")
def notify(provider: str, secret: str | None = None, kind: str = "status"):
    """A provider's delivery report: verified the provider's way (403 and nothing stored when it
    fails), stored once, applied forward only; 400 for a verified body that is no report."""
    incoming = webhooks.Incoming(
        path=request.path,
        query_string=request.query_string,
        headers=request.headers,
        form=request.form,
        args=request.args,
        raw_body=request.get_data(cache=True),
        path_secret=secret,
    )
    try:
        stored = webhooks.accept(provider, incoming)
    except LookupError:
        abort(404)
    except WebhookRejected as exc:
        log.warning("%s webhook refused: %s", provider, exc)
        abort(403)
    except ValueError as exc:
        return jsonify({"error": str(exc)[:300]}), 400
    return jsonify({"stored": stored})
