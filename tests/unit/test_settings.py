"""Settings from ACW_* variables: defaults, conversion, and errors that name the setting."""

from __future__ import annotations

import pytest

from streams.settings import ConfigError, Settings


def test_defaults_and_conversion() -> None:
    s = Settings.from_env({"ACW_PARTITIONS": "3", "ACW_MAX_ACW_SECONDS": "600", "HOME": "/x"})
    assert (s.partitions, s.max_acw_seconds, s.input_topic) == (3, 600.0, "call-events")
    assert s.rules().max_acw_ms == 600_000 and s.rules().allowed_lateness_ms == 5_000


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ACW_PARTITIONS": "many"}, "ACW_PARTITIONS"),
        ({"ACW_PARTITIONS": "0"}, "ACW_PARTITIONS"),
        ({"ACW_INPUT_FORMAT": "xml"}, "ACW_INPUT_FORMAT"),
        ({"ACW_MAX_ACW_SECONDS": "-1"}, "ACW_MAX_ACW_SECONDS"),
        ({"ACW_STORE": "redis://"}, "ACW_STORE"),
        ({"ACW_METRICS_PORT": "70000"}, "ACW_METRICS_PORT"),
        ({"ACW_TYPO_SETTING": "1"}, "ACW_TYPO_SETTING"),
        ({"ACW_DEDUP_WINDOW_SECONDS": "1"}, "ACW_DEDUP_WINDOW_SECONDS"),
        ({"ACW_CORE": "fast"}, "ACW_CORE"),
        ({"ACW_WORKER_PROCESSES": "3"}, "ACW_WORKER_PROCESSES"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_window_and_alert_settings_name_the_bad_variable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from streams.settings import ConfigError, Settings

    with pytest.raises(ConfigError, match="ACW_WINDOWS"):
        Settings.from_env({"ACW_WINDOWS": "1h/7m"})
    with pytest.raises(ConfigError, match="ACW_BENCHMARK"):
        Settings.from_env({"ACW_BENCHMARK": "retail"})
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: slow-team\n    kind: avg_over\n    threshold: -3\n")
    with pytest.raises(ConfigError, match=r"ACW_ALERT_RULES: .*rule 'slow-team': 'threshold'"):
        Settings.from_env({"ACW_ALERT_RULES": str(rules)})
    with pytest.raises(ConfigError, match="ACW_ALERT_RULES: cannot read"):
        Settings.from_env({"ACW_ALERT_RULES": str(tmp_path / "missing.yaml")})
    rules.write_text("rules:\n  - name: slow-team\n    kind: avg_over\n    scope: TEAM\n    threshold: 300\n")
    names = [r.name for r in Settings.from_env({"ACW_ALERT_RULES": str(rules)}).aggregation().rules]
    assert "slow-team" in names and "team-acw-avg" in names


def test_scopes_leave_out_window_presets_they_do_not_aggregate_and_refuse_unknown_scopes() -> None:
    settings = Settings.from_env({"ACW_SCOPES": "team", "ACW_WINDOWS": "15m"})
    names = {r.name for r in settings.aggregation().rules}
    assert "team-acw-avg" in names and "agent-acw-avg" not in names and "agent-stuck-in-acw" in names
    with pytest.raises(ConfigError, match="ACW_SCOPES"):
        Settings.from_env({"ACW_SCOPES": "planet"})


def test_consumer_fetch_bytes_has_a_floor() -> None:
    assert Settings.from_env({"ACW_CONSUMER_FETCH_BYTES": "1048576"}).consumer_fetch_bytes == 1048576
    with pytest.raises(ConfigError, match="ACW_CONSUMER_FETCH_BYTES"):
        Settings.from_env({"ACW_CONSUMER_FETCH_BYTES": "1000"})


def test_the_catch_up_checkpoint_interval_is_positive() -> None:
    assert (
        Settings.from_env({"ACW_CATCH_UP_CHECKPOINT_INTERVAL_SECONDS": "2.5"}).catch_up_checkpoint_interval_seconds
        == 2.5
    )
    with pytest.raises(ConfigError, match="ACW_CATCH_UP_CHECKPOINT_INTERVAL_SECONDS"):
        Settings.from_env({"ACW_CATCH_UP_CHECKPOINT_INTERVAL_SECONDS": "0"})
