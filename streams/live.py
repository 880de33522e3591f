"""`acw top`: a live terminal view of the contact center, for the demo and for a quick look at a running system.

It starts from the present instead of replaying history: who is in ACW comes from the compacted agent-state
topic (read from its start: one record per agent once compacted, and only the last value per agent is
decoded), each team's current-window ACW average and p90 from the aggregates of the latest windows (read
from shortly before the present), the latest alerts likewise, and events/s from the input as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streams.domain.alerts import BENCHMARKS
from streams.serialization import output_decoder
from streams.settings import Settings

ALERTS_SHOWN = 8


@dataclass
class LiveState:
    """What the view shows, fed record by record."""

    settings: Settings
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # agent -> latest agent-state record
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)  # team -> latest current-window aggregate
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ALERTS_SHOWN))
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    events: int = 0  # input records since the view started
    as_of_ms: int = 0  # the latest stream time any agent-state record carries
    window_s: int = field(init=False)

    def __post_init__(self) -> None:
        self.window_s = self.settings.aggregation().windows[0].size_ms // 1000

    def on_event(self) -> None:
        self.events += 1
        self.arrivals.append(time.monotonic())

    def on_agent_state(self, agent_id: str, record: dict[str, Any] | None) -> None:
        if record is None:
            self.agents.pop(agent_id, None)
            return
        self.agents[agent_id] = record
        self.as_of_ms = max(self.as_of_ms, record["as_of"])

    def on_aggregate(self, record: dict[str, Any]) -> None:
        if record["scope"] != "TEAM" or record["window_size_seconds"] != self.window_s:
            return
        current = self.teams.get(record["key"])
        if current is None or record["window_start"] >= current["window_start"]:
            self.teams[record["key"]] = record

    def on_alert(self, record: dict[str, Any]) -> None:
        self.alerts.appendleft(record)

    def in_acw(self) -> list[tuple[int, str, str, str | None, str | None]]:
        """(disconnected_at, agent, contact, team, queue) of every contact in ACW, longest first.

        A contact past the ACW timeout is left out: the worker has timed it out, or will at its next record.
        """
        cutoff = self.as_of_ms - round(self.settings.max_acw_seconds * 1000)
        rows = [
            (c["disconnected_at"], agent, c["contact_id"], r["team_id"], c["queue_id"])
            for agent, r in self.agents.items()
            for c in r["acw_contacts"]
            if c["disconnected_at"] >= cutoff
        ]
        return sorted(rows)

    def rate(self) -> float:
        """Input events per second over the last 5 s."""
        cutoff = time.monotonic() - 5
        while self.arrivals and self.arrivals[0] < cutoff:
            self.arrivals.popleft()
        return len(self.arrivals) / 5


def render(state: LiveState) -> Any:
    """The view as rich renderables."""
    from rich.console import Group
    from rich.table import Table

    benchmark = BENCHMARKS[state.settings.benchmark]
    wm = state.as_of_ms
    rows = state.in_acw()
    header = Table.grid(padding=(0, 3))
    header.add_row(
        f"[b]ACW Streams[/b]  stream time {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(wm / 1000))} UTC",
        f"events/s [b]{state.rate():,.0f}[/b]",
        f"agents {len(state.agents):,}",
        f"in ACW now [b]{len({r[1] for r in rows})}[/b] agents, {len(rows)} contacts",
    )
    agents = Table(title="Agents in after-call work (longest first)", expand=True)
    for col in ("agent", "contact", "team", "queue", "in ACW"):
        agents.add_column(col)
    for disc, agent, contact, team, queue in rows[:12]:
        seconds = max(0, wm - disc) / 1000
        style = "red" if seconds > 2 * benchmark else "yellow" if seconds > benchmark else ""
        agents.add_row(
            agent, contact, team or "-", queue or "-", f"[{style}]{_mmss(seconds)}[/]" if style else _mmss(seconds)
        )
    teams = Table(
        title=f"Teams, current {state.window_s // 60}-minute window (benchmark {_mmss(benchmark)})", expand=True
    )
    for col in ("team", "contacts", "ACW avg", "ACW p90", "ACW %"):
        teams.add_column(col)
    for team, r in sorted(state.teams.items()):
        avg, p90 = r["acw_avg_seconds"], r["acw_p90_seconds"]
        teams.add_row(
            team,
            str(r["contacts"]),
            _judged(avg, benchmark),
            _judged(p90, benchmark),
            f"{r['acw_pct']:.0f}%" if r["acw_pct"] is not None else "-",
        )
    alerts = Table(title="Latest alerts", expand=True)
    for col in ("state", "severity", "message"):
        alerts.add_column(col)
    for a in state.alerts:
        colour = "red" if a["state"] == "FIRING" else "green"
        alerts.add_row(f"[{colour}]{a['state']}[/]", a["severity"], a["message"])
    return Group(header, agents, teams, alerts)


def _mmss(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _judged(value: float | None, benchmark: float) -> str:
    if value is None:
        return "-"
    return f"[red]{_mmss(value)}[/]" if value > benchmark else f"[green]{_mmss(value)}[/]"


async def _catch_up_agent_states(consumer: Any, state: LiveState, tps: list[Any], decode: Any) -> None:
    """Read the agent-state topic from its start to the end offsets seen now; decode each agent's last value."""
    ends = await consumer.end_offsets(tps)
    starts = await consumer.beginning_offsets(tps)
    for tp in tps:
        consumer.seek(tp, starts[tp])
    pending = {tp for tp in tps if starts[tp] < ends[tp]}
    latest: dict[bytes, bytes | None] = {}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=500, max_records=20_000)
        for records in batch.values():
            for r in records:
                latest[r.key] = r.value
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    for key, value in latest.items():
        state.on_agent_state(key.decode(), None if value is None else decode(value))


