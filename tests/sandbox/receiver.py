"""A callback receiver for sandbox tests: a real HTTP server on 127.0.0.1 (port 0) in a thread
that records every POST and answers each path with the JSON the test sets."""

import json
import threading
import time
from dataclasses import dataclass

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict
    raw: bytes

    @property
    def json(self):
        return json.loads(self.raw)


class CallbackReceiver:
    def __init__(self):
        self.received: list[Received] = []
        self.answers: dict[str, tuple[int, object]] = {}
        self.delays: dict[str, float] = {}
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def answer(self, path: str, body, status: int = 200, delay: float = 0.0) -> None:
        """What the receiver answers on `path` (a JSON-able body, or bytes as they are)."""
        self.answers["/" + path.lstrip("/")] = (status, body)
        self.delays["/" + path.lstrip("/")] = delay

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == "/" + path.lstrip("/")]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.on(path)) >= count:
                return self.on(path)
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.on(path))} callbacks, expected {count}")

    @Request.application
    def _app(self, request: Request) -> Response:
        self.received.append(Received(request.path, dict(request.headers), request.get_data()))
        time.sleep(self.delays.get(request.path, 0.0))
        status, body = self.answers.get(request.path, (200, ACCEPTED))
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Response(data, status=status, mimetype="application/json")

    def __enter__(self) -> "CallbackReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
