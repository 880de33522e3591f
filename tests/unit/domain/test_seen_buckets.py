"""Seen event ids are checkpointed in time buckets: a checkpoint writes what changed, a restore still de-duplicates."""

from __future__ import annotations

from streams.domain.intervals import AgentState
from streams.domain.processor import SEEN_BUCKET_MS, Disposition, Processor, RulesConfig
from tests.unit.domain.builders import T0, ev

CONFIG = RulesConfig(dedup_window_ms=3_600_000, allowed_lateness_ms=5_000)
MINUTE_S = 60


def _bucket(t_s: float) -> int:
    return (T0 + round(t_s * 1000)) // SEEN_BUCKET_MS


def _offer_each_minute(proc: Processor, minutes: range, agent: str = "a1") -> None:
    for m in minutes:
        assert proc.offer(ev(m * MINUTE_S, "AGENT_LOGGED_IN", agent=agent, event_id=f"{agent}-{m}")).disposition is (
            Disposition.ACCEPTED
        )


def test_a_checkpoint_writes_only_the_buckets_that_gained_ids() -> None:
    proc = Processor(CONFIG)
    _offer_each_minute(proc, range(50))
    first = proc.take_dirty_seen()
    assert {agent for agent, _ in first} == {"a1"}
    assert sum(len(ids or {}) for ids in first.values()) == 50  # every id, once, in its bucket
    assert all(
        (ids or {}) and all(t // SEEN_BUCKET_MS == b for t in (ids or {}).values()) for (_, b), ids in first.items()
    )
    _offer_each_minute(proc, range(50, 52))
    second = proc.take_dirty_seen()
    assert set(second) == {("a1", _bucket(50 * MINUTE_S)), ("a1", _bucket(51 * MINUTE_S))}
    assert "s" not in proc.take_dirty()["a1"]  # the agent's own entry no longer carries its ids


def test_expired_ids_empty_their_buckets_which_are_then_deleted() -> None:
    proc = Processor(CONFIG)
    _offer_each_minute(proc, range(0, 200, 10))  # 200 minutes: the sweep forgets ids older than an hour
    entries: dict[tuple[str, int], dict[str, int] | None] = {}
    entries.update(proc.take_dirty_seen())
    _offer_each_minute(proc, range(200, 400, 10))
    entries.update(proc.take_dirty_seen())
    stored = {k: v for k, v in entries.items() if v is not None}
    kept = {i for ids in stored.values() for i in ids}
    assert kept == set(proc.agents["a1"].seen)  # the store holds exactly what is remembered, nothing expired
    assert any(v is None for v in entries.values())


def test_a_restore_from_buckets_still_knows_every_remembered_id() -> None:
    proc = Processor(CONFIG)
    _offer_each_minute(proc, range(0, 90, 3))
    agents, seen, meta = proc.take_dirty(), proc.take_dirty_seen(), proc.meta()
    restored = Processor.restore(CONFIG, meta, agents, {k: v for k, v in seen.items() if v is not None})
    assert restored.agents["a1"].seen == proc.agents["a1"].seen
    repeat = ev(87 * MINUTE_S, "AGENT_LOGGED_IN", event_id="a1-87")
    assert restored.offer(repeat).disposition is Disposition.DUPLICATE


def test_a_snapshot_from_before_buckets_is_read_and_its_ids_move_to_buckets() -> None:
    old = AgentState("a1", seen={"x1": T0, "x2": T0 + 60_000}).to_dict() | {"s": {"x1": T0, "x2": T0 + 60_000}}
    restored = Processor.restore(CONFIG, {"wm": T0 + 60_000, "sweep": None, "pending": []}, {"a1": old})
    assert restored.offer(ev(0, "AGENT_LOGGED_IN", event_id="x1")).disposition is Disposition.DUPLICATE
    moved = restored.take_dirty_seen()
    assert {i for ids in moved.values() if ids for i in ids} == {"x1", "x2"}


def test_buckets_whose_checkpoint_was_not_written_are_written_again() -> None:
    proc = Processor(CONFIG)
    _offer_each_minute(proc, range(5))
    lost = proc.take_dirty_seen()
    assert not proc.take_dirty_seen()
    for agent, bucket in lost:
        proc.mark_seen_dirty(agent, bucket)
    assert proc.take_dirty_seen() == lost
