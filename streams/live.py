"""`acw top`: a live terminal view of the contact center, for the demo and for a quick look at a running system.

Who is in ACW now comes from the pure core itself, run over the input topic (the worker does not publish
open intervals); each team's current-window ACW average and p90 come from the update records on the
aggregates topic; the latest alerts from the alerts topic; events/s from the input as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streams.domain.alerts import BENCHMARKS
from streams.domain.events import InvalidEvent
from streams.domain.pipeline import AcwPipeline, AggregationConfig
from streams.serialization import output_decoder
from streams.settings import Settings
from streams.sources.formats import build_source
from streams.sources.intake import Intake


@dataclass
class LiveState:
    """What the view shows, fed record by record."""

    settings: Settings
    pipeline: AcwPipeline = field(init=False)
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)  # team -> latest 15-minute aggregate
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    events: int = 0
    window_s: int = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline = AcwPipeline(self.settings.rules(), AggregationConfig(rules=()))
        self.window_s = self.settings.aggregation().windows[0].size_ms // 1000
        s = self.settings
        self.intakes = {t: Intake(build_source(fmt, s), s.directory()) for t, fmt in s.inputs()}

    def on_event(self, value: bytes | None, topic: str | None = None) -> None:
        intake = self.intakes[topic] if topic is not None else next(iter(self.intakes.values()))
        try:
            events = intake.read(value or b"", int(time.time() * 1000)).events
        except InvalidEvent:
            return
        self.events += 1  # input records (a platform record can hold several events)
        self.arrivals.append(time.monotonic())
        for event in events:
            self.pipeline.offer(event)
        self.pipeline.forget_changes()

    def on_aggregate(self, record: dict[str, Any]) -> None:
        if record["scope"] != "TEAM" or record["window_size_seconds"] != self.window_s:
            return
        current = self.teams.get(record["key"])
        if current is None or record["window_start"] >= current["window_start"]:
            self.teams[record["key"]] = record

    def on_alert(self, record: dict[str, Any]) -> None:
        self.alerts.appendleft(record)

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
    wm = state.pipeline.processor.watermark_ms or 0
    view = state.pipeline.live()
    header = Table.grid(padding=(0, 3))
    header.add_row(
        f"[b]ACW Streams[/b]  stream time {time.strftime('%H:%M:%S', time.gmtime(wm / 1000))} UTC",
        f"events/s [b]{state.rate():,.0f}[/b]",
        f"events {state.events:,}",
        f"in ACW now [b]{view.agents_in_acw}[/b] agents, {view.open_intervals} contacts",
    )
    agents = Table(title="Agents in after-call work (longest first)", expand=True)
    for col in ("agent", "contact", "team", "queue", "in ACW"):
        agents.add_column(col)
    for (agent, contact, disc), (team, queue) in sorted(state.pipeline.open.items(), key=lambda x: x[0][2])[:12]:
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


async def run_live(settings: Settings, refresh_s: float = 1.0, stop_after_s: float | None = None) -> LiveState:
    """Follow the topics and redraw until interrupted (or `stop_after_s`); returns the final state."""
    from aiokafka import AIOKafkaConsumer
    from rich.live import Live

    from streams.connection import client_options

    state = LiveState(settings)
    framed = bool(settings.schema_registry_url)
    decode_aggregate = output_decoder("acw_aggregate", framed)
    decode_alert = output_decoder("acw_alert", framed)
    inputs = {topic for topic, _ in settings.inputs()}
    consumer = AIOKafkaConsumer(
        *inputs,
        settings.aggregates_topic,
        settings.alerts_topic,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    deadline = None if stop_after_s is None else time.monotonic() + stop_after_s
    try:
        with Live(render(state), refresh_per_second=4, screen=False) as live:
            last = 0.0
            while deadline is None or time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, records in batch.items():
                    for r in records:
                        if tp.topic in inputs:
                            state.on_event(r.value, tp.topic)
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


def main_live(settings: Settings, stop_after_s: float | None = None) -> int:
    """Run the view; Ctrl-C ends it with exit code 0."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_live(settings, stop_after_s=stop_after_s))
    return 0
