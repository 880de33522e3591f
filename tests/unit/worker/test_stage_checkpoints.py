"""A stage's checkpoint never stores offsets past entries it did not write, across a rebalance mid-checkpoint.

The stage is the product's own, with a real core and in-memory Kafka clients (`tests.support.worker_fakes`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.domain.partition import PartitionCore
from streams.serialization import encode_call_event
from streams.worker import stage as stage_module
from streams.worker.faust_overrides import Acknowledgements
from streams.worker.stage import BEHIND_RECORDS, PartitionRuntime
from tests.support.worker_fakes import Message, OfflineWorker, offline_worker
from tests.unit.domain.builders import ev


def _worker(tmp_path: Path, on_first_flush: Callable[[OfflineWorker], Any]) -> OfflineWorker:
    """A worker owning partition 0; `on_first_flush(worker)` runs while the first checkpoint flushes outputs."""
    ow = offline_worker(tmp_path)
    ow.assign({0})
    flush, pending = ow.worker.sink.flush, [on_first_flush]

    async def flush_with_hook() -> None:
        while pending:
            pending.pop()(ow)
        await flush()

    ow.worker.sink.flush = flush_with_hook  # type: ignore[method-assign]
    return ow


def _applied(ow: OfflineWorker, offset: int, *events: Any) -> PartitionRuntime[PartitionCore]:
    """Partition 0's runtime after applying `events` as the record at `offset`."""
    stage = ow.worker.intervals
    rt = stage.runtimes.get(0) or asyncio.run(stage.runtime(0))
    assert rt is not None
    for e in events:
        rt.core.offer(e)
    topic = ow.settings.input_topic
    rt.offsets[topic] = offset
    record = Message(topic, 0, offset, None, None)
    rt.unacked.append(Acknowledgements.of(record.tp, [record]))
    return rt


def _checkpoint(ow: OfflineWorker) -> None:
    stage = ow.worker.intervals
    asyncio.run(stage._persist(stage._snapshot()))


def _written(ow: OfflineWorker) -> list[tuple[int, set[str]]]:
    """(partition, keys) of each record batch written to the interval stage's changelog."""
    topic = ow.worker.intervals.table.changelog_topic.get_topic_name()
    return [(p, {orjson.loads(m.key or b"") for m in log}) for (t, p), log in ow.state.logs.items() if t == topic]


def test_a_snapshot_skipped_by_a_rebalance_that_keeps_the_partition_is_written_by_the_next_checkpoint(
    tmp_path: Path,
) -> None:
    ow = _worker(tmp_path, lambda ow: ow.revoke({0}))  # revoked while the checkpoint waits
    _applied(ow, 10, ev(0, "CONTACT_CONNECTED", "c1", agent="a1"), ev(60, "CONTACT_DISCONNECTED", "c1", agent="a1"))
    _checkpoint(ow)
    assert _written(ow) == [] and ow.acked == []  # nothing written, nothing acked
    ow.assign({0})  # and assigned back: the core is kept

    _applied(ow, 11, ev(60, "AGENT_LOGGED_IN", agent="a2"))
    _checkpoint(ow)
    [(partition, keys)] = _written(ow)
    assert partition == 0
    assert {"0|a|a1", "0|a|a2", "0|m"} <= keys  # a1's change from the skipped snapshot is not lost
    assert [m.offset for m in ow.acked] == [10, 11]
    written = ow.worker.metrics.registry.get_sample_value("acw_checkpoint_entries_total", {"stage": "acw-intervals"})
    assert written == len(keys - {"0|m"})  # every entry but the meta, counted once although snapshotted twice


def test_a_snapshot_of_a_partition_that_moved_away_is_neither_written_nor_acknowledged(tmp_path: Path) -> None:
    ow = _worker(tmp_path, lambda ow: (ow.revoke({0}), ow.assign(set())))
    _applied(ow, 10, ev(0, "AGENT_LOGGED_IN", agent="a1"))
    _checkpoint(ow)
    assert _written(ow) == [] and ow.acked == [] and ow.worker.intervals.runtimes == {}


