"""The one settings object, read from ACW_* environment variables with documented defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from streams import core_build, gc_tuning
from streams.domain.aggregates import Scope
from streams.domain.alerts import BENCHMARKS, RuleError, load_rules
from streams.domain.pipeline import AggregationConfig
from streams.domain.processor import RulesConfig
from streams.domain.windows import parse_windows
from streams.sources.connect_agent import HIERARCHY_LEVELS
from streams.sources.directory import AgentDirectory, DirectoryError
from streams.sources.formats import FORMATS, parse_input_topics


class ConfigError(ValueError):
    """A setting has a bad value; the message names the ACW_* variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the worker and the CLI can be told; field NAME is read from ACW_NAME."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_key_password: str = field(default="", repr=False)
    ssl_check_hostname: bool = True
    connect_timeout_seconds: float = 60.0
    app_id: str = "acw-streams"
    input_topic: str = "call-events"
    intervals_topic: str = "acw.intervals"
    dead_letter_topic: str = "acw.dead-letter"
    # Internal topics default to names under the application id (APP_ID-rekeyed, APP_ID-aggregate-panes).
    rekey_topic: str = ""
    aggregates_topic: str = "acw.aggregates"
    alerts_topic: str = "acw.alerts"
    agent_state_topic: str = "acw.agent-state"
    panes_topic: str = ""
    partitions: int = 6
    topic_replication_factor: int = 1
    topic_min_insync_replicas: int = 1
    retention_days: float = 7.0
    aggregates_retention_days: float = 35.0
    alerts_retention_days: float = 30.0
    dead_letter_retention_days: float = 30.0
    schema_registry_url: str = ""
    schema_registry_username: str = ""
    schema_registry_password: str = field(default="", repr=False)
    schema_registry_cafile: str = ""
    schema_registry_certfile: str = ""
    schema_registry_keyfile: str = ""
    schema_registry_timeout_seconds: float = 10.0
    input_format: str = "avro"
    input_topics: str = ""
    agent_directory: str = ""
    connect_hierarchy_level: int = 0
    twilio_team_attribute: str = "team_name"
    twilio_disposition_path: str = "conversations.outcome"
    twilio_available_activities: str = "Available"
    twilio_offline_activities: str = "Offline"
    max_acw_seconds: float = 1800.0
    allowed_lateness_seconds: float = 5.0
    dedup_window_seconds: float = 3600.0
    idle_advance_after_seconds: float = 10.0
    max_future_seconds: float = 86400.0
    confluent_schema_ids: str = ""
    windows: str = "15m,1h/5m"
    scopes: str = "AGENT,TEAM,QUEUE,CENTER"
    window_grace_seconds: float = 60.0
    benchmark: str = "general"
    alert_rules: str = ""
    checkpoint_interval_seconds: float = 5.0
    catch_up_checkpoint_interval_seconds: float = 30.0
    checkpoint_events: int = 400000
    consumer_fetch_bytes: int = 2 * 1024 * 1024
    malloc_tuning: bool = True
    core: str = "auto"
    gc_threshold: int = gc_tuning.DEFAULT_THRESHOLD
    replay_processes: int = 0
    worker_processes: int = 1
    store: str = "rocksdb://"
    data_dir: str = ".cache/worker"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    metrics_refresh_seconds: float = 2.0
    metrics_teams: str = ""
    metrics_queues: str = ""
    metrics_label_limit: int = 50
    metrics_agent_labels: bool = False
    log_level: str = "WARNING"

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"ACW_{name.upper()}: {why}")

        _check_connection_settings(self, bad)
        _check_registry_settings(self, bad)
        if not self.rekey_topic:
            object.__setattr__(self, "rekey_topic", f"{self.app_id}-rekeyed")
        if not self.panes_topic:
            object.__setattr__(self, "panes_topic", f"{self.app_id}-aggregate-panes")
        if self.topic_replication_factor < 1:
            raise bad("topic_replication_factor", "must be at least 1")
        if not 1 <= self.topic_min_insync_replicas <= self.topic_replication_factor:
            raise bad("topic_min_insync_replicas", "must be at least 1 and at most ACW_TOPIC_REPLICATION_FACTOR")
        for name in (
            "retention_days",
            "aggregates_retention_days",
            "alerts_retention_days",
            "dead_letter_retention_days",
        ):
            if getattr(self, name) <= 0:
                raise bad(name, "must be positive")
        if self.gc_threshold < 0:
            raise bad("gc_threshold", "must be 0 (Python's own thresholds) or more")
        if self.worker_processes not in (1, 2):
            raise bad("worker_processes", f"must be 1 or 2, got {self.worker_processes}")
        if self.worker_processes == 2 and not hasattr(os, "memfd_create"):
            raise bad("worker_processes", "2 needs Linux (the core process's messages travel in memfds)")
        if self.replay_processes not in (0, 1, 2):
            raise bad(
                "replay_processes",
                f"must be 0 (2 when two CPUs are free to this process, else 1), 1 or 2, got {self.replay_processes}",
            )
        if self.core not in core_build.CHOICES:
            raise bad("core", f"must be one of {', '.join(core_build.CHOICES)}, got {self.core!r}")
        if self.core == "compiled" and core_build.running() != "compiled":
            raise bad(
                "core", "is compiled, but no compiled core is built for these sources (scripts/setup.sh builds one)"
            )
        if self.input_format not in FORMATS:
            raise bad("input_format", f"must be one of {', '.join(FORMATS)}, got {self.input_format!r}")
        try:
            inputs = parse_input_topics(self.input_topics, self.input_topic, self.input_format)
        except ValueError as exc:
            raise bad("input_topics", str(exc)) from None
        if self.rekey_topic in (t for t, _ in inputs):
            raise bad("input_topics", f"must not list the re-key topic {self.rekey_topic!r}")
        object.__setattr__(self, "_inputs", inputs)
        try:
            directory = AgentDirectory.load(Path(self.agent_directory)) if self.agent_directory else AgentDirectory()
        except DirectoryError as exc:
            raise bad("agent_directory", str(exc)) from None
        object.__setattr__(self, "_directory", directory)
        if not 0 <= self.connect_hierarchy_level <= len(HIERARCHY_LEVELS):
            raise bad("connect_hierarchy_level", f"must be 0 (the deepest level present) to {len(HIERARCHY_LEVELS)}")
        for name in ("twilio_team_attribute", "twilio_disposition_path", "twilio_available_activities"):
            if not getattr(self, name).strip():
                raise bad(name, "must not be empty")
        for name in ("partitions", "checkpoint_events"):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        if self.consumer_fetch_bytes < 65536:
            raise bad("consumer_fetch_bytes", "must be at least 65536")
        for name in (
            "max_acw_seconds",
            "dedup_window_seconds",
            "checkpoint_interval_seconds",
            "catch_up_checkpoint_interval_seconds",
        ):
            if getattr(self, name) <= 0:
                raise bad(name, "must be positive")
        try:
            object.__setattr__(self, "_schema_ids", _schema_ids(self.confluent_schema_ids))
        except ValueError:
            why = f"must be comma-separated integers, got {self.confluent_schema_ids!r}"
            raise bad("confluent_schema_ids", why) from None
        if self.max_future_seconds <= 0:
            raise bad("max_future_seconds", "must be positive")
        for name in ("allowed_lateness_seconds", "idle_advance_after_seconds"):
            if getattr(self, name) < 0:
                raise bad(name, "must be zero or positive")
        if self.dedup_window_seconds < self.allowed_lateness_seconds:
            raise bad("dedup_window_seconds", "must be at least ACW_ALLOWED_LATENESS_SECONDS")
        if self.store not in ("rocksdb://", "memory://"):
            raise bad("store", f"must be rocksdb:// or memory://, got {self.store!r}")
        if self.metrics_refresh_seconds <= 0:
            raise bad("metrics_refresh_seconds", "must be positive")
        if self.metrics_label_limit < 0:
            raise bad("metrics_label_limit", "must be zero or positive")
        if not 0 <= self.metrics_port <= 65535:
            raise bad("metrics_port", "must be a port number (0 disables the endpoint)")
        try:
            specs = parse_windows(self.windows)
        except ValueError as exc:
            raise bad("windows", str(exc)) from None
        if self.aggregates_retention_days * 86_400_000 <= max(w.size_ms for w in specs):
            raise bad("aggregates_retention_days", "must be longer than the longest window")
        if self.window_grace_seconds < 0:
            raise bad("window_grace_seconds", "must be zero or positive")
        if self.benchmark not in BENCHMARKS:
            raise bad("benchmark", f"must be one of {', '.join(BENCHMARKS)}, got {self.benchmark!r}")
        try:
            scopes = frozenset(Scope(x.strip().upper()) for x in self.scopes.split(",") if x.strip())
        except ValueError:
            why = f"must be a comma-separated subset of AGENT,TEAM,QUEUE,CENTER, got {self.scopes!r}"
            raise bad("scopes", why) from None
        if not scopes:
            raise bad("scopes", "must name at least one scope")
        object.__setattr__(self, "_scopes", scopes)
        try:
            rules = load_rules(self._rules_document(), self.benchmark, specs, scopes)
            object.__setattr__(self, "_alert_rules", rules)
        except RuleError as exc:
            raise bad("alert_rules", f"{self.alert_rules}: {exc}") from None
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise bad("log_level", "must be DEBUG, INFO, WARNING or ERROR")
        for name in (
            "bootstrap_servers",
            "app_id",
            "input_topic",
            "intervals_topic",
            "dead_letter_topic",
            "aggregates_topic",
            "alerts_topic",
            "agent_state_topic",
            "panes_topic",
        ):
            if not getattr(self, name):
                raise bad(name, "must not be empty")

    def _rules_document(self) -> Any:
        if not self.alert_rules:
            return None
        try:
            text = Path(self.alert_rules).read_text()
        except OSError as exc:
            raise ConfigError(f"ACW_ALERT_RULES: cannot read {self.alert_rules}: {exc.strerror}") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"ACW_ALERT_RULES: {self.alert_rules} is not valid YAML: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build from ACW_* variables; unknown ACW_* names and bad values raise ConfigError."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in environ.items():
            if (
                not key.startswith("ACW_")
                or key.startswith(("ACW_DEMO_", "ACW_TEST_"))
                or key
                in (
                    "ACW_SCHEMAS_DIR",
                    "ACW_CACHE_DIR",
                    "ACW_BROKER_START_TIMEOUT",
                    "ACW_REGISTRY_START_TIMEOUT",
                )
            ):
                continue  # read by scripts, tests and the schema loader, not by the program
            name = key[4:].lower()
            if name.endswith("_file") and name[: -len("_file")] in SECRETS:
                name = name[: -len("_file")]
                if key[:-5] in environ:
                    raise ConfigError(f"{key}: set either {key[:-5]} or {key}, not both")
                raw = _read_secret_file(key, raw)
            if name not in known:
                raise ConfigError(f"{key}: unknown setting")
            values[name] = _convert(key, raw, _CONVERTERS.get(str(known[name].type), str))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def inputs(self) -> tuple[tuple[str, str], ...]:
        """(topic, format) of every input topic: ACW_INPUT_TOPICS, else ACW_INPUT_TOPIC in ACW_INPUT_FORMAT."""
        return self._inputs  # type: ignore[attr-defined,no-any-return]

    def directory(self) -> AgentDirectory:
        """The agent directory read at start (empty without ACW_AGENT_DIRECTORY)."""
        return self._directory  # type: ignore[attr-defined,no-any-return]

    def schema_ids(self) -> frozenset[int]:
        """Confluent schema ids accepted on the input (empty: any)."""
        return self._schema_ids  # type: ignore[attr-defined,no-any-return]

    def metric_labels(self) -> tuple[frozenset[str], frozenset[str], int]:
        """Known teams, known queues, and how many other values a label takes before folding into `other`."""

        def names(raw: str) -> frozenset[str]:
            return frozenset(x.strip() for x in raw.split(",") if x.strip())

        return names(self.metrics_teams), names(self.metrics_queues), self.metrics_label_limit

    def replay_process_count(self) -> int:
        """How many processes `acw replay` runs: `ACW_REPLAY_PROCESSES`, or with 0 one per free CPU, up to 2."""
        if self.replay_processes:
            return self.replay_processes
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return 2 if cpus >= 2 else 1

    def rules(self) -> RulesConfig:
        """The core's rule knobs in milliseconds."""
        return RulesConfig(
            max_acw_ms=round(self.max_acw_seconds * 1000),
            allowed_lateness_ms=round(self.allowed_lateness_seconds * 1000),
            dedup_window_ms=round(self.dedup_window_seconds * 1000),
        )

    def aggregation(self) -> AggregationConfig:
        """Windows, grace period and the validated alert rules."""
        return AggregationConfig(
            windows=parse_windows(self.windows),
            grace_ms=round(self.window_grace_seconds * 1000),
            rules=self._alert_rules,  # type: ignore[attr-defined]
            scopes=self._scopes,  # type: ignore[attr-defined]
        )


