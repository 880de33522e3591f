"""Gauges read from the owned partitions' cores once a second: who is in ACW, what fires, how far behind we are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.worker.app import AcwWorker


def update_gauges(worker: AcwWorker) -> None:
    """Gauges read from the owned partitions' cores: who is in ACW, what fires, how far behind we are."""
    m = worker.metrics
    app = worker.app
    m.recovering.set(1 if app.rebalancing or not app.flow_control.is_active() else 0)
    views = [rt.core.live() for rt in worker.intervals.owned_runtimes()]
    m.open_intervals.set(sum(v.open_intervals for v in views))
    m.agents_in_acw.set(sum(v.agents_in_acw for v in views))
    m.oldest_open.set(max((v.oldest_open_ms or 0 for v in views), default=0) / 1000)
    firing: dict[str, int] = {}
    cores = [*worker.intervals.owned_runtimes(), *worker.merge.owned_runtimes()]
    for counts in [v.firing for v in views] + [rt.core.firing() for rt in cores]:
        for rule, n in counts.items():
            firing[rule] = firing.get(rule, 0) + n
    for rule in worker.aggregation.rules:
        m.alerts_firing.labels(rule.name, rule.severity).set(firing.get(rule.name, 0))
    if m.agent_in_acw is not None:
        m.agent_in_acw.clear()
        for rt in worker.intervals.owned_runtimes():
            wm = rt.core.processor.watermark_ms or 0
            for agent, _, disc in rt.core.open:
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
