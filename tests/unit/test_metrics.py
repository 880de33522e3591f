"""Metric labels stay bounded, and an interval lands in every domain histogram."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry

from streams.domain.intervals import AcwInterval
from streams.metrics import ACW_BUCKETS, Metrics
from tests.unit.domain.builders import ev, run


def test_label_values_beyond_the_configured_and_the_limit_fold_into_other() -> None:
    m = Metrics(CollectorRegistry(), teams=["sales"], label_limit=2)
    assert [m.team(x) for x in ("sales", "t1", "t2", "t3", "t1", None)] == [
        "sales",
        "t1",
        "t2",
        "other",
        "t1",
        "unknown",
    ]


def _interval() -> AcwInterval:
    """One voice contact of team t1 in queue q1: 60 s talk, 120 s ACW."""
    kw = {"team_id": "t1", "queue_id": "q1"}
    [interval] = run(
        [
            ev(0, "CONTACT_OFFERED", "c1", **kw),
            ev(1, "CONTACT_CONNECTED", "c1", **kw),
            ev(61, "CONTACT_DISCONNECTED", "c1", **kw),
            ev(181, "WRAPUP_COMPLETED", "c1", **kw),
        ]
    )
    return interval


def test_an_interval_is_observed_by_team_by_queue_and_by_end_reason() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry)
    interval = _interval()
    m.observe_interval(interval)
    m.observe_interval(interval)  # the second time through the cached children
    team = {"team": "t1", "channel": "VOICE"}
    get = registry.get_sample_value
    assert get("acw_interval_duration_seconds_sum", team) == 240
    assert get("acw_interval_duration_seconds_bucket", {**team, "le": "90.0"}) == 0
    assert get("acw_interval_duration_seconds_bucket", {**team, "le": "120.0"}) == 2
    assert get("acw_queue_interval_duration_seconds_count", {"queue": "q1", "channel": "VOICE"}) == 2
    assert get("acw_talk_duration_seconds_sum", team) == 120
    assert get("acw_handle_duration_seconds_sum", team) == 360
    assert get("acw_intervals_total", {"team": "t1", "end_reason": "WRAPUP_COMPLETED"}) == 2


def test_series_grow_with_teams_plus_queues_not_their_product() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry, label_limit=100)
    interval = _interval()
    for t in range(20):
        for q in range(20):
            m.observe_interval(dataclasses.replace(interval, team_id=f"t{t}", queue_id=f"q{q}"))
    acw = [
        s for metric in registry.collect() if metric.name.endswith("interval_duration_seconds") for s in metric.samples
    ]
    assert len(acw) == (20 + 20) * (len(ACW_BUCKETS) + 3)  # buckets, +Inf, _count and _sum per team or queue


def test_per_agent_series_exist_only_when_asked_for() -> None:
    assert Metrics(CollectorRegistry()).agent_in_acw is None
    assert Metrics(CollectorRegistry(), agent_labels=True).agent_in_acw is not None


def test_faust_monitor_keeps_partition_end_offsets_but_skips_per_message_work() -> None:
    from types import SimpleNamespace

    from faust.types import TP

    registry = CollectorRegistry()
    app = SimpleNamespace()
    Metrics(registry).attach_faust(app)
    tp = TP("calls", 3)
    assert app.monitor.on_message_in(tp, 7, object()) is None
    assert app.monitor.on_stream_event_in(tp, 7, object(), object()) is None
    for offset in (10, 12):
        app.monitor.track_tp_end_offset(tp, offset)
    get = registry.get_sample_value
    assert get("faust_topic_partition_end_offset", {"topic": "calls", "partition": "3"}) == 12
    assert app.monitor.tp_end_offsets[tp] == 12
    assert not get("faust_messages_received_total")


def test_the_configured_benchmark_band_is_exported_for_rules_and_dashboards() -> None:
    registry = CollectorRegistry()
    Metrics(registry, benchmark="healthcare")
    value = registry.get_sample_value
    assert value("acw_benchmark_seconds", {"benchmark": "healthcare", "bound": "low"}) == 240
    assert value("acw_benchmark_seconds", {"benchmark": "healthcare", "bound": "high"}) == 480
    assert value("acw_benchmark_seconds", {"benchmark": "general", "bound": "high"}) is None
