"""A stage's checkpoint never stores offsets past entries it did not write, across a rebalance mid-checkpoint.

The stage runs with a real core (`AcwPipeline`) and in-memory stand-ins for Faust's producer, consumer
and the state producer, which record what they are given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka import TopicPartition

from streams.domain.pipeline import AcwPipeline, AggregationConfig
from streams.domain.processor import RulesConfig
from streams.worker.stage import PartitionRuntime, Stage
from tests.unit.domain.builders import ev

TOPIC = "events"
TP = TopicPartition(TOPIC, 0)


@dataclass
class _Batch:
    records: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    def append(self, key: bytes, value: bytes | None, timestamp: None) -> int:
        self.records.append((key, value))
        return len(self.records)


@dataclass
class _StateProducer:
    """Keeps every record batch sent to the changelog."""

    sent: list[tuple[int, list[tuple[bytes, bytes | None]]]] = field(default_factory=list)

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, partition: int) -> asyncio.Future[None]:
        self.sent.append((partition, batch.records))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _stage(on_first_flush: Any) -> tuple[Stage, _StateProducer, list[Any]]:
    """A stage owning partition 0 of TOPIC; `on_first_flush(stage)` runs while the first checkpoint flushes."""
    stage = Stage.__new__(Stage)
    state = _StateProducer()
    acked: list[Any] = []
    pending = [on_first_flush]

    async def flush() -> None:
        while pending:
            pending.pop()(stage)

    async def state_producer() -> _StateProducer:
        return state

    stage.name, stage.topics, stage.runtimes, stage.owned = "test", (TOPIC,), {}, {0}
    stage.busy, stage.checkpointing, stage.since_checkpoint, stage.last_checkpoint = 0, None, 0, 0.0
    stage.worker = SimpleNamespace(  # type: ignore[assignment]
        app=SimpleNamespace(consumer=SimpleNamespace(ack=acked.append)),
        sink=SimpleNamespace(flush=flush),
        clients=SimpleNamespace(state_producer=state_producer),
    )
    stage.table = SimpleNamespace(changelog_topic=SimpleNamespace(get_topic_name=lambda: "changelog"))  # type: ignore[assignment]
    stage.metrics = SimpleNamespace(  # type: ignore[assignment]
        checkpoints=SimpleNamespace(labels=lambda _: SimpleNamespace(inc=lambda: None))
    )
    return stage, state, acked


def _applied(stage: Stage, offset: int, *events: Any) -> PartitionRuntime:
    """Partition 0's runtime after applying `events` as the record at `offset`."""
    rt = stage.runtimes.get(0) or stage.runtimes.setdefault(
        0, PartitionRuntime(0, AcwPipeline(RulesConfig(), AggregationConfig()))
    )
    for e in events:
        rt.core.offer(e)
    rt.offsets[TOPIC] = offset
    rt.unacked.append(SimpleNamespace(offset=offset))
    return rt


def _keys(records: list[tuple[bytes, bytes | None]]) -> set[str]:
    return {orjson.loads(k) for k, _ in records}


def test_a_snapshot_skipped_by_a_rebalance_that_keeps_the_partition_is_written_by_the_next_checkpoint() -> None:

    stage, state, acked = _stage(lambda stage: stage.on_revoked({TP}))  # revoked while the checkpoint waits
    _applied(stage, 10, ev(0, "CONTACT_CONNECTED", "c1", agent="a1"), ev(60, "CONTACT_DISCONNECTED", "c1", agent="a1"))
    asyncio.run(stage._persist(stage._snapshot()))
    assert state.sent == [] and acked == []  # nothing written, nothing acked
    stage.on_assigned({TP})  # and assigned back: the core is kept

    _applied(stage, 11, ev(60, "AGENT_LOGGED_IN", agent="a2"))
    asyncio.run(stage._persist(stage._snapshot()))
    [(partition, records)] = state.sent
    assert partition == 0
    assert {"0|a|a1", "0|a|a2", "0|m"} <= _keys(records)  # a1's change from the skipped snapshot is not lost
    assert [m.offset for m in acked] == [10, 11]


def test_a_snapshot_of_a_partition_that_moved_away_is_neither_written_nor_acknowledged() -> None:
    stage, state, acked = _stage(lambda stage: (stage.on_revoked({TP}), stage.on_assigned(set())))
    _applied(stage, 10, ev(0, "AGENT_LOGGED_IN", agent="a1"))
    asyncio.run(stage._persist(stage._snapshot()))
    assert state.sent == [] and acked == [] and stage.runtimes == {}
