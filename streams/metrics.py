"""Prometheus metrics of the worker, created against an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Wrap-up takes seconds to tens of minutes: buckets from 5 s to 30 min around the benchmark ranges.
ACW_BUCKETS = (5, 15, 30, 60, 90, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800)


class Metrics:
    """All metrics of one worker process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_consumed = Counter(
            "acw_events_consumed_total",
            "Input records consumed, by event type ('invalid' when undecodable).",
            ["event_type"],
            registry=registry,
        )
        self.duplicates = Counter(
            "acw_events_duplicate_total", "Events dropped as repeated event_id.", registry=registry
        )
        self.late = Counter(
            "acw_events_late_total", "Events older than stream time minus the lateness.", registry=registry
        )
        self.dead_letters = Counter(
            "acw_dead_letters_total",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.rekeyed = Counter(
            "acw_events_rekeyed_total",
            "Records whose key was not their agent_id, re-keyed through the repartition topic.",
            registry=registry,
        )
        self.redelivered = Counter(
            "acw_events_redelivered_total",
            "Records skipped because the restored checkpoint already holds them.",
            registry=registry,
        )
        self.rewinds = Counter(
            "acw_partition_catch_ups_total",
            "Times a partition resumed past its restored state and skipped records were caught up.",
            registry=registry,
        )
        self.intervals = Counter(
            "acw_intervals_total", "ACW intervals emitted, by end reason.", ["end_reason"], registry=registry
        )
        self.interval_duration = Histogram(
            "acw_interval_duration_seconds",
            "ACW per contact.",
            ["channel"],
            buckets=ACW_BUCKETS,
            registry=registry,
        )
        self.checkpoints = Counter(
            "acw_checkpoints_total",
            "State checkpoints written to the changelog tables, by stage.",
            ["stage"],
            registry=registry,
        )
        self.aggregates = Counter(
            "acw_aggregates_total",
            "Window aggregate records sent, by whether they were final.",
            ["final"],
            registry=registry,
        )
        self.alerts = Counter(
            "acw_alert_transitions_total",
            "Alert records sent, by rule, severity and state (FIRING or RESOLVED).",
            ["rule", "severity", "state"],
            registry=registry,
        )
        self.open_intervals = Gauge(
            "acw_open_intervals", "Contacts in after-call work now (this worker).", registry=registry
        )
        self.watermark = Gauge(
            "acw_stream_time_seconds",
            "Stream time (event time watermark) per partition.",
            ["partition"],
            registry=registry,
        )
        self.processing_lag = Histogram(
            "acw_processing_lag_seconds",
            "Wall-clock now minus the interval's end, at emit.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
