"""Metric labels stay bounded, and an interval lands in every domain histogram."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
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


def test_an_interval_is_observed_with_team_queue_channel_and_end_reason() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry)
    kw = {"team_id": "t1", "queue_id": "q1"}
    [interval] = run(
        [
            ev(0, "CONTACT_OFFERED", "c1", **kw),
            ev(1, "CONTACT_CONNECTED", "c1", **kw),
            ev(61, "CONTACT_DISCONNECTED", "c1", **kw),
            ev(181, "WRAPUP_COMPLETED", "c1", **kw),
        ]
    )
    m.observe_interval(interval)
    labels = {"team": "t1", "queue": "q1", "channel": "VOICE"}
    get = registry.get_sample_value
    assert get("acw_interval_duration_seconds_sum", {**labels, "end_reason": "WRAPUP_COMPLETED"}) == 120
    assert get("acw_interval_duration_seconds_bucket", {**labels, "end_reason": "WRAPUP_COMPLETED", "le": "90.0"}) == 0
    assert get("acw_talk_duration_seconds_sum", {"team": "t1", "channel": "VOICE"}) == 60
    assert get("acw_handle_duration_seconds_sum", {"team": "t1", "channel": "VOICE"}) == 180
    assert get("acw_intervals_total", {"end_reason": "WRAPUP_COMPLETED"}) == 1


def test_per_agent_series_exist_only_when_asked_for() -> None:
    assert Metrics(CollectorRegistry()).agent_in_acw is None
    assert Metrics(CollectorRegistry(), agent_labels=True).agent_in_acw is not None
