"""A real HTTP server on loopback for download tests: media, slow answers, trickled bytes, errors, truncated and
HTML bodies.

`MediaServer` is a `ThreadingHTTPServer` on 127.0.0.1 with a random port, running in a thread. Each path maps to
a `Route`; every request is logged with its arrival time, so tests can count requests and measure the gaps.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str | None = "video/mp4"
    delay: float = 0.0  # seconds before the status line
    declared_length: int | None = None  # Content-Length to claim (default: the body's; larger = truncated; -1 none)
    fail_first: int = 0  # answer the first N requests with `fail_status`, then normally
    fail_status: int = 503
    location: str | None = None  # redirect target (with a 3xx status)
    trickle: float = 0.0  # seconds between single bytes of the body (a stalled or hostile server)
    trickle_headers: bool = False  # dribble the status line and headers too


class MediaServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, float]] = []  # (path, time.time() at arrival)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with server._lock:
                    server.log.append((self.path, time.time()))
                    seen = sum(1 for p, _ in server.log if p == self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.delay:
                    time.sleep(route.delay)
                if seen <= route.fail_first:
                    self.send_error(route.fail_status)
                    return
                if route.trickle:
                    self._trickle(route)
                    return
                self.send_response(route.status)
                if route.location:
                    self.send_header("Location", route.location)
                if route.content_type:
                    self.send_header("Content-Type", route.content_type)
                length = route.declared_length if route.declared_length is not None else len(route.body)
                if length >= 0:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def _trickle(self, route: Route) -> None:
                """Send the answer one byte at a time, `route.trickle` s apart; ends with the body (bounded)."""
                head = (
                    f"HTTP/1.1 {route.status} OK\r\nContent-Type: {route.content_type}\r\n"
                    f"Content-Length: {len(route.body)}\r\nConnection: close\r\n\r\n"
                ).encode()
                if not route.trickle_headers:
                    self.wfile.write(head)
                    head = b""
                self.close_connection = True
                try:
                    for byte in head + route.body:
                        self.wfile.write(bytes([byte]))
                        time.sleep(route.trickle)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for p, _ in self.log if p == path)

    def times(self) -> list[float]:
        with self._lock:
            return sorted(t for _, t in self.log)

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
