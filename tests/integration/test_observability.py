"""The dashboard and recording rules proven against real data: broker, worker, and a real Prometheus scraping it.

Every PromQL expression of the Grafana dashboard (template variables set to match all) and of the
recording rules is run through Prometheus's HTTP API and must return series.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from matplotlib import image as plt_image

from streams.kafka_io import produce_file
from streams.settings import Settings
from streams.topic_admin import create_topics
from streams.traffic import TrafficShape
from tests.integration.conftest import ROOT, WorkerProcess, write_traffic
from tests.integration.kafka_helpers import wait_for
from tests.integration.outputs import split_file
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "acw.json"


def dashboard_expressions() -> list[str]:
    """Every target expression of the dashboard, with template variables set to match everything."""
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name in variables:
                expr = expr.replace(f"${name}", ".*")
            expr = expr.replace("$__rate_interval", "4s")  # Grafana's: 4 x the test Prometheus's 1 s scrape
            assert "$" not in expr, f"unknown variable in {target['expr']}"
            exprs.append(expr)
    return exprs


def recording_rules() -> list[dict[str, Any]]:
    """The recording rules of deploy/prometheus/rules."""
    doc = yaml.safe_load((PROMETHEUS / "rules" / "acw-recording.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


class Prometheus:
    """A real Prometheus (Debian's package) scraping one worker and evaluating our rules every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary, "Prometheus is not installed: scripts/setup.sh installs Debian's `prometheus` package"
        self.port = free_port()
        rules = yaml.safe_load((PROMETHEUS / "rules" / "acw-recording.yml").read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
        (workdir / "recording.yml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(workdir / "recording.yml"), str(PROMETHEUS / "rules" / "acw-alerts.yml")],
            "scrape_configs": [{"job_name": "acw-worker", "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant-query result of an expression (fails on a query error)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            body = json.loads(urllib.request.urlopen(url, timeout=5).read())
        except OSError:
            return []
        assert body["status"] == "success", f"{expr}: {body}"
        return list(body["data"]["result"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(tmp_path, target))
        return started[-1]

    yield start
    for p in started:
        p.stop()


def test_every_dashboard_and_recording_rule_expression_returns_series(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path, prometheus_for: Any
) -> None:
    metrics_port = free_port()
    worker_env.update({"ACW_METRICS_PORT": str(metrics_port), "ACW_INPUT_FORMAT": "json"})
    settings = Settings.from_env(worker_env)
    started = time.time()
    path = tmp_path / "traffic.jsonl"
    events = write_traffic(path, TrafficShape(agents=150, contacts_per_agent=12))
    asyncio.run(create_topics(settings))
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    prometheus = prometheus_for(f"127.0.0.1:{metrics_port}")

    def consumed(n: int) -> bool:
        result = prometheus.query("sum(acw_events_consumed_total)")
        return bool(result) and float(result[0]["value"][1]) >= n

    # The traffic goes out in parts, each once Prometheus has scraped the last: the rendered panels then
    # have rates over several scrapes, not one burst.
    sent = 0
    for part in split_file(path, 8):
        asyncio.run(produce_file(part, settings.input_topic, settings, "json"))
        sent += len(part.read_bytes().splitlines())
        wait_for(lambda n=sent: consumed(n), 180, f"Prometheus to scrape {sent} consumed events", poll_s=0.5)
    assert sent >= len(events)  # the events and the garbage lines, each counted once consumed
    expressions = [(r["record"], r["expr"]) for r in recording_rules()]
    expressions += [(r["record"], r["record"]) for r in recording_rules()]  # recorded by Prometheus itself
    expressions += [(f"dashboard #{i}", e) for i, e in enumerate(dashboard_expressions())]
    empty = []
    for name, expr in expressions:
        try:
            wait_for(lambda expr=expr: prometheus.query(expr), 30, name, poll_s=1)
        except AssertionError:
            flat = re.sub(r"\s+", " ", expr)
            empty.append(f"{name}: {flat}")
    assert not empty, "expressions without series:\n" + "\n".join(empty)
    _every_panel_renders_with_data(prometheus, tmp_path / "board", started)
    for q in ("0.5", "1"):  # reported, not asserted: timings belong to benchmarks
        [r] = prometheus.query(f'quantile_over_time({q}, scrape_duration_seconds{{job="acw-worker"}}[10m])')
        print(f"scrape duration q{q}: {float(r['value'][1]) * 1000:.0f} ms")


def _every_panel_renders_with_data(prometheus: Prometheus, out: Path, started: float) -> None:
    """deploy/grafana/render.py draws every panel from range queries; each has points, each image is not blank."""
    minutes = (time.time() - started) / 60 + 0.5
    command = [
        sys.executable,
        str(ROOT / "deploy" / "grafana" / "render.py"),
        "--prometheus",
        f"http://127.0.0.1:{prometheus.port}",
        "--out",
        str(out),
        "--minutes",
        f"{minutes:.2f}",
        "--scrape-interval",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    panels = [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]
    assert [p["id"] for p in summary["panels"]] == [p["id"] for p in panels]
    no_data = [p["title"] for p in summary["panels"] if not p["series"] or p["points"] < 2]
    assert not no_data, f"panels without data: {no_data}"
    for p in summary["panels"]:
        picture = plt_image.imread(out / p["file"])
        assert len(np.unique(picture.reshape(-1, picture.shape[2]), axis=0)) > 20, f"{p['title']} looks blank"
    assert (out / "board.png").stat().st_size > 50_000
