"""Scenario tests, one per ACW rule (README, 'The ACW rules')."""

from __future__ import annotations

import pytest

from streams.domain.events import Channel
from streams.domain.intervals import EndReason, interval_id_for
from streams.domain.processor import Disposition, Processor, RulesConfig
from tests.unit.domain.builders import T0, ev, run


def test_wrapup_completed_closes_with_disposition_and_times() -> None:
    [iv] = run(
        [
            ev(0, "CONTACT_OFFERED", "c1", team_id="t1", queue_id="q1"),
            ev(5, "CONTACT_CONNECTED", "c1"),
            ev(65, "CONTACT_DISCONNECTED", "c1"),
            ev(95, "WRAPUP_COMPLETED", "c1", disposition_code="SOLD"),
        ]
    )
    assert iv.end_reason is EndReason.WRAPUP_COMPLETED
    assert (iv.acw_seconds, iv.talk_seconds, iv.hold_seconds, iv.handle_seconds) == (30.0, 60.0, 0.0, 90.0)
    assert iv.disposition_code == "SOLD"
    assert (iv.team_id, iv.queue_id, iv.channel) == ("t1", "q1", Channel.VOICE)
    assert iv.disconnected_at_ms == T0 + 65_000 and iv.ended_at_ms == T0 + 95_000


def test_zero_second_acw_is_a_real_value() -> None:
    [iv] = run([ev(0, "CONTACT_CONNECTED", "c1"), ev(10, "CONTACT_DISCONNECTED", "c1"), ev(10, "AGENT_AVAILABLE")])
    assert iv.acw_seconds == 0.0 and iv.end_reason is EndReason.AVAILABLE and iv.handle_seconds == 10.0


def test_missed_or_abandoned_offer_makes_no_interval() -> None:
    abandoned = [
        ev(0, "CONTACT_OFFERED", "c1"),
        ev(20, "CONTACT_DISCONNECTED", "c1"),
        ev(30, "AGENT_AVAILABLE"),
    ]
    missed = [ev(0, "CONTACT_OFFERED", "c2"), ev(30, "AGENT_UNAVAILABLE", status="Missed")]
    assert run(abandoned) == [] and run(missed) == []


def test_disconnect_of_unseen_contact_opens_interval_with_unknown_talk() -> None:
    [iv] = run([ev(0, "CONTACT_DISCONNECTED", "c9"), ev(40, "WRAPUP_COMPLETED", "c9")])
    assert iv.acw_seconds == 40.0
    assert (iv.talk_seconds, iv.hold_seconds, iv.handle_seconds) == (None, None, None)


@pytest.mark.parametrize(
    ("kind", "reason", "status"),
    [
        ("AGENT_AVAILABLE", EndReason.AVAILABLE, None),
        ("AGENT_UNAVAILABLE", EndReason.STATUS_CHANGE, "Break"),
        ("AGENT_LOGGED_OUT", EndReason.LOGGED_OUT, None),
    ],
)
def test_agent_state_events_close_all_open_intervals(kind: str, reason: EndReason, status: str | None) -> None:
    extra = {"status": status} if status else {}
    out = run(
        [
            ev(0, "CONTACT_CONNECTED", "c1", channel="CHAT"),
            ev(1, "CONTACT_CONNECTED", "c2", channel="CHAT"),
            ev(10, "CONTACT_DISCONNECTED", "c1"),
            ev(20, "CONTACT_DISCONNECTED", "c2"),
            ev(50, kind, **extra),
        ]
    )
    assert [(i.contact_id, i.acw_seconds, i.end_reason, i.status) for i in out] == [
        ("c1", 40.0, reason, status),
        ("c2", 30.0, reason, status),
    ]


