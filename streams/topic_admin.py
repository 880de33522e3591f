"""`acw topics create` and `acw topics verify`: the cluster's topics made, and checked, as `streams.topics` says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from streams.connection import client_options
from streams.settings import Settings
from streams.topics import TopicSpec, topic_specs


def new_topic(spec: TopicSpec) -> NewTopic:
    """The admin-client request that creates one topic as specified."""
    return NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=dict(spec.configs))


async def create_topics(settings: Settings) -> list[str]:
    """Create missing topics; returns the names created."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        for spec in topic_specs(settings):
            if spec.name in existing:
                continue
            try:
                await admin.create_topics([new_topic(spec)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return created


async def describe(settings: Settings, names: list[str]) -> dict[str, dict[str, Any]]:
    """What the cluster has for these topics: partitions, replication factor and configs (absent: not there)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [n for n in names if n in existing]
        if not present:
            return {}
        found: dict[str, dict[str, Any]] = {}
        for topic in await admin.describe_topics(present):
            partitions = topic["partitions"]
            found[topic["topic"]] = {
                "partitions": len(partitions),
                "replication_factor": min((len(p["replicas"]) for p in partitions), default=0),
                "configs": {},
            }
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
        for response in await admin.describe_configs(resources):
            for resource in response.resources:
                name, entries = resource[3], resource[4]
                if name in found:
                    found[name]["configs"] = {entry[0]: entry[1] for entry in entries}
        return found
    finally:
        await admin.close()


def differences(specs: list[TopicSpec], found: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each way the cluster's topics differ from what the product needs, as a sentence naming the setting."""
    out = []
    for spec in specs:
        have = found.get(spec.name)
        if have is None:
            out.append(f"{spec.name}: missing (acw topics create makes it)")
            continue
        if have["partitions"] != spec.partitions:
            why = (
                "an agent's events and state must stay in one partition" if spec.role == "input" else "co-partitioning"
            )
            out.append(f"{spec.name}: {have['partitions']} partitions, needs {spec.partitions} (ACW_PARTITIONS; {why})")
        if have["replication_factor"] < spec.replication_factor:
            out.append(
                f"{spec.name}: replication factor {have['replication_factor']}, needs {spec.replication_factor} "
                "(ACW_TOPIC_REPLICATION_FACTOR)"
            )
        for key, wanted in spec.configs.items():
            actual = have["configs"].get(key)
            if not _same(key, actual, wanted):
                out.append(f"{spec.name}: {key}={actual}, needs {wanted}{_setting_of(key, spec)}")
    return out


def _same(key: str, actual: str | None, wanted: str) -> bool:
    if actual is None:
        return False
    if key == "cleanup.policy":
        return set(actual.split(",")) == set(wanted.split(","))
    return actual == wanted


def _setting_of(key: str, spec: TopicSpec) -> str:
    """The setting that decides a config, for the message."""
    if key == "min.insync.replicas":
        return " (ACW_TOPIC_MIN_INSYNC_REPLICAS)"
    if key == "retention.ms":
        named = {
            "aggregates": "ACW_AGGREGATES_RETENTION_DAYS",
            "alerts": "ACW_ALERTS_RETENTION_DAYS",
            "dead_letter": "ACW_DEAD_LETTER_RETENTION_DAYS",
            "panes": None,
        }.get(spec.role, "ACW_RETENTION_DAYS")
        return f" ({named})" if named else ""
    return ""


async def verify_topics(settings: Settings) -> list[str]:
    """The differences between the cluster's topics and the product's specification (empty: all fine)."""
    specs = topic_specs(settings)
    return differences(specs, await describe(settings, [s.name for s in specs]))
