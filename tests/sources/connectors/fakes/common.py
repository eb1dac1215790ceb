"""A real HTTP server on 127.0.0.1 (random port) in a thread, with fault injection.

Subclasses implement ``route(request) -> Response``. Faults are decided per request number
(1-based, counting every request): ``faults={3: 503}`` answers the third request with a 503;
``fail_from=n`` answers every request from the n-th on with 500 (an outage, to kill a run
midway); ``delay`` sleeps before answering (an injected server delay, excluded from benchmarks).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    number: int


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status, orjson.dumps(payload), {"content-type": "application/json", **(headers or {})}
        )


class FakeServer:
    def __init__(
        self,
        *,
        faults: dict[int, int] | None = None,
        fail_from: int | None = None,
        delay: float = 0.0,
    ) -> None:
        self.faults = dict(faults or {})
        self.fail_from = fail_from
        self.delay = delay
        self.requests: list[Request] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                response = fake._dispatch(self.command, parts.path, query, headers, body)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, method, path, query, headers, body) -> Response:
        with self._lock:
            number = len(self.requests) + 1
            request = Request(method, path, query, headers, body, number)
            self.requests.append(request)
        if self.delay:
            time.sleep(self.delay)
        status = self.faults.get(number)
        if status is None and self.fail_from is not None and number >= self.fail_from:
            status = 500
        if status is not None:
            response = Response.json(status, {"errors": [{"status": status, "title": "injected"}]})
        else:
            try:
                response = self.route(request)
            except Exception as exc:  # a bug in the fake must show, not hang the client
                response = Response.json(500, {"errors": [{"detail": f"fake error: {exc!r}"}]})
        with self._lock:
            self.statuses.append(response.status)
        return response

    def route(self, request: Request) -> Response:
        """Answer one request; each fake API overrides this."""
        raise NotImplementedError(f"{type(self).__name__} does not route requests")
