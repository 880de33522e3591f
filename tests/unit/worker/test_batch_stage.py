"""The worker's batch path, checkpoint and recovery, on the product's own stages with in-memory Kafka clients.

Every test compares with `acw replay` of the same events, so "nothing lost, nothing changed" is checked
record by record: intervals and final window aggregates, whatever the batch sizes, a lost output batch,
a crash and recovery from the changelog, or a revocation in the middle of a batch.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.domain.events import CallEvent
from streams.replay import replay
from streams.serialization import encode_call_event, output_decoder
from streams.traffic import TrafficShape, end_of_input_events, generate
from streams.worker.core_client import CoreProcessDied
from tests.support.seeds import logged_seed
from tests.support.worker_fakes import Message, OfflineWorker, feed, offline_worker

SHAPE = TrafficShape(agents=12, contacts_per_agent=6, stagger_ms=3_600_000)


def _events() -> list[CallEvent]:
    events = generate(SHAPE, seed=3)
    return events + end_of_input_events(events[-1].occurred_at_ms + 4 * 3_600_000, 1)


def _messages(events: list[CallEvent], topic: str) -> list[Message]:
    return [
        Message(topic, 0, i, e.agent_id.encode(), encode_call_event(e, "json"), e.occurred_at_ms)
        for i, e in enumerate(events)
    ]


def _replayed(events: list[CallEvent], ow: OfflineWorker, tmp_path: Path) -> tuple[dict[str, Any], dict[Any, Any]]:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(encode_call_event(e, "json") + b"\n" for e in events))
    out = tmp_path / "replay"
    replay([path], out, ow.settings.rules(), aggregation=ow.settings.aggregation())
    intervals = [orjson.loads(line) for line in (out / "intervals.jsonl").read_bytes().splitlines()]
    aggregates = [orjson.loads(line) for line in (out / "aggregates.jsonl").read_bytes().splitlines()]
    return _index(intervals, _interval_key), _index(aggregates, _aggregate_key)


def _interval_key(r: dict[str, Any]) -> str:
    return str(r["interval_id"])


def _aggregate_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["scope"], r["key"], r["window_start"], r["window_size_seconds"])


def _index(records: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    """Records by key; a repeat (at-least-once) must be identical to the first."""
    out: dict[Any, dict[str, Any]] = {}
    for r in records:
        assert out.setdefault(key(r), r) == r, f"a repeated record differs: {key(r)}"
    return out


async def _run_merge(ow: OfflineWorker, done: int) -> int:
    """Hand the merge stage the pane records produced since `done`; returns how many there are now."""
    panes = ow.outputs.records(ow.settings.panes_topic)
    if len(panes) > done:
        await feed(ow.worker.merge, panes[done:], [500])
    return len(panes)


def _worker_outputs(*workers: OfflineWorker) -> tuple[dict[str, Any], dict[Any, Any]]:
    intervals, finals = [], []
    decode_interval = output_decoder("acw_interval", framed=False)
    decode_aggregate = output_decoder("acw_aggregate", framed=False)
    for ow in workers:
        intervals += [decode_interval(m.value or b"") for m in ow.outputs.records(ow.settings.intervals_topic)]
        aggregates = [decode_aggregate(m.value or b"") for m in ow.outputs.records(ow.settings.aggregates_topic)]
        finals += [a for a in aggregates if a["final"]]
    return _index(intervals, _interval_key), _index(finals, _aggregate_key)


def _batch_sizes(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice((1, 2, 7, 50, 400)) for _ in range(64)]


def test_batches_of_any_size_give_the_outputs_of_replay(tmp_path: Path, processes: dict[str, str]) -> None:
    sizes = _batch_sizes(logged_seed("batch sizes"))
    ow = offline_worker(tmp_path, processes)
    events = _events()

    async def run() -> None:
        ow.assign({0})
        await feed(ow.worker.intervals, _messages(events, ow.settings.input_topic), sizes)
        await ow.checkpoint()
        await _run_merge(ow, 0)
        await ow.checkpoint()

    asyncio.run(run())
    intervals, aggregates = _replayed(events, ow, tmp_path)
    got_intervals, got_aggregates = _worker_outputs(ow)
    assert got_intervals == intervals and len(intervals) > 50
    assert got_aggregates == aggregates and {k[0] for k in aggregates} == {"AGENT", "TEAM", "QUEUE", "CENTER"}
    timestamps = [m.timestamp for m in ow.outputs.records(ow.settings.intervals_topic)]
    assert all(t is not None for t in timestamps)  # stamped with event time, not left to the broker
    acked = [m.offset for m in ow.acked if m.topic == ow.settings.input_topic]
    assert sorted(acked) == list(range(len(events)))  # every input record acknowledged, once


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [(1_772_438_400_123, 1_772_438_400_123), (-1, None)],  # -1: the record has none; the broker stamps it
)
def test_a_dead_letter_keeps_its_source_records_key_headers_and_timestamp(
    tmp_path: Path, timestamp: int, expected: int | None, processes: dict[str, str]
) -> None:
    ow = offline_worker(tmp_path, processes)
    topic = ow.settings.input_topic
    bad = Message(topic, 0, 0, b"a1", b"{not json", timestamp, [("trace", b"t-1"), ("acw-origin", b"x")])

    async def run() -> None:
        ow.assign({0})
        await feed(ow.worker.intervals, [bad], [1])

    asyncio.run(run())
    [letter] = ow.outputs.records(ow.settings.dead_letter_topic)
    assert letter.key == b"a1"
    assert letter.timestamp == expected  # the source record's, in ms, as aiokafka gives it
    assert ("trace", b"t-1") in letter.headers and ("acw-origin", b"x") not in letter.headers
    assert [m.offset for m in ow.acked] == []  # acknowledged only once a checkpoint covers it


def test_lost_output_batch_writes_no_state_and_a_restart_produces_it_again(
    tmp_path: Path, processes: dict[str, str]
) -> None:
    """A failure between sending outputs and writing state: the state stays behind, the restart repeats."""
    events = _events()
    half = len(events) // 2
    first = offline_worker(tmp_path / "a", processes)

    async def crash() -> None:
        first.assign({0})
        messages = _messages(events, first.settings.input_topic)
        await feed(first.worker.intervals, messages[:half], [100])
        await first.checkpoint()
        first.outputs.fail_deliveries = True  # the broker never takes the next outputs
        await feed(first.worker.intervals, messages[half:], [100])
        await first.checkpoint()

    asyncio.run(crash())
    assert first.failures, "the worker did not stop when its outputs were lost"
    acked = {m.offset for m in first.acked if m.topic == first.settings.input_topic}
    assert max(acked) < half  # nothing past the lost outputs was acknowledged

    second = offline_worker(tmp_path / "b", processes, changelog=first.changelog())

    async def restart() -> None:
        second.assign({0})
        messages = _messages(events, second.settings.input_topic)
        resume = min(set(range(len(events))) - acked)  # Kafka redelivers from the first unacknowledged offset
        await feed(second.worker.intervals, messages[resume:], [100])
        await second.checkpoint()

    asyncio.run(restart())
    intervals, _ = _replayed(events, second, tmp_path)
    got, _ = _worker_outputs(first, second)
    assert got == intervals


@pytest.mark.parametrize("assigned_back", [True, False])
def test_revocation_in_the_middle_of_a_batch(tmp_path: Path, assigned_back: bool) -> None:
    """Revoked while a batch is applied: nothing of it is checkpointed or acknowledged until the partition is back."""
    events = _events()
    ow = offline_worker(tmp_path / "a")
    messages = _messages(events, ow.settings.input_topic)

    intake = ow.worker.intervals.intakes[ow.settings.input_topic]
    read = intake.read_event  # the per-record read of our own contract

    def read_and_rebalance(data: Any, now_ms: int) -> Any:
        if data is messages[150].value:  # half way through the second batch
            ow.revoke({0})
            ow.assign({0} if assigned_back else set())
        return read(data, now_ms)

    async def run() -> None:
        ow.assign({0})
        await feed(ow.worker.intervals, messages[:100], [100])
        await ow.checkpoint()
        intake.read_event = read_and_rebalance  # type: ignore[method-assign]
        await feed(ow.worker.intervals, messages[100:200], [100])
        await ow.checkpoint()

    asyncio.run(run())
    acked = sorted(m.offset for m in ow.acked if m.topic == ow.settings.input_topic)
    if assigned_back:  # the core was kept: the batch is checkpointed and acknowledged with the next checkpoint
        assert acked == list(range(200))
        restored = offline_worker(tmp_path / "b", changelog=ow.changelog())
        rt = asyncio.run(restored.worker.intervals.runtime(0))
        assert rt is not None
        assert rt.offsets[ow.settings.input_topic] == 199
    else:  # moved away: its new owner restores the last checkpoint and the batch is redelivered there
        assert acked == list(range(100))
        assert ow.worker.intervals.runtimes == {}


def test_recovery_from_the_changelog_continues_where_the_checkpoint_left_off(
    tmp_path: Path, processes: dict[str, str]
) -> None:
    events = _events()
    cut = len(events) // 3
    first = offline_worker(tmp_path / "a", processes)

    async def before() -> None:
        first.assign({0})
        await feed(first.worker.intervals, _messages(events, first.settings.input_topic)[:cut], [37])
        await first.checkpoint()
        await _run_merge(first, 0)
        await first.checkpoint()

    asyncio.run(before())
    second = offline_worker(tmp_path / "b", processes, changelog=first.changelog())
    _take_over_and_compare(first, second, events, cut, tmp_path)


def _take_over_and_compare(
    first: OfflineWorker, second: OfflineWorker, events: list[CallEvent], start: int, tmp_path: Path
) -> None:
    """The second worker takes partition 0 over from `start`; both workers' outputs together equal replay's."""
    # The merge stage's panes so far were consumed by the first worker; the second continues the pane log.
    second.outputs.logs[second.settings.panes_topic, 0] = list(first.outputs.logs[first.settings.panes_topic, 0])
    done = len(second.outputs.logs[second.settings.panes_topic, 0])

    async def after() -> None:
        second.assign({0})
        await feed(second.worker.intervals, _messages(events, second.settings.input_topic)[start:], [37])
        await second.checkpoint()
        await _run_merge(second, done)
        await second.checkpoint()

    asyncio.run(after())
    intervals, aggregates = _replayed(events, second, tmp_path)
    got_intervals, got_aggregates = _worker_outputs(first, second)
    assert got_intervals == intervals
    assert got_aggregates == aggregates


def _stale_store(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A local store that took the last checkpoint's meta but none of its entries: each entry as it was `before`.

    That is what a standby taking over kept when Faust's standby buffer lost the end of a checkpoint batch.
    """
    store: dict[str, dict[str, Any]] = {}
    for topic, latest in after.items():
        store[topic] = dict(before.get(topic, {}))
        store[topic]["0|m"] = latest["0|m"]
    return store


