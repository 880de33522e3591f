"""A worker's /metrics read the way Prometheus would, for tests and benchmarks that wait on its figures."""

from __future__ import annotations

import urllib.request


def scrape(port: int, timeout: float = 2.0) -> dict[str, float] | None:
    """/metrics on 127.0.0.1:`port` as {series: value} (labels as written), or None if nothing answers."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout).read().decode()
    except OSError:
        return None
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def total(series: dict[str, float] | None, name: str) -> float | None:
    """The sum of every series of metric `name` (any labels), or None when there is none."""
    if series is None:
        return None
    values = [v for s, v in series.items() if s == name or s.startswith(name + "{")]
    return sum(values) if values else None


def by_label(series: dict[str, float] | None, name: str, label: str) -> dict[str, float]:
    """Metric `name`'s values keyed by one label's value, summed over the other labels."""
    out: dict[str, float] = {}
    for s, v in (series or {}).items():
        if s.startswith(name + "{") and f'{label}="' in s:
            key = s.split(f'{label}="', 1)[1].split('"', 1)[0]
            out[key] = out.get(key, 0.0) + v
    return out
