"""The topic specification, and how `acw topics verify` words a cluster's differences from it."""

from __future__ import annotations

import datetime as dt

import pytest

from streams.consume import ConsumeError, parse_since
from streams.settings import ConfigError, Settings
from streams.topic_admin import differences
from streams.topics import outputs, spec_for, topic_specs


def test_every_topic_has_the_partitions_replication_and_retention_of_the_settings() -> None:
    s = Settings(partitions=12, topic_replication_factor=3, topic_min_insync_replicas=2, retention_days=3)
    specs = {spec.role: spec for spec in topic_specs(s)}
    assert set(specs) == {"input", "rekey", "panes", "intervals", "aggregates", "alerts", "agent_state", "dead_letter"}
    for spec in specs.values():
        assert (spec.partitions, spec.replication_factor) == (12, 3)
        assert spec.configs["min.insync.replicas"] == "2"
    assert specs["intervals"].configs["retention.ms"] == str(3 * 86_400_000)
    assert specs["aggregates"].configs["cleanup.policy"] == "compact,delete"
    assert specs["aggregates"].configs["retention.ms"] == str(35 * 86_400_000)
    assert specs["agent_state"].configs["cleanup.policy"] == "compact"  # the present, whatever its age
    assert "retention.ms" not in specs["agent_state"].configs


def test_internal_topics_live_under_the_application_id_and_public_ones_under_acw() -> None:
    s = Settings(app_id="cc-eu")
    for spec in topic_specs(s):
        if spec.public and spec.role != "input":
            assert spec.name.startswith("acw.")
        elif not spec.public:
            assert spec.name.startswith("cc-eu-")
    assert set(outputs(s)) == {"intervals", "aggregates", "alerts", "agent_state", "dead_letter"}
    assert spec_for(s, "acw.intervals").subject == "acw.intervals-value"  # type: ignore[union-attr]
    assert spec_for(s, "nope") is None


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"topic_replication_factor": 0}, "ACW_TOPIC_REPLICATION_FACTOR"),
        ({"topic_replication_factor": 2, "topic_min_insync_replicas": 3}, "ACW_TOPIC_MIN_INSYNC_REPLICAS"),
        ({"aggregates_retention_days": 0.01}, "ACW_AGGREGATES_RETENTION_DAYS"),  # shorter than the 1h window
        ({"dead_letter_retention_days": 0}, "ACW_DEAD_LETTER_RETENTION_DAYS"),
        ({"schema_registry_url": "ftp://x"}, "ACW_SCHEMA_REGISTRY_URL"),
        ({"schema_registry_url": "http://u:secret@x"}, "ACW_SCHEMA_REGISTRY_URL"),
        ({"schema_registry_username": "u"}, "ACW_SCHEMA_REGISTRY_USERNAME"),
        ({"schema_registry_url": "http://x", "schema_registry_username": "u"}, "ACW_SCHEMA_REGISTRY_PASSWORD"),
        ({"schema_registry_url": "http://x", "schema_registry_cafile": "/etc/hosts"}, "ACW_SCHEMA_REGISTRY_CAFILE"),
    ],
)
def test_bad_topic_and_registry_settings_name_the_variable_and_never_the_secret(
    kwargs: dict[str, object], setting: str
) -> None:
    with pytest.raises(ConfigError, match=setting) as info:
        Settings(**kwargs)  # type: ignore[arg-type]
    assert "secret" not in str(info.value)


def test_the_registry_password_stays_out_of_the_settings_repr() -> None:
    s = Settings(schema_registry_url="https://r", schema_registry_username="u", schema_registry_password="pw-42")
    assert "pw-42" not in repr(s)


def _as_found(settings: Settings) -> dict[str, dict[str, object]]:
    return {
        spec.name: {
            "partitions": spec.partitions,
            "replication_factor": spec.replication_factor,
            "configs": {**spec.configs, "segment.bytes": "1073741824"},
        }
        for spec in topic_specs(settings)
    }


def test_a_cluster_as_specified_has_no_differences_and_each_difference_names_its_setting() -> None:
    s = Settings()
    found = _as_found(s)
    assert differences(topic_specs(s), found) == []
    found[s.input_topic]["partitions"] = 3
    found[s.aggregates_topic]["configs"]["cleanup.policy"] = "compact"  # type: ignore[index]
    found[s.alerts_topic]["configs"]["retention.ms"] = "1000"  # type: ignore[index]
    found[s.intervals_topic]["replication_factor"] = 0
    del found[s.dead_letter_topic]
    problems = differences(topic_specs(s), found)
    assert problems == [
        f"{s.input_topic}: 3 partitions, needs 6 (ACW_PARTITIONS; an agent's events and state must stay in one "
        "partition)",
        f"{s.intervals_topic}: replication factor 0, needs 1 (ACW_TOPIC_REPLICATION_FACTOR)",
        f"{s.aggregates_topic}: cleanup.policy=compact, needs compact,delete",
        f"{s.alerts_topic}: retention.ms=1000, needs {30 * 86_400_000} (ACW_ALERTS_RETENTION_DAYS)",
        f"{s.dead_letter_topic}: missing (acw topics create makes it)",
    ]
    found[s.aggregates_topic]["configs"]["cleanup.policy"] = "delete,compact"  # type: ignore[index]
    assert not any("cleanup.policy" in p for p in differences(topic_specs(s), found))


NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", NOW.timestamp() * 1000 - 900_000),
        ("1.5h", NOW.timestamp() * 1000 - 5_400_000),
        ("2026-12-01T08:00:00Z", dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC).timestamp() * 1000),
        ("2026-12-01T09:00:00+01:00", dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC).timestamp() * 1000),
        ("2026-12-01T08:00", dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC).timestamp() * 1000),
        ("1767225600000", 1767225600000),
    ],
)
def test_since_takes_iso_times_epoch_ms_and_durations_back(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == round(expected)


def test_a_since_that_is_none_of_these_says_what_it_takes() -> None:
    with pytest.raises(ConsumeError, match="ISO-8601, epoch ms or a duration"):
        parse_since("yesterday", NOW)
