"""The /metrics endpoint serves the registry, gzipped when asked, from a body rendered in the background."""

from __future__ import annotations

import gzip
import time
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from streams.exposition import serve
from tests.integration.kafka_helpers import wait_for


def _get(port: int, gzipped: bool = False) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if gzipped:
        request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
        return gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body


def test_scrapes_see_the_registry_within_the_refresh_period_plain_or_gzipped() -> None:
    registry = CollectorRegistry()
    counter = Counter("acw_test_total", "A test counter.", registry=registry)
    server = serve(registry, "127.0.0.1", 0, refresh_s=0.05)
    port = server.server_address[1]
    try:
        assert b"acw_test_total 0.0" in _get(port)
        counter.inc(7)
        wait_for(lambda: b"acw_test_total 7.0" in _get(port, gzipped=True), 5, "the new value", poll_s=0.02)
    finally:
        server.shutdown()


def test_a_steady_scraper_costs_one_render_per_scrape_not_one_per_refresh_period() -> None:
    registry = CollectorRegistry()
    counter = Counter("acw_test_total", "A test counter.", registry=registry)
    server = serve(registry, "127.0.0.1", 0, refresh_s=0.05)
    port = server.server_address[1]
    exposition = server.exposition  # type: ignore[attr-defined]
    try:
        _get(port)
        before = exposition.renders
        for i in range(8):
            counter.inc()
            time.sleep(0.4)  # the scrape interval being simulated, not a wait for a result
            body = _get(port)
            if i > 0:  # once the gap is known, each scrape finds a body rendered shortly before it
                assert b"acw_test_total %d.0" % (i + 1) in body
        # With a fixed refresh it would render 8 * 0.4 / 0.05 = 64 times.
        assert exposition.renders - before <= 8 + 2
    finally:
        server.shutdown()
