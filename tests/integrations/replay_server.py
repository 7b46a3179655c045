"""A loopback HTTP server that answers from a script and records what it was sent.

It exists for what the Daraja sandbox cannot do on purpose: replay Safaricom's official answer
bodies byte for byte, stay silent after reading a request (read timeout), drop the connection, or
answer like a broken gateway. The exchanges are real HTTP over a socket, not mocked.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    hang: bool = False  # read the request, never answer
    drop: bool = False  # read the request, close the connection without a word
    hook: Callable[[], None] | None = None  # runs before the answer (another process acting)
    headers: dict[str, str] = field(default_factory=dict)  # extra answer headers


@dataclass
class Received:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class ReplayServer:
    """Scripted answers per path: each request takes the next reply; the last one repeats."""

    routes: dict[str, list[Reply]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def reply(self, path: str, status: int = 200, body=None, **options) -> None:
        raw = (
            body
            if isinstance(body, bytes)
            else json.dumps(body).encode()
            if body is not None
            else b""
        )
        self.routes.setdefault(path, []).append(Reply(status, raw, **options))

    def reply_raw(self, path: str, text: str, status: int = 200) -> None:
        """Answers with the exact text of a sample file."""
        self.reply(path, status, text.encode())

    def requests_to(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    def _next(self, path: str) -> Reply:
        queue = self.routes.get(path)
        if not queue:
            body = {
                "requestId": "replay",
                "errorCode": "404.001.01",
                "errorMessage": "no reply scripted",
            }
            return Reply(404, json.dumps(body).encode())
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                server.received.append(
                    Received(self.command, url.path, parse_qs(url.query), dict(self.headers), body)
                )
                reply = server._next(url.path)
                if reply.hook:
                    reply.hook()
                if reply.hang:
                    server.release.wait(30)
                    self.close_connection = True
                    return
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
