"""Helpers shared by the provider blueprints: the simulator, exact JSON answers, and the
request-level failure modes (down, 500, slow, rate_limited)."""

import contextlib
import json
import socket
from collections.abc import Callable

from flask import Response, current_app, request

from sandbox.notify.core import NotifySimulator


def simulator() -> NotifySimulator:
    return current_app.extensions["notify"]


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    """`body` serialised as given (key order kept), `application/json`."""
    return Response(json.dumps(body), status, headers=headers, mimetype="application/json")


def text_response(text: str, status: int, headers: dict | None = None) -> Response:
    return Response(text, status, headers=headers, mimetype="text/plain")


def drop_connection() -> Response:
    """The `down` mode: closes the connection without an answer, so the client sees a connection
    error (as near to "connection refused" as a running server gets). Needs Werkzeug's server
    (`flask run`, the test fixtures); elsewhere it answers 503 with no body."""
    connection = request.environ.get("werkzeug.socket")
    if connection is None:
        return Response("", 503)
    with contextlib.suppress(OSError):  # already gone: the client sees the same thing
        connection.shutdown(socket.SHUT_RDWR)
    return Response("", 503)  # never reaches the client: Werkzeug drops it quietly


def gate(
    provider: str, server_error: Callable[[], Response], rate_limited: Callable[[], Response]
) -> tuple[Response | None, str | None]:
    """Applies the provider's failure mode to this request: an answer to return at once (down,
    500, rate_limited), or None after holding the request (slow) or when none applies; and the
    mode, for the recipient modes (invalid_number, bounce)."""
    failure = simulator().begin_request(provider)
    mode = failure.mode if failure else None
    if mode == "down":
        return drop_connection(), mode
    if mode == "500":
        return server_error(), mode
    if mode == "rate_limited":
        return rate_limited(), mode
    if mode == "slow":
        generation = simulator().generation
        simulator().hold(failure.seconds)
        if simulator().generation != generation:
            return drop_connection(), mode  # reset while held: belongs to a finished test
    return None, mode


def sandbox_base_url() -> str:
    """This sandbox's own base URL, as the client reached it."""
    return request.host_url.rstrip("/")
