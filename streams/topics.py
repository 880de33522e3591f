"""The product's topics as one specification: names, partitions, replication, configs, schemas and keys.

`acw topics create` and the worker create topics from it, `acw topics verify` checks a cluster against it,
the worker registers its output schemas by it, `acw consume` decodes by it, and `asyncapi.yaml` is checked
against it, so the published contract cannot drift from what the code does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams import __version__
from streams.serialization import load_schema
from streams.settings import Settings

DAY_MS = 86_400_000
# Aggregate and pane records hold a window's whole key set; Kafka's default of 1 MB is too small for a big center.
LARGE_RECORDS = "4000000"


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the product needs it."""

    name: str
    role: str  # input, rekey, intervals, aggregates, alerts, dead_letter, panes
    summary: str
    key: str
    schema: str | None  # the `.avsc` of the values; None for a platform's JSON
    public: bool
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)
    value_format: str = "avro"  # avro (Confluent-framed with a registry) or a platform's JSON format

    @property
    def subject(self) -> str:
        """The registry subject of the values (TopicNameStrategy)."""
        return f"{self.name}-value"


OUTPUT_ROLES = ("intervals", "aggregates", "alerts", "agent_state", "dead_letter")


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the product reads or writes, inputs first."""
    s = settings
    p, rf = s.partitions, s.topic_replication_factor
    base = {"min.insync.replicas": str(s.topic_min_insync_replicas)}

    def retention(days: float) -> dict[str, str]:
        return {**base, "retention.ms": str(round(days * DAY_MS))}

    specs = [
        TopicSpec(
            topic,
            "input",
            "Call-lifecycle events in, one platform's format per topic."
            if fmt not in ("avro", "json")
            else "Call-lifecycle events in our CallEvent contract.",
            "The agent's routing key (agent id; an Amazon Connect agent ARN); anything else is re-keyed.",
            "call_event" if fmt in ("avro", "json") else None,
            True,
            p,
            rf,
            retention(s.retention_days),
            fmt,
        )
        for topic, fmt in s.inputs()
    ]
    specs += [
        TopicSpec(
            s.rekey_topic,
            "rekey",
            "Internal: translated events whose input key was not their agent's, sent to their agent's partition.",
            "agent_id",
            "call_event",
            False,
            p,
            rf,
            retention(s.retention_days),
        ),
        TopicSpec(
            s.panes_topic,
            "panes",
            "Internal: per-partition window panes and progress for the merge stage.",
            "scope|key|window, or the progress marker",
            None,
            False,
            p,
            rf,
            {**retention(1), "max.message.bytes": LARGE_RECORDS},
            "internal",
        ),
        TopicSpec(
            s.intervals_topic,
            "intervals",
            "One record per contact's ACW interval, final when written.",
            "agent_id",
            "acw_interval",
            True,
            p,
            rf,
            retention(s.retention_days),
        ),
        TopicSpec(
            s.aggregates_topic,
            "aggregates",
            "Window aggregates: updates while a window is open, then one final record; compacted by key.",
            "scope|key|window_start|window_size_seconds",
            "acw_aggregate",
            True,
            p,
            rf,
            {
                **retention(s.aggregates_retention_days),
                "cleanup.policy": "compact,delete",
                "max.message.bytes": LARGE_RECORDS,
            },
        ),
        TopicSpec(
            s.alerts_topic,
            "alerts",
            "Alert transitions: FIRING once when an episode starts, RESOLVED once when it clears.",
            "alert_id",
            "acw_alert",
            True,
            p,
            rf,
            retention(s.alerts_retention_days),
        ),
        TopicSpec(
            s.agent_state_topic,
            "agent_state",
            "Each agent's live state (status, contacts in ACW), written when it changes; compacted by agent, "
            "a tombstone at logout: read it from the beginning for the present.",
            "agent_id",
            "acw_agent_state",
            True,
            p,
            rf,
            # Tombstones stay a day, so a reader that started before a logout sees it.
            {**base, "cleanup.policy": "compact", "delete.retention.ms": str(DAY_MS), "segment.ms": str(DAY_MS // 4)},
        ),
        TopicSpec(
            s.dead_letter_topic,
            "dead_letter",
            "Input records that were not applied, with the reason; the source record's key and headers kept.",
            "the source record's key",
            "dead_letter",
            True,
            p,
            rf,
            retention(s.dead_letter_retention_days),
        ),
    ]
    return specs


def outputs(settings: Settings) -> dict[str, TopicSpec]:
    """The public output topics by role."""
    return {spec.role: spec for spec in topic_specs(settings) if spec.role in OUTPUT_ROLES}


def spec_for(settings: Settings, topic: str) -> TopicSpec | None:
    """The specification of a topic by name, if it is one of the product's."""
    return next((spec for spec in topic_specs(settings) if spec.name == topic), None)


def _alert_time(record: Mapping[str, Any]) -> int:
    return record["resolved_at"] if record["state"] == "RESOLVED" else record["started_at"]  # type: ignore[no-any-return]


# The event time an output record is stamped with as its Kafka timestamp.
EVENT_TIME: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "intervals": lambda r: r["ended_at"],  # type: ignore[no-any-return]
    "aggregates": lambda r: r["window_end"],  # type: ignore[no-any-return]
    "alerts": _alert_time,
    "agent_state": lambda r: r["as_of"],  # type: ignore[no-any-return]
}
SCHEMA_HEADER = "acw-schema"
VERSION_HEADER = "acw-version"


def output_headers(spec: TopicSpec) -> list[tuple[str, bytes]]:
    """The headers of every record on an output topic: its schema's full name and the producing version."""
    headers = [(VERSION_HEADER, f"acw-streams/{__version__}".encode())]
    if spec.schema is not None:
        schema = load_schema(spec.schema)
        headers.insert(0, (SCHEMA_HEADER, f"{schema['namespace']}.{schema['name']}".encode()))
    return headers
