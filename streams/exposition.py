"""The /metrics endpoint: answers from a body rendered in the background, so a scrape never waits on a busy worker.

Rendering thousands of histogram series takes a noticeable share of a second while the worker's event
loop holds the GIL; rendering it inside the request made scrapes slow exactly when the worker was busy.
Here a thread renders (and gzips) the body shortly before the next scrape is expected, going by the gap
between the last two, and at most every `refresh_s`; a request only copies bytes out. A scrape on a steady
schedule therefore sees values about `refresh_s` old, and each scrape costs one render.
"""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

# Stop rendering when nobody scraped for this long; the next scrape renders synchronously once.
IDLE_AFTER_S = 120.0


class Exposition:
    """A Prometheus text body kept fresh by a background thread while it is being scraped."""

    def __init__(self, registry: CollectorRegistry, refresh_s: float = 1.0) -> None:
        self.registry = registry
        self.refresh_s = refresh_s
        self._body = b""
        self._gzipped = b""
        self._rendered_at = 0.0
        self._last_request = 0.0
        self._gap = 0.0  # between the last two requests
        self.renders = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._loop, name="metrics-render", daemon=True).start()

    def body(self, gzipped: bool) -> bytes:
        """The latest rendered body (rendered now if there is none fresh enough)."""
        now = time.monotonic()
        self._gap = now - self._last_request if self._last_request else 0.0
        self._last_request = now
        if now - self._rendered_at > max(5 * self.refresh_s, 5.0):
            self._render()
        self._wake.set()
        with self._lock:
            return self._gzipped if gzipped else self._body

    def _render(self) -> None:
        body = generate_latest(self.registry)
        gzipped = gzip.compress(body, compresslevel=1)
        with self._lock:
            self._body, self._gzipped, self._rendered_at = body, gzipped, time.monotonic()
            self.renders += 1

    def _next_render_at(self) -> float:
        """Just before the next scrape is expected (the one after, if this one is ready), at most every refresh_s."""
        ready = self._rendered_at > self._last_request
        if ready and not self._gap:
            return float("inf")  # one request so far: nothing to go by until the next
        expected = self._last_request + self._gap * (2 if ready else 1)
        return max(self._rendered_at + self.refresh_s, expected - self.refresh_s)

    def _loop(self) -> None:
        while True:
            if time.monotonic() - self._last_request > IDLE_AFTER_S:
                self._wake.wait()
                self._wake.clear()
                continue  # the request that woke us rendered, if the body was stale
            wait = self._next_render_at() - time.monotonic()
            if wait > 0:
                self._wake.wait(min(wait, 1.0))  # a request may move the schedule: look again soon
                self._wake.clear()
                continue
            self._render()


def serve(registry: CollectorRegistry, host: str, port: int, refresh_s: float = 1.0) -> ThreadingHTTPServer:
    """Serve /metrics on host:port from a daemon thread; returns the server (its port when 0 was asked)."""
    exposition = Exposition(registry, refresh_s)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
            body = exposition.body(gzipped)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: no access log
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.exposition = exposition  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