def test_next_voice_contact_closes_voice_acw() -> None:
    out = run(
        [
            ev(0, "CONTACT_CONNECTED", "c1"),
            ev(60, "CONTACT_DISCONNECTED", "c1"),
            ev(75, "CONTACT_CONNECTED", "c2"),
            ev(90, "CONTACT_DISCONNECTED", "c2"),
            ev(100, "WRAPUP_COMPLETED", "c2"),
        ]
    )
    assert [(i.contact_id, i.end_reason, i.acw_seconds) for i in out] == [
        ("c1", EndReason.NEXT_CONTACT, 15.0),
        ("c2", EndReason.WRAPUP_COMPLETED, 10.0),
    ]


def test_chats_overlap_and_new_chat_does_not_close_chat_acw() -> None:
    out = run(
        [
            ev(0, "CONTACT_CONNECTED", "c1", channel="CHAT"),
            ev(30, "CONTACT_DISCONNECTED", "c1"),
            ev(35, "CONTACT_CONNECTED", "c2", channel="CHAT"),
            ev(40, "CONTACT_CONNECTED", "c3"),  # a voice call does not close chat ACW either
            ev(70, "WRAPUP_COMPLETED", "c1"),
        ]
    )
    [iv] = out
    assert (iv.contact_id, iv.channel, iv.end_reason, iv.acw_seconds) == (
        "c1",
        Channel.CHAT,
        EndReason.WRAPUP_COMPLETED,
        40.0,
    )


def test_timeout_ends_at_deadline_and_later_closing_event_does_not_close() -> None:
    cfg = RulesConfig(max_acw_ms=600_000)
    out = run(
        [
            ev(0, "CONTACT_CONNECTED", "c1"),
            ev(10, "CONTACT_DISCONNECTED", "c1"),
            ev(900, "WRAPUP_COMPLETED", "c1"),
        ],
        cfg,
    )
    [iv] = out
    assert iv.end_reason is EndReason.TIMED_OUT
    assert iv.ended_at_ms == T0 + 610_000 and iv.acw_seconds == 600.0


def test_closing_event_exactly_at_deadline_still_closes() -> None:
    cfg = RulesConfig(max_acw_ms=600_000)
    [iv] = run([ev(10, "CONTACT_DISCONNECTED", "c1"), ev(610, "AGENT_AVAILABLE")], cfg)
    assert iv.end_reason is EndReason.AVAILABLE and iv.acw_seconds == 600.0


def test_timeout_driven_by_other_agents_stream_time() -> None:
    cfg = RulesConfig(max_acw_ms=60_000, allowed_lateness_ms=5_000)
    proc = Processor(cfg)
    proc.offer(ev(0, "CONTACT_DISCONNECTED", "c1", agent="stuck"))
    assert list(proc.offer(ev(64, "AGENT_AVAILABLE", agent="other")).intervals) == []
    [iv] = proc.offer(ev(65.001, "AGENT_AVAILABLE", agent="other")).intervals
    assert (iv.agent_id, iv.end_reason, iv.acw_seconds) == ("stuck", EndReason.TIMED_OUT, 60.0)


def test_finish_closes_only_what_timed_out_by_last_event_time() -> None:
    cfg = RulesConfig(max_acw_ms=60_000)
    proc = Processor(cfg)
    for e in [
        ev(0, "CONTACT_DISCONNECTED", "c1"),
        ev(50, "CONTACT_DISCONNECTED", "c2", agent="a2"),
        ev(61, "AGENT_LOGGED_IN", agent="a3"),
    ]:
        proc.offer(e)
    assert [(i.contact_id, i.end_reason) for i in proc.finish()] == [("c1", EndReason.TIMED_OUT)]
    assert proc.open_intervals() == [("a2", "c2", T0 + 50_000)]


