"""Outputs of a worker run and of `acw replay`, read, indexed and compared (repeats must be identical)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from streams.kafka_io import produce_file
from streams.replay import replay
from streams.settings import Settings
from streams.sources.intake import Intake
from streams.topic_admin import create_topics
from streams.traffic import TrafficShape
from tests.integration.conftest import GARBAGE_REASONS, write_traffic
from tests.integration.kafka_helpers import read_records, topic_size, wait_for

# ~52,000 events over a day of event time (logins spread over 18 hours), weeks before any test run.
SHAPE = TrafficShape(agents=500, contacts_per_agent=20, stagger_ms=18 * 3_600_000)


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a worker with this environment runs with."""
    return Settings.from_env(env)


Outputs = tuple[dict[str, Any], dict[Any, Any], dict[Any, Any]]


def interval_key(r: dict[str, Any]) -> str:
    return r["interval_id"]


def aggregate_key(r: dict[str, Any]) -> tuple[str, str, int, int]:
    return (r["scope"], r["key"], r["window_start"], r["window_size_seconds"])


def alert_key(r: dict[str, Any]) -> tuple[str, str]:
    return (r["alert_id"], r["state"])


def unique(records: list[dict[str, Any]], key: Any = interval_key) -> dict[Any, dict[str, Any]]:
    """Index records, asserting that every repeat is identical."""
    out: dict[Any, dict[str, Any]] = {}
    for r in records:
        assert out.setdefault(key(r), r) == r, f"repeated record differs: {key(r)}"
    return out


def replay_outputs(path: Path, out: Path, settings: Settings, intake: Intake | None = None) -> Outputs:
    processes = settings.replay_process_count()  # as `acw replay` runs it
    replay([path], out, settings.rules(), aggregation=settings.aggregation(), intake=intake, processes=processes)

    def read(name: str) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in (out / name).read_bytes().splitlines()]

    return (
        unique(read("intervals.jsonl")),
        unique(read("aggregates.jsonl"), aggregate_key),
        unique(read("alerts.jsonl"), alert_key),
    )


def worker_outputs(settings: Settings) -> Outputs:
    """Intervals, final aggregates and alert transitions on the output topics, indexed."""
    finals = [
        r for r in read_records(settings.bootstrap_servers, settings.aggregates_topic, "acw_aggregate") if r["final"]
    ]
    return (
        unique(intervals(settings)),
        unique(finals, aggregate_key),
        unique(read_records(settings.bootstrap_servers, settings.alerts_topic, "acw_alert"), alert_key),
    )


def wait_for_outputs(settings: Settings, expected: Outputs, kinds: int = 3, timeout_s: float = 180) -> Outputs:
    """Wait until the worker produced as many distinct records of each kind as replay, then return them.

    `kinds` = 1 compares intervals only.
    """
    expected = expected[:kinds]  # type: ignore[assignment]

    def complete() -> Outputs | None:
        if topic_size(settings.bootstrap_servers, settings.intervals_topic) < len(expected[0]):
            return None
        got = worker_outputs(settings)[:kinds]
        return got if all(len(g) >= len(e) for g, e in zip(got, expected, strict=True)) else None  # type: ignore[return-value]

    try:
        return wait_for(complete, timeout_s, "every interval, final aggregate and alert", poll_s=3)
    except AssertionError:
        assert_equal(worker_outputs(settings)[:kinds], expected)  # type: ignore[arg-type]
        raise


def assert_equal(got: Outputs, expected: Outputs) -> None:
    """The same keys and the same records, kind by kind."""
    for name, g, e in zip(("intervals", "final aggregates", "alerts"), got, expected, strict=False):
        assert g.keys() == e.keys(), f"{name}: {len(g.keys() - e.keys())} extra, {len(e.keys() - g.keys())} missing"
        differing = [k for k in e if g[k] != e[k]]
        assert not differing, f"{name}: {len(differing)} differ, e.g. {g[differing[0]]} != {e[differing[0]]}"


def prepare(
    env: dict[str, str],
    tmp_path: Path,
    shape: TrafficShape = SHAPE,
    produce_env: dict[str, str] | None = None,
    produce: bool = True,
) -> tuple[Settings, Path, Outputs]:
    """Write traffic (with garbage), replay it for the expected outputs, create the topics and send the traffic.

    The topics are created and the traffic sent with `produce_env`'s settings when given (a secured
    listener, say); the returned settings are `env`'s, which the test reads outputs with. With
    `produce=False` the test sends the file itself (in stages, say).
    """
    settings = settings_of(env)
    fmt = settings.input_format
    path = tmp_path / "traffic.jsonl"
    events = write_traffic(path, shape)
    assert len(events) >= shape.agents * shape.contacts_per_agent * 5
    expected = replay_outputs(path, tmp_path / "replay", settings)
    assert all(expected), "replay produced no intervals, aggregates or alerts to compare with"
    producing = settings_of(produce_env) if produce_env is not None else settings
    asyncio.run(create_topics(producing))
    if produce:
        sent = asyncio.run(produce_file(path, settings.input_topic, producing, fmt))
        assert sent.valid == len(events) and sent.invalid == len(GARBAGE_REASONS)
    return settings, path, expected


def split_file(path: Path, parts: int) -> list[Path]:
    """The file's lines cut into `parts` consecutive files, to send a stream in stages."""
    lines = path.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    out = []
    for i in range(parts):
        part = path.with_name(f"{path.stem}.part{i}{path.suffix}")
        part.write_bytes(b"".join(lines[i * size : (i + 1) * size]))
        out.append(part)
    return out


def send(settings: Settings, path: Path) -> None:
    """Send a traffic file to the input topic."""
    asyncio.run(produce_file(path, settings.input_topic, settings, settings.input_format))


def intervals(settings: Settings) -> list[dict[str, Any]]:
    """Every interval record on the intervals topic, repeats included."""
    return read_records(settings.bootstrap_servers, settings.intervals_topic, "acw_interval")
