"""A stage's checkpoint never stores offsets past entries it did not write, across a rebalance mid-checkpoint.

The stage is the product's own, with a real core and in-memory Kafka clients (`tests.support.worker_fakes`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from streams.domain.partition import PartitionCore
from streams.worker.faust_overrides import Acknowledgements
from streams.worker.stage import PartitionRuntime
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