SECRETS = ("sasl_password", "ssl_key_password", "schema_registry_password")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _check_connection_settings(s: Settings, bad: Callable[[str, str], ConfigError]) -> None:
    """The Kafka security settings agree with each other; never puts a secret in a message."""
    protocol = s.security_protocol.upper()
    object.__setattr__(s, "security_protocol", protocol)
    object.__setattr__(s, "sasl_mechanism", s.sasl_mechanism.upper())
    if protocol not in SECURITY_PROTOCOLS:
        raise bad("security_protocol", f"must be one of {', '.join(SECURITY_PROTOCOLS)}, got {s.security_protocol!r}")
    if protocol.startswith("SASL"):
        if s.sasl_mechanism not in SASL_MECHANISMS:
            raise bad("sasl_mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}, got {s.sasl_mechanism!r}")
        if not s.sasl_username:
            raise bad("sasl_username", f"is required with ACW_SECURITY_PROTOCOL={protocol}")
        if not s.sasl_password:
            raise bad("sasl_password", f"is required with ACW_SECURITY_PROTOCOL={protocol} (or ACW_SASL_PASSWORD_FILE)")
    elif s.sasl_username or s.sasl_password:
        raise bad("security_protocol", "is not SASL_PLAINTEXT or SASL_SSL, but SASL credentials are set")
    tls = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")
    if protocol.endswith("SSL"):
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(s, name)
            if path and not Path(path).is_file():
                raise bad(name, f"{path} is not a readable file")
        if bool(s.ssl_certfile) != bool(s.ssl_keyfile):
            raise bad("ssl_keyfile" if s.ssl_certfile else "ssl_certfile", "client certificate and key go together")
    elif any(getattr(s, name) for name in tls):
        raise bad("security_protocol", "is not SSL or SASL_SSL, but TLS files are set")
    if s.connect_timeout_seconds <= 0:
        raise bad("connect_timeout_seconds", "must be positive")


