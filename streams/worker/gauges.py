"""Gauges read from the owned partitions' cores once a second: who is in ACW, what fires, how far behind we are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from streams.domain.partition import PartitionCore
    from streams.worker.app import AcwWorker


class CoreGauges(NamedTuple):
    """What the gauges show of one interval-stage core (read where the core runs, in either process)."""

    open_intervals: int
    agents_in_acw: int
    oldest_open_ms: int | None
    firing: dict[str, int]  # open_over rule name -> alerts firing now
    window_firing: dict[str, int]  # window rule name -> local keys whose alert fires now
    open: list[tuple[str, int]]  # (agent, disconnected_at) of each open interval, when agents are labelled
    watermark_ms: int | None


def core_gauges(core: PartitionCore, agents: bool) -> CoreGauges:
    """One core's gauges; `agents`: with the open intervals, for the per-agent gauge."""
    view = core.live()
    opened = [(agent, disconnected) for agent, _, disconnected in core.open] if agents else []
    return CoreGauges(
        view.open_intervals,
        view.agents_in_acw,
        view.oldest_open_ms,
        view.firing,
        core.firing(),
        opened,
        core.processor.watermark_ms,
    )


def update_gauges(worker: AcwWorker) -> None:
    """Gauges read from the owned partitions' cores: who is in ACW, what fires, how far behind we are."""
    m = worker.metrics
    app = worker.app
    m.recovering.set(1 if app.rebalancing or not app.flow_control.is_active() else 0)
    readings = worker.intervals.gauge_readings()
    m.open_intervals.set(sum(r.open_intervals for r in readings))
    m.agents_in_acw.set(sum(r.agents_in_acw for r in readings))
    m.oldest_open.set(max((r.oldest_open_ms or 0 for r in readings), default=0) / 1000)
    firing: dict[str, int] = {}
    counted = [r.firing for r in readings] + [r.window_firing for r in readings]
    for counts in counted + [rt.core.firing() for rt in worker.merge.owned_runtimes()]:
        for rule, n in counts.items():
            firing[rule] = firing.get(rule, 0) + n
    for rule in worker.aggregation.rules:
        m.alerts_firing.labels(rule.name, rule.severity).set(firing.get(rule.name, 0))
    if m.agent_in_acw is not None:
        m.agent_in_acw.clear()
        for r in readings:
            wm = r.watermark_ms or 0
            for agent, disc in r.open:
                m.agent_in_acw.labels(agent).set(max(0, wm - disc) / 1000)
    for stage in worker.stages:
        for rt in stage.owned_runtimes():
            for topic in stage.topics:
                try:
                    end = app.consumer.highwater(_tp(topic, rt.partition))
                except Exception:  # not assigned to the fetching consumer (yet)
                    continue
                if end is not None:
                    lag = max(0, end - rt.offsets.get(topic, -1) - 1)
                    m.consumer_lag.labels(topic, str(rt.partition)).set(lag)


def _tp(topic: str, partition: int) -> Any:
    from faust.types import TP

    return TP(topic, partition)