@pytest.mark.parametrize(
    ("unread_after", "interval", "checkpoint_interval"),
    [
        (None, 5.0, 5.0),
        (0, 5.0, 5.0),
        (BEHIND_RECORDS, 5.0, 5.0),
        (BEHIND_RECORDS + 1, 30.0, 5.0),
        (BEHIND_RECORDS + 1, 60.0, 60.0),
    ],
    ids=["end unknown", "caught up", "just within", "behind", "behind, the longer checkpoint interval wins"],
)
def test_a_partition_behind_its_input_is_checkpointed_at_the_catch_up_interval(
    tmp_path: Path, unread_after: int | None, interval: float, checkpoint_interval: float
) -> None:
    ow = offline_worker(
        tmp_path,
        {
            "ACW_CHECKPOINT_INTERVAL_SECONDS": str(checkpoint_interval),
            "ACW_CATCH_UP_CHECKPOINT_INTERVAL_SECONDS": "30",
        },
    )
    ow.assign({0})
    stage = ow.worker.intervals
    event = ev(0, "AGENT_LOGGED_IN", agent="a1")
    record = Message(ow.settings.input_topic, 0, 0, b"a1", encode_call_event(event, "json"), event.occurred_at_ms)
    end_offset = None if unread_after is None else record.offset + 1 + unread_after
    asyncio.run(stage.consume_batch(record.tp, [record], end_offset))
    assert stage.since_checkpoint == 1  # applied, not yet checkpointed

    stage.last_checkpoint = time.monotonic() - (interval - 1)
    assert not stage.checkpoint_due()
    stage.last_checkpoint = time.monotonic() - (interval + 0.1)
    assert stage.checkpoint_due()


def test_catching_up_holds_every_stages_checkpoints_until_the_partition_reaches_its_end_stalls_or_moves_away(
    tmp_path: Path,
) -> None:
    ow = offline_worker(tmp_path)
    ow.assign({0})
    stage = ow.worker.intervals
    topic = ow.settings.input_topic

    def deliver(offset: int, end_offset: int) -> None:
        event = ev(offset, "AGENT_AVAILABLE", agent="a1")
        record = Message(topic, 0, offset, b"a1", encode_call_event(event, "json"), event.occurred_at_ms)
        asyncio.run(stage.consume_batch(record.tp, [record], end_offset))

    merge = ow.worker.merge  # its input is not behind, but the panes it gets come from the interval stage's catch-up
    merge.since_checkpoint = 1
    merge.last_checkpoint = time.monotonic() - (ow.settings.checkpoint_interval_seconds + 1)
    deliver(0, 50_000)
    assert stage.catching_up() and not merge.catching_up()
    assert not merge.checkpoint_due()  # the worker is catching up: every stage waits the catch-up interval
    deliver(1, 2)  # the batch reached the partition's end
    assert not stage.catching_up()
    assert merge.checkpoint_due()
    deliver(2, 50_000)
    assert stage.catching_up()
    rt = stage.runtimes[0]
    assert rt.behind_at is not None
    rt.behind_at -= ow.settings.catch_up_checkpoint_interval_seconds + 1  # no batch came since (paused, stuck)
    assert not stage.catching_up()
    deliver(3, 50_000)
    assert stage.catching_up()
    ow.revoke({0})
    assert not stage.catching_up()  # a partition this worker no longer owns does not hold its checkpoints back


@pytest.mark.parametrize(("bound", "sequential"), [(0, True), (1 << 30, False)])
def test_a_checkpoint_waits_for_its_sent_batches_past_the_bytes_in_flight_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int, sequential: bool
) -> None:
    """Catch-up dirties every entry: a checkpoint holds at most about STATE_IN_FLIGHT_BYTES of batches at once."""
    monkeypatch.setattr(stage_module, "STATE_IN_FLIGHT_BYTES", bound)
    ow = offline_worker(tmp_path)
    ow.assign({0, 1})
    steps: list[str] = []
    create, send = ow.state.create_batch, ow.state.send_batch

    def create_batch() -> Any:
        steps.append("build")
        return create()

    async def send_batch(batch: Any, topic: str, partition: int) -> asyncio.Future[None]:
        await send(batch, topic, partition)
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        steps.append(f"send {partition}")
        asyncio.get_running_loop().call_soon(lambda: (steps.append(f"written {partition}"), delivered.set_result(None)))
        return delivered

    ow.state.create_batch = create_batch  # type: ignore[method-assign]
    ow.state.send_batch = send_batch  # type: ignore[method-assign]
    stage = ow.worker.intervals
    for partition in (0, 1):
        rt = asyncio.run(stage.runtime(partition))
        assert rt is not None
        rt.core.offer(ev(0, "AGENT_LOGGED_IN", agent=f"a{partition}"))
    asyncio.run(stage._persist(stage._snapshot()))

    if sequential:
        assert steps == ["build", "send 0", "written 0", "build", "send 1", "written 1"]
    else:
        assert steps == ["build", "send 0", "build", "send 1", "written 0", "written 1"]
    assert {p for (t, p) in ow.state.logs if t == stage.table.changelog_topic.get_topic_name()} == {0, 1}
