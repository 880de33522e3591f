"""The output sink: Kafka's default partitioning, per-partition order across batches, and waiting for delivery."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.worker.kafka_sink import murmur2
from tests.support.seeds import logged_seed
from tests.support.worker_fakes import offline_worker


def test_records_keep_their_order_per_partition_while_the_producer_is_slow(tmp_path: Path) -> None:
    rng = random.Random(logged_seed("keys and batch sizes"))
    ow = offline_worker(tmp_path, {"ACW_PARTITIONS": "6"})
    ow.outputs.partitions, ow.outputs.batch_limit = 6, 7  # small record batches: several per partition
    sink = ow.worker.sink
    sent: list[tuple[bytes, bytes]] = []

    async def submit(batches: range) -> None:
        for b in batches:
            out = sink.outputs(b % 6)
            for i in range(rng.randrange(1, 30)):
                key, value = f"agent-{rng.randrange(50)}".encode(), f"{b}:{i}".encode()
                out.call_event(key, value)
                sent.append((key, value))
            await sink.submit(out)

    async def run() -> None:
        ow.outputs.gate = asyncio.Event()  # the producer takes nothing at first
        await submit(range(5))
        flushed = asyncio.ensure_future(sink.flush())
        for _ in range(10):
            await asyncio.sleep(0)
        assert not flushed.done()  # nothing was delivered yet
        ow.outputs.gate.set()
        await submit(range(5, 40))
        await flushed
        await sink.flush()

    asyncio.run(run())
    partitioner, partitions = DefaultPartitioner(), list(range(6))
    for p in partitions:
        got = [(m.key, m.value) for m in ow.outputs.logs[ow.settings.rekey_topic, p]]
        assert got == [(k, v) for k, v in sent if partitioner(k, partitions, partitions) == p]
    assert sum(len(log) for log in ow.outputs.logs.values()) == len(sent)


def test_a_delivery_that_failed_makes_the_flush_fail(tmp_path: Path) -> None:
    from streams.worker.kafka_sink import OutputsLost

    ow = offline_worker(tmp_path)
    sink = ow.worker.sink

    async def run() -> str:
        ow.outputs.fail_deliveries = True
        out = sink.outputs(0)
        out.call_event(b"agent-1", b"x")
        await sink.submit(out)
        try:
            await sink.flush()
        except OutputsLost as exc:
            return str(exc)
        return ""

    assert "broker gone" in asyncio.run(run())


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=120))
def test_murmur2_places_keys_where_kafkas_default_partitioner_does(key: bytes) -> None:
    from aiokafka.partitioner import murmur2 as kafkas

    assert murmur2(key) == kafkas(key)