def _check_registry_settings(s: Settings, bad: Callable[[str, str], ConfigError]) -> None:
    """The Schema Registry settings agree with each other; never puts a secret in a message."""
    url = s.schema_registry_url
    if not url:
        for name in (
            "schema_registry_username",
            "schema_registry_password",
            "schema_registry_cafile",
            "schema_registry_certfile",
            "schema_registry_keyfile",
        ):
            if getattr(s, name):
                raise bad(name, "is set, but ACW_SCHEMA_REGISTRY_URL is not")
        return
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise bad("schema_registry_url", f"must be an http:// or https:// URL, got {_redacted(url)!r}")
    if parsed.password:
        raise bad("schema_registry_url", "must not carry credentials: use ACW_SCHEMA_REGISTRY_USERNAME and _PASSWORD")
    if bool(s.schema_registry_username) != bool(s.schema_registry_password):
        raise bad(
            "schema_registry_password" if s.schema_registry_username else "schema_registry_username",
            "basic-auth user and password go together",
        )
    for name in ("schema_registry_cafile", "schema_registry_certfile", "schema_registry_keyfile"):
        path = getattr(s, name)
        if path and parsed.scheme != "https":
            raise bad(name, "is set, but ACW_SCHEMA_REGISTRY_URL is not https://")
        if path and not Path(path).is_file():
            raise bad(name, f"{path} is not a readable file")
    if bool(s.schema_registry_certfile) != bool(s.schema_registry_keyfile):
        raise bad(
            "schema_registry_keyfile" if s.schema_registry_certfile else "schema_registry_certfile",
            "client certificate and key go together",
        )
    if s.schema_registry_timeout_seconds <= 0:
        raise bad("schema_registry_timeout_seconds", "must be positive")


def _redacted(url: str) -> str:
    """A URL without its user-info part."""
    parsed = urlsplit(url)
    return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()


def _read_secret_file(key: str, path: str) -> str:
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None


def _schema_ids(raw: str) -> frozenset[int]:
    return frozenset(int(x) for x in raw.split(",") if x.strip())


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(raw)
    return value in ("1", "true", "yes", "on")


_bool.__name__ = "boolean (true/false)"
_CONVERTERS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": _bool}


def _convert(key: str, raw: str, conv: Callable[[str], Any]) -> Any:
    try:
        return conv(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}: {raw!r} is not a valid {conv.__name__}") from None
