"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 (port 0) in a thread, recording
each request and answering with the status the test sets."""

import threading
from dataclasses import dataclass

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict
    body: bytes


class Receiver:
    def __init__(self):
        self.received: list[Received] = []
        self.status = 204
        self.response_body = b""
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/ledger"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @Request.application
    def _app(self, request: Request) -> Response:
        self.received.append(
            Received(request.method, request.path, dict(request.headers), request.get_data())
        )
        return Response(self.response_body, status=self.status, mimetype="text/plain")

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