@pytest.mark.parametrize("stages", [("acw-intervals",), ("acw-merge",), ("acw-intervals", "acw-merge")])
def test_a_local_store_that_lost_a_checkpoints_entries_is_restored_from_the_changelog(
    tmp_path: Path, stages: tuple[str, ...], processes: dict[str, str]
) -> None:
    """Without the fingerprint check the restore keeps the old entries with the new offsets: events are lost."""
    events = _events()
    cuts = (len(events) // 4, len(events) // 2)
    first = offline_worker(tmp_path / "a", processes)
    changelogs = []

    async def before() -> None:
        first.assign({0})
        done = 0
        for start, stop in ((0, cuts[0]), cuts):
            await feed(first.worker.intervals, _messages(events, first.settings.input_topic)[start:stop], [37])
            await first.checkpoint()
            done = await _run_merge(first, done)
            await first.checkpoint()
            changelogs.append(first.changelog())

    asyncio.run(before())
    old, latest = changelogs
    damaged = {t for t in latest if any(t.endswith(f"{stage}-state-changelog") for stage in stages)}
    assert damaged, f"no changelog of {stages} in {sorted(latest)}"
    local = {t: (_stale_store(old, latest)[t] if t in damaged else latest[t]) for t in latest}
    assert any(local[t] != latest[t] for t in damaged), "the checkpoints between the cuts changed nothing"
    second = offline_worker(tmp_path / "b", processes, changelog=latest, local=local)
    _take_over_and_compare(first, second, events, cuts[1], tmp_path)
    rebuilt = {
        stage.name: second.worker.metrics.restores_from_changelog.labels(stage.name)._value.get()
        for stage in second.worker.stages
    }
    assert rebuilt == {stage.name: float(stage.name in stages) for stage in second.worker.stages}


@pytest.mark.parametrize("assigned_back", [False, True])
def test_a_partition_moved_away_while_its_changelog_is_read_is_not_kept(
    tmp_path: Path, processes: dict[str, str], assigned_back: bool
) -> None:
    """A restore that awaits the changelog across a rebalance is dropped, or redone when the partition is back."""
    events = _events()
    cut = len(events) // 2
    first = offline_worker(tmp_path / "a", processes)

    async def before() -> None:
        first.assign({0})
        await feed(first.worker.intervals, _messages(events, first.settings.input_topic)[: cut // 2], [37])
        await first.checkpoint()
        old = first.changelog()
        await feed(first.worker.intervals, _messages(events, first.settings.input_topic)[cut // 2 : cut], [37])
        await first.checkpoint()
        changelogs.extend([old, first.changelog()])

    changelogs: list[dict[str, dict[str, Any]]] = []
    asyncio.run(before())
    old, latest = changelogs
    topic = next(t for t in latest if t.endswith("acw-intervals-state-changelog"))
    second = offline_worker(
        tmp_path / "b", processes, changelog=latest, local={topic: _stale_store(old, latest)[topic]}
    )
    stage = second.worker.intervals
    read_log = second.worker.clients.read_log
    reads = 0

    async def read_across_a_rebalance(topic: str, partition: int) -> Any:
        nonlocal reads
        reads += 1
        if reads == 1:  # the first read: the partition moves away (and maybe back) meanwhile
            second.revoke({0})
            second.assign({0} if assigned_back else set())
        async for record in read_log(topic, partition):
            yield record

    second.worker.clients.read_log = read_across_a_rebalance  # type: ignore[method-assign]

    async def after() -> None:
        second.assign({0})
        await feed(stage, _messages(events, second.settings.input_topic)[cut:], [len(events)])

    asyncio.run(after())
    intervals = second.outputs.records(second.settings.intervals_topic)
    if assigned_back:  # restored again after the rebalance, from the changelog, and the batch applied
        assert reads == 2 and 0 in stage.runtimes and intervals
        assert stage.runtimes[0].offsets[second.settings.input_topic] == len(events) - 1
    else:  # dropped: not kept, nothing applied or sent; the new owner restores and processes the records
        assert reads == 1 and stage.runtimes == {} and not intervals


CORE_PROCESS = {"ACW_WORKER_PROCESSES": "2"}


@pytest.mark.parametrize("assigned_back", [True, False])
def test_revocation_while_batches_wait_in_the_core_process(tmp_path: Path, assigned_back: bool) -> None:
    """Revoked between sending batches and reading their replies: as a revocation inside a batch in one process."""
    events = _events()
    ow = offline_worker(tmp_path / "a", CORE_PROCESS)
    messages = _messages(events, ow.settings.input_topic)
    stage = ow.worker.intervals

    async def run() -> None:
        ow.assign({0})
        await feed(stage, messages[:100], [100])
        await ow.checkpoint()
        for start in (100, 150):  # sent, not waited for
            batch = messages[start : start + 50]
            await stage.consume_batch(batch[0].tp, batch)
        ow.revoke({0})
        ow.assign({0} if assigned_back else set())
        await stage.settle()
        await ow.checkpoint()

    asyncio.run(run())
    acked = sorted(m.offset for m in ow.acked if m.topic == ow.settings.input_topic)
    if assigned_back:
        assert acked == list(range(200))
        restored = offline_worker(tmp_path / "b", CORE_PROCESS, changelog=ow.changelog())
        rt = asyncio.run(restored.worker.intervals.runtime(0))
        assert rt is not None
        assert rt.offsets[ow.settings.input_topic] == 199
    else:
        assert acked == list(range(100))
        assert stage.runtimes == {}


def test_a_snapshot_behind_batches_in_flight_covers_them_and_follows_their_outputs(tmp_path: Path) -> None:
    events = _events()
    ow = offline_worker(tmp_path, CORE_PROCESS)
    messages = _messages(events, ow.settings.input_topic)
    stage = ow.worker.intervals
    send = ow.state.send_batch
    outputs_at_state_write: list[int] = []

    async def send_state(batch: Any, topic: str, partition: int) -> Any:
        outputs_at_state_write.append(len(ow.outputs.records(ow.settings.intervals_topic)))
        return await send(batch, topic, partition)

    ow.state.send_batch = send_state  # type: ignore[method-assign]

    async def run() -> None:
        ow.assign({0})
        for start in range(0, len(messages), 40):  # none waited for: the snapshot queues behind them all
            batch = messages[start : start + 40]
            await stage.consume_batch(batch[0].tp, batch)
        await ow.checkpoint()

    asyncio.run(run())
    intervals, _ = _replayed(events, ow, tmp_path)
    assert len(ow.outputs.records(ow.settings.intervals_topic)) == len(intervals) > 50
    assert outputs_at_state_write and set(outputs_at_state_write) == {len(intervals)}  # outputs before state
    assert sorted(m.offset for m in ow.acked) == list(range(len(events)))
    [meta] = [v for k, v in ow.changelog()[stage.table.changelog_topic.get_topic_name()].items() if k == "0|m"]
    assert meta["offsets"] == {ow.settings.input_topic: len(events) - 1}


def test_a_core_process_that_dies_stops_the_worker_and_no_later_state_is_written(tmp_path: Path) -> None:
    events = _events()
    ow = offline_worker(tmp_path, CORE_PROCESS)
    messages = _messages(events, ow.settings.input_topic)
    stage = ow.worker.intervals
    half = len(messages) // 2

    async def run() -> None:
        ow.assign({0})
        await feed(stage, messages[:half], [50])
        await ow.checkpoint()
        written = ow.changelog()
        os.kill(stage.client.pid, signal.SIGKILL)
        with pytest.raises(CoreProcessDied):
            for _ in range(100):  # until the reader has seen the end of the socket
                await feed(stage, messages[half:], [50])
                await asyncio.sleep(0.05)
        await ow.checkpoint()
        assert ow.changelog() == written

    asyncio.run(run())
    assert ow.failures and isinstance(ow.failures[0], CoreProcessDied)
    assert max(m.offset for m in ow.acked) == half - 1  # what follows the last checkpoint is redelivered


@pytest.mark.parametrize(("before", "after"), [("1", "2"), ("2", "1")])
def test_a_checkpoint_of_either_worker_shape_is_restored_by_the_other(tmp_path: Path, before: str, after: str) -> None:
    events = _events()
    cut = len(events) // 3
    first = offline_worker(tmp_path / "a", {"ACW_WORKER_PROCESSES": before})

    async def run() -> None:
        first.assign({0})
        await feed(first.worker.intervals, _messages(events, first.settings.input_topic)[:cut], [37])
        await first.checkpoint()
        await _run_merge(first, 0)
        await first.checkpoint()

    asyncio.run(run())
    second = offline_worker(tmp_path / "b", {"ACW_WORKER_PROCESSES": after}, changelog=first.changelog())
    _take_over_and_compare(first, second, events, cut, tmp_path)