def test_hold_periods_sum_and_open_hold_ends_at_disconnect() -> None:
    [iv] = run(
        [
            ev(0, "CONTACT_CONNECTED", "c1"),
            ev(10, "HOLD_STARTED", "c1"),
            ev(25, "HOLD_ENDED", "c1"),
            ev(40, "HOLD_STARTED", "c1"),
            ev(50, "CONTACT_DISCONNECTED", "c1"),
            ev(70, "WRAPUP_COMPLETED", "c1"),
        ]
    )
    assert (iv.hold_seconds, iv.talk_seconds, iv.handle_seconds) == (25.0, 25.0, 70.0)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            [
                ev(0, "CONTACT_CONNECTED", "c1", team_id="tc", queue_id="qc"),
                ev(5, "CONTACT_DISCONNECTED", "c1", team_id="td", queue_id="qd", channel="EMAIL"),
            ],
            ("td", "qd", "EMAIL"),
        ),
        (
            [
                ev(0, "AGENT_LOGGED_IN", team_id="ta", queue_id="qa"),
                ev(1, "CONTACT_CONNECTED", "c1", queue_id="qc", channel="CHAT"),
                ev(5, "CONTACT_DISCONNECTED", "c1"),
            ],
            ("ta", "qc", "CHAT"),
        ),
        ([ev(0, "CONTACT_DISCONNECTED", "c1")], (None, None, "VOICE")),
    ],
)
def test_channel_team_queue_come_from_disconnect_then_contact_then_agent(events, expected) -> None:
    [iv] = run([*events, ev(9, "AGENT_AVAILABLE")])
    assert (iv.team_id, iv.queue_id, iv.channel.value) == expected


def test_equal_timestamps_apply_in_event_type_order_whatever_the_arrival() -> None:
    events = [
        ev(10, "AGENT_AVAILABLE"),
        ev(10, "CONTACT_DISCONNECTED", "c1"),
        ev(0, "CONTACT_CONNECTED", "c1"),
    ]
    [iv] = run(events)
    assert iv.acw_seconds == 0.0 and iv.end_reason is EndReason.AVAILABLE


def test_late_event_is_rejected_and_counted() -> None:
    proc = Processor(RulesConfig(allowed_lateness_ms=5_000))
    proc.offer(ev(100, "AGENT_LOGGED_IN"))
    assert proc.offer(ev(95, "AGENT_AVAILABLE", agent="a2")).disposition is Disposition.ACCEPTED
    assert proc.offer(ev(94.999, "AGENT_AVAILABLE", agent="a2")).disposition is Disposition.LATE
    assert proc.counts["late"] == 1


def test_duplicate_event_id_is_dropped_and_counted() -> None:
    proc = Processor(RulesConfig())
    first = ev(0, "CONTACT_DISCONNECTED", "c1", event_id="x")
    assert proc.offer(first).disposition is Disposition.ACCEPTED
    assert proc.offer(ev(0, "CONTACT_DISCONNECTED", "c1", event_id="x")).disposition is Disposition.DUPLICATE
    assert proc.counts["duplicates"] == 1


def test_duplicate_remembered_for_an_hour_of_event_time() -> None:
    proc = Processor(RulesConfig())
    proc.offer(ev(0, "AGENT_LOGGED_IN", event_id="x"))
    for i in range(200):  # enough to trigger pruning
        proc.offer(ev(i * 17, "AGENT_AVAILABLE"))
    assert proc.offer(ev(0, "AGENT_LOGGED_IN", event_id="x")).disposition is Disposition.DUPLICATE


def test_interval_id_is_deterministic_and_distinct() -> None:
    a = run([ev(0, "CONTACT_DISCONNECTED", "c1"), ev(5, "AGENT_AVAILABLE")])
    b = run([ev(0, "CONTACT_DISCONNECTED", "c1"), ev(7, "AGENT_LOGGED_OUT")])
    assert a[0].interval_id == b[0].interval_id == interval_id_for("a1", "c1", T0)
    assert interval_id_for("a1", "c1", T0 + 1) != a[0].interval_id


def test_interval_id_is_a_standard_uuid5() -> None:
    import uuid

    from streams.domain.intervals import _INTERVAL_NAMESPACE

    assert interval_id_for("a1", "c1", T0) == str(uuid.uuid5(_INTERVAL_NAMESPACE, f"a1\x1fc1\x1f{T0}"))
