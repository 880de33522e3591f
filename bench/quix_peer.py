"""The peer for the benchmark: the same ACW join and 15-minute per-team aggregation, written with Quix Streams.

    python -m bench.quix_peer --bootstrap HOST:PORT --input TOPIC --prefix P --result FILE

What a user would write with Quix: a stateful `apply` keyed by agent that runs the ACW rules (our own
`intervals.apply_event`, so the logic is the same and only the framework differs) and emits intervals;
`set_timestamp` to the interval's end; `group_by` team and a 15-minute tumbling window reducing the
count and the ACW sum, emitted when final. Quix's state is a RocksDB store with a changelog, like ours.
The input must be in event-time order per agent (as the simulator writes it): the peer has no reorder
buffer. Writes {first_wall, last_wall, events} to --result when no message came for --idle seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from quixstreams import Application

from streams.domain.events import event_from_record
from streams.domain.intervals import AgentState, apply_event

MAX_ACW_MS = 1_800_000
CONTACT_TTL_MS = 12 * 3_600_000
DEDUP_MS = 3_600_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--prefix", required=True, help="consumer group and output topic prefix")
    parser.add_argument("--state-dir", default=".cache/quix-state")
    parser.add_argument("--result", required=True)
    parser.add_argument("--idle", type=float, default=15.0)
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.prefix,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    source = app.topic(
        args.input,
        key_deserializer="str",
        value_deserializer="json",
        timestamp_extractor=lambda value, headers, ts, kind: int(value["occurred_at"]),
    )
    intervals_topic = app.topic(f"{args.prefix}-intervals", value_serializer="json")
    teams_topic = app.topic(f"{args.prefix}-team-15m", value_serializer="json")
    seen = {"events": 0, "first": 0.0, "last": 0.0}

    def join(value: dict[str, Any], state: Any) -> list[dict[str, Any]]:
        if not seen["events"]:
            seen["first"] = time.time()
        seen["events"] += 1
        seen["last"] = time.time()
        try:
            event = event_from_record(value)
        except Exception:
            return []
        data = state.get("agent")
        agent = AgentState.from_dict(event.agent_id, data) if data else AgentState(event.agent_id)
        t = event.occurred_at_ms
        if not agent.remember(event.event_id, t, t - DEDUP_MS):
            return []
        closed = apply_event(agent, event, MAX_ACW_MS, CONTACT_TTL_MS)
        state.set("agent", agent.to_dict())
        return [interval.to_record() for interval in closed]

    def team_of(value: dict[str, Any]) -> str:
        return value["team_id"] or "unknown"

    def add(total: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        total["contacts"] += 1
        total["acw_sum_seconds"] += value["acw_seconds"]
        return total

    def start(value: dict[str, Any]) -> dict[str, Any]:
        return add({"contacts": 0, "acw_sum_seconds": 0.0}, value)

    sdf = app.dataframe(source)
    sdf = sdf.apply(join, stateful=True, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value["ended_at"])
    sdf.to_topic(intervals_topic)
    teams = sdf.group_by(team_of, name="team").tumbling_window(duration_ms=900_000, grace_ms=65_000)
    teams = teams.reduce(add, start).final()
    teams.to_topic(teams_topic)
    app.run(timeout=args.idle, collect=False)
    with open(args.result, "w") as f:
        json.dump(seen, f)


if __name__ == "__main__":
    main()
