"""Platform records through the real broker: the worker's outputs equal `acw replay --input-format` of the same file.

The traffic is a simulated day rendered as the platform would publish it, keyed as the platform keys it
(Connect agent events by agent ARN, the Kinesis partition key; EventBridge and webhook records unkeyed),
with re-delivered records, short reordering and bad records between them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.domain.events import EventType
from streams.kafka_io import produce_file
from streams.settings import Settings
from streams.simulator import Faults, SimulationConfig, platform_items, simulate, with_faults
from streams.simulator_platforms import INSTANCE
from streams.sources.formats import build_source
from streams.sources.intake import Intake
from streams.topic_admin import create_topics
from streams.traffic import end_of_input_events
from tests.integration.conftest import PARTITIONS, WorkerProcess
from tests.integration.kafka_helpers import read_records, wait_for
from tests.integration.outputs import assert_equal, replay_outputs, wait_for_outputs
from tests.support.ports import free_port
from tests.support.scrape import scrape

pytestmark = pytest.mark.integration
START = 1_767_258_000_000  # 2026-01-01T09:00:00Z, weeks before any run
BAD_CONNECT = [
    (b'{"EventType": "STATE_CHANGE", "AgentARN": "arn:aws:connect:x/agent/a', "connect_unparseable"),
    (
        b'{"EventType": "STATE_CHANGE", "AgentARN": 7, "EventId": "e", "EventTimestamp": "2026-01-01T10:00:00Z"}',
        "connect_wrong_type",
    ),
    (
        b'{"EventType": "STATE_CHANGE", "AgentARN": "arn:x/agent/a", "EventId": "e", "EventTimestamp": '
        b'"2026-01-01T10:00:00Z", "PreviousAgentSnapshot": null, "CurrentAgentSnapshot": {"AgentStatus": null}}',
        "connect_bad_snapshot",
    ),
    (
        b'{"EventType": "TELEPORT", "AgentARN": "arn:x/agent/a", "EventId": "e", '
        b'"EventTimestamp": "2026-01-01T10:00:00Z"}',
        "connect_unknown_event_type",
    ),
]


def platform_day(path: Path, fmt: str, agents: int, seed: int, rename: str | None = None) -> int:
    """A simulated day in `fmt` with duplicates and reordering, as JSON Lines; returns the number of records."""
    config = SimulationConfig(agents=agents, duration_ms=8 * 3_600_000, start_ms=START, seed=seed)
    items = [i.raw for i in with_faults(platform_items(simulate(config), fmt), Faults(0.02, 1_500), seed)]
    lines = [raw.replace(b"agent-", rename.encode()) if rename else raw for raw in items if raw]
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return len(lines)


def end_of_input(fmt: str, at_ms: int) -> bytes:
    """One record per input partition at `at_ms` in `fmt`, routed to each partition: closes what is pending."""
    source = build_source(fmt, Settings())
    routing = (lambda agent: f"{INSTANCE}/agent/{agent}".encode()) if fmt.startswith("connect") else str.encode
    ends = [
        e._replace(event_type=EventType.AGENT_UNAVAILABLE, status="Break", source=INSTANCE)
        for e in end_of_input_events(at_ms, PARTITIONS, routing)
    ]
    assert len({source.routing_key(e) for e in ends}) == PARTITIONS
    records = [i.raw for i in platform_items(iter(ends), fmt)]
    assert len(records) >= PARTITIONS
    return b"".join(r + b"\n" for r in records if r)


def replayed(path: Path, fmt: str, out: Path, settings: Settings) -> tuple[dict[Any, Any], ...]:
    """`acw replay --input-format fmt` of the file: intervals, final aggregates and alerts, indexed."""
    return replay_outputs(path, out, settings, Intake(build_source(fmt, settings), settings.directory()))


def test_connect_agent_events_topic_equals_replay(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    topic = worker_env["ACW_INPUT_TOPIC"]
    worker_env.update(ACW_INPUT_TOPICS=f"{topic}:connect-agent-events", ACW_METRICS_PORT=str(port := free_port()))
    settings = Settings.from_env(worker_env)
    path = tmp_path / "connect.jsonl"
    records = platform_day(path, "connect-agent-events", agents=270, seed=11)
    ends = end_of_input("connect-agent-events", START + 11 * 3_600_000)
    records += len(ends.splitlines())
    lines = (path.read_bytes() + ends).splitlines(keepends=True)
    step = len(lines) // (len(BAD_CONNECT) + 1)
    for i, (bad, _) in enumerate(BAD_CONNECT, start=1):
        lines.insert(i * step, bad + b"\n")
    path.write_bytes(b"".join(lines))
    assert records >= 50_000, records
    expected = replayed(path, "connect-agent-events", tmp_path / "replay", settings)
    assert all(expected)
    asyncio.run(create_topics(settings))
    sent = asyncio.run(produce_file(path, topic, settings, "connect-agent-events"))
    assert sent.valid == records + len(BAD_CONNECT)
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    assert_equal(wait_for_outputs(settings, expected, timeout_s=300), expected)

    reasons = sorted(r for _, r in BAD_CONNECT)
    dead = wait_for(
        lambda: (
            d
            if len(d := read_records(settings.bootstrap_servers, settings.dead_letter_topic, "dead_letter")) >= 4
            else None
        ),
        60,
        "dead letters",
    )
    assert sorted(d["reason"] for d in dead) == reasons
    replay_dead = [
        orjson.loads(x)["reason"] for x in (tmp_path / "replay" / "dead-letter.jsonl").read_bytes().splitlines()
    ]
    assert sorted(replay_dead) == reasons
    assert all(
        d["key"] is None and d["source_topic"] == topic for d in dead
    )  # unkeyed garbage, dead-lettered at the edge

    def counted() -> dict[str, float] | None:
        m = scrape(port) or {}
        kinds = {k: v for k, v in m.items() if k.startswith('acw_source_records_total{format="connect-agent-events"')}
        return m if sum(kinds.values()) >= records else None

    metrics = wait_for(counted, 60, "every record counted by kind")
    kinds = {k: v for k, v in metrics.items() if k.startswith("acw_source_records_total{")}
    assert sum(kinds.values()) == records and any('kind="STATE_CHANGE"' in k for k in kinds)
    summary = orjson.loads((tmp_path / "replay" / "summary.json").read_bytes())
    assert metrics["acw_events_duplicate_total"] == summary["duplicates"] > 0
    assert metrics["acw_events_late_total"] == summary["late"] == 0
    assert metrics.get("acw_events_rekeyed_total", 0) == 0  # keyed by agent ARN: each agent's records stay put


def test_two_platform_topics_in_one_worker(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """Genesys and TaskRouter topics feed one worker; its intervals are the union of the two replays.

    Both topics hold a whole day before the worker starts, and nothing makes a worker read two topics at the
    same event-time pace: one's day can be applied before the other's, whose events would then be late
    (README, "Several input topics"). The lateness here covers the day and the end-of-input records follow
    once both days are applied, so the test checks the wiring (formats per topic, directory, routing).
    """
    base = worker_env["ACW_INPUT_TOPIC"]
    worker_env.update(
        ACW_INPUT_TOPICS=f"{base}-genesys:genesys,{base}-twilio:twilio-taskrouter",
        ACW_ALLOWED_LATENESS_SECONDS="36000",
        ACW_DEDUP_WINDOW_SECONDS="36000",
    )
    agents = tmp_path / "agents.csv"
    settings = Settings.from_env(worker_env)
    genesys, twilio = tmp_path / "genesys.jsonl", tmp_path / "twilio.jsonl"
    days = {}
    for path, fmt, seed, prefix in ((genesys, "genesys", 5, "gen-"), (twilio, "twilio-taskrouter", 6, "tw-")):
        platform_day(path, fmt, agents=40, seed=seed, rename=prefix)
        end = end_of_input(fmt, START + 20 * 3_600_000)  # past the day and its lateness
        days[path] = path.read_bytes(), end
        path.write_bytes(days[path][0] + end)
    agents.write_text("agent_id,team_id\n" + "".join(f"gen-{i:05d},team-g{i // 10}\n" for i in range(40)))
    worker_env["ACW_AGENT_DIRECTORY"] = str(agents)
    settings = Settings.from_env(worker_env)
    expected: dict[str, Any] = {}
    applied = 0
    for path, fmt in ((genesys, "genesys"), (twilio, "twilio-taskrouter")):
        expected.update(replayed(path, fmt, tmp_path / f"replay-{fmt}", settings)[0])
        applied += orjson.loads((tmp_path / f"replay-{fmt}" / "summary.json").read_bytes())["applied"]
        source = build_source(fmt, settings)
        applied -= sum(len(source.translate(line).events) for line in days[path][1].splitlines())
    assert Counter(r["team_id"][:6] for r in expected.values() if r["agent_id"].startswith("gen-")) == Counter(
        {"team-g": sum(r["agent_id"].startswith("gen-") for r in expected.values())}
    )
    asyncio.run(create_topics(settings))
    for path, (topic, fmt) in zip((genesys, twilio), settings.inputs(), strict=True):
        path.with_suffix(".day").write_bytes(days[path][0])
        asyncio.run(produce_file(path.with_suffix(".day"), topic, settings, fmt))
    worker_env["ACW_METRICS_PORT"] = str(port := free_port())
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    wait_for(
        lambda: (scrape(port) or {}).get("acw_events_applied_total", 0) >= applied or None,
        120,
        "both days applied",
    )
    for path, (topic, fmt) in zip((genesys, twilio), settings.inputs(), strict=True):
        path.with_suffix(".end").write_bytes(days[path][1])
        asyncio.run(produce_file(path.with_suffix(".end"), topic, settings, fmt))
    got = wait_for_outputs(settings, (expected, {}, {}), kinds=1, timeout_s=120)
    assert_equal(got, (expected,))