async def _seek_to_latest(consumer: Any, tps: list[Any], since_ms: int) -> None:
    """Each partition at its first record stamped at or after `since_ms` (event time), else at its end."""
    if not tps:
        return
    ends = await consumer.end_offsets(tps)
    found = await consumer.offsets_for_times({tp: max(0, since_ms) for tp in tps})
    for tp in tps:
        consumer.seek(tp, found[tp].offset if found[tp] is not None else ends[tp])


async def run_live(settings: Settings, refresh_s: float = 1.0, stop_after_s: float | None = None) -> LiveState:
    """Start from the present, then follow the topics and redraw until interrupted (or `stop_after_s`)."""
    from aiokafka import AIOKafkaConsumer
    from rich.live import Live

    from streams.connection import client_options

    state = LiveState(settings)
    framed = bool(settings.schema_registry_url)
    decode_state = output_decoder("acw_agent_state", framed)
    decode_aggregate = output_decoder("acw_aggregate", framed)
    decode_alert = output_decoder("acw_alert", framed)
    inputs = {topic for topic, _ in settings.inputs()}
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    deadline = None if stop_after_s is None else time.monotonic() + stop_after_s
    try:
        state_tps = await _existing(consumer, settings.agent_state_topic)
        output_tps = [
            *await _existing(consumer, settings.aggregates_topic),
            *await _existing(consumer, settings.alerts_topic),
        ]
        input_tps = [tp for t in sorted(inputs) for tp in await _existing(consumer, t)]
        consumer.assign(state_tps + output_tps + input_tps)
        await _catch_up_agent_states(consumer, state, state_tps, decode_state)
        # The windows that end within two window lengths of the present, and the alerts of that time.
        await _seek_to_latest(consumer, output_tps, state.as_of_ms - 2 * state.window_s * 1000)
        ends = await consumer.end_offsets(output_tps) if output_tps else {}
        pending = {tp for tp in output_tps if await consumer.position(tp) < ends[tp]}
        while pending:  # the latest windows and alerts before the first screen, so it shows the present whole
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=20_000)
            for tp, records in batch.items():
                feed = state.on_aggregate if tp.topic == settings.aggregates_topic else state.on_alert
                decode = decode_aggregate if tp.topic == settings.aggregates_topic else decode_alert
                for r in records:
                    if r.value is not None:
                        feed(decode(r.value))
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        for tp, end in (await consumer.end_offsets(input_tps)).items() if input_tps else ():
            consumer.seek(tp, end)
        with Live(render(state), refresh_per_second=4, screen=False) as live:
            last = 0.0
            while deadline is None or time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, records in batch.items():
                    for r in records:
                        if tp.topic in inputs:
                            state.on_event()
                        elif tp.topic == settings.agent_state_topic:
                            state.on_agent_state(r.key.decode(), None if r.value is None else decode_state(r.value))
                        elif r.value is not None and tp.topic == settings.aggregates_topic:
                            state.on_aggregate(decode_aggregate(r.value))
                        elif r.value is not None:
                            state.on_alert(decode_alert(r.value))
                if time.monotonic() - last >= refresh_s:
                    live.update(render(state))
                    last = time.monotonic()
    finally:
        await consumer.stop()
    return state


async def _existing(consumer: Any, topic: str) -> list[Any]:
    """The topic's partitions, or none when it does not exist yet (the view then shows it empty)."""
    from streams.consume import ConsumeError, topic_partitions

    try:
        return list(await topic_partitions(consumer, topic))
    except ConsumeError:
        return []


def main_live(settings: Settings, stop_after_s: float | None = None) -> int:
    """Run the view; Ctrl-C ends it with exit code 0."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_live(settings, stop_after_s=stop_after_s))
    return 0
