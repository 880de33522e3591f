"""Prometheus metrics of the worker, created against an injected registry, with bounded label values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

from streams.domain.benchmarks import BANDS
from streams.domain.intervals import AcwInterval
from streams.histograms import BatchHistogram

# Wrap-up takes seconds to tens of minutes: buckets from 5 s to 30 min, with the benchmark tops
# (240, 300, 360, 480 s) and their doubles and triples as edges, so alert thresholds fall on a bucket edge.
ACW_BUCKETS = (5, 15, 30, 60, 90, 120, 180, 240, 300, 360, 480, 600, 720, 900, 960, 1200, 1440, 1800)
# Talk and handle time: 10 s to 1 h.
TALK_BUCKETS = (10, 30, 60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2700, 3600)
HOLD_BUCKETS = (0, 10, 30, 60, 120, 300, 600, 1200)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
OTHER = "other"
UNKNOWN = "unknown"
# Labelled children of the translation counters cached per raw (format, kind, ignored), up to this many.
CHILD_CACHE_SIZE = 10_000


class LabelFolder:
    """Keeps a label's values bounded: configured values pass, then up to `limit` others, then `other`."""

    def __init__(self, known: Iterable[str], limit: int) -> None:
        self.known = frozenset(known)
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if value is None or value == "":
            return UNKNOWN
        if value in self.known or value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        return OTHER


class Metrics:
    """All metrics of one worker process."""

    def __init__(
        self,
        registry: CollectorRegistry,
        teams: Iterable[str] = (),
        queues: Iterable[str] = (),
        label_limit: int = 50,
        agent_labels: bool = False,
        benchmark: str = "general",
    ) -> None:
        disable_created_metrics()  # the `_created` series double the scrape size and no panel reads them
        self.registry = registry
        self._team_children: dict[tuple[str, Any, Any], tuple[Any, ...]] = {}
        self._queue_children: dict[tuple[str, Any], Any] = {}
        self._source_children: dict[tuple[str, str, bool], tuple[Any, Any]] = {}
        self.team = LabelFolder(teams, label_limit)
        self.queue = LabelFolder(queues, label_limit)
        r = registry
        # --- pipeline ---
        self.events_consumed = Counter(
            "acw_events_consumed_total",
            "Input records consumed, by event type ('invalid' when undecodable).",
            ["event_type"],
            registry=r,
        )
        self.applied = Counter(
            "acw_events_applied_total", "Events accepted by the core (not duplicate, late or invalid).", registry=r
        )
        self.duplicates = Counter("acw_events_duplicate_total", "Events dropped as repeated event_id.", registry=r)
        self.late = Counter("acw_events_late_total", "Events older than stream time minus the lateness.", registry=r)
        self.dead_letters = Counter(
            "acw_dead_letters_total", "Records sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        self.source_kind = LabelFolder((), label_limit)
        self.source_records = Counter(
            "acw_source_records_total",
            "Input records read, by input format and the platform's kind of record (invalid ones not included).",
            ["format", "kind"],
            registry=r,
        )
        self.source_ignored = Counter(
            "acw_source_ignored_total",
            "Input records of a kind the format's adapter deliberately ignores (heartbeats, customer-side events).",
            ["format", "kind"],
            registry=r,
        )
        self.source_notes = Counter(
            "acw_source_notes_total",
            "Lossy points met while translating platform records (unknown_channel, vanished_contact, ...).",
            ["format", "note"],
            registry=r,
        )
        self.restated = Counter(
            "acw_events_restated_total",
            "Restated events (already reported by an earlier record of the source) dropped as already seen or late.",
            registry=r,
        )
        self.unknown_event_types = Counter(
            "acw_events_unknown_type_total",
            "Events of a type this version's schema does not know (a newer writer's symbol, read as UNKNOWN): "
            "counted, not applied.",
            registry=r,
        )
        self.acw_disagreements = Counter(
            "acw_reported_acw_disagreements_total",
            "Intervals whose ACW differs by more than 1 s from the ACW the platform reported (ours is kept).",
            registry=r,
        )
        self.rekeyed = Counter(
            "acw_events_rekeyed_total",
            "Records whose key was not their agent_id, re-keyed through the repartition topic.",
            registry=r,
        )
        self.redelivered = Counter(
            "acw_events_redelivered_total",
            "Records skipped because the restored checkpoint already holds them.",
            registry=r,
        )
        self.rewinds = Counter(
            "acw_partition_catch_ups_total",
            "Times a partition was committed past its state and the skipped records were caught up.",
            registry=r,
        )
        self.outputs = Counter(
            "acw_output_records_total",
            "Records handed to the producer, by output (intervals, aggregates, alerts, dead_letter, panes, rekey).",
            ["output"],
            registry=r,
        )
        self.restores_from_changelog = Counter(
            "acw_state_restores_from_changelog_total",
            "Partitions whose local store disagreed with their last checkpoint and were read from the changelog.",
            ["stage"],
            registry=r,
        )
        self.checkpoints = Counter(
            "acw_checkpoints_total",
            "State checkpoints written to the changelog tables, by stage.",
            ["stage"],
            registry=r,
        )
        self.checkpoint_entries = Counter(
            "acw_checkpoint_entries_total",
            "State entries (agents, panes, windows) written or deleted by checkpoints, by stage.",
            ["stage"],
            registry=r,
        )
        self.processing_lag = BatchHistogram(
            "acw_processing_lag_seconds",
            "Wall-clock now minus the interval's end (event time), at emit.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "acw_consumer_lag",
            "Records of an input partition not yet applied (end offset minus next offset to apply).",
            ["topic", "partition"],
            registry=r,
        )
        self.watermark = Gauge(
            "acw_stream_time_seconds", "Stream time (event-time watermark) per partition.", ["partition"], registry=r
        )
        self.broker_up = Gauge(
            "acw_broker_up", "1 when the last check (every few seconds) reached a bootstrap server, else 0.", registry=r
        )
        self.broker_outages = Counter(
            "acw_broker_outages_total", "Times the broker became unreachable (outage start).", registry=r
        )
        self.broker_up.set(1)
        self.stores_discarded = Counter(
            "acw_local_stores_discarded_total",
            "Local state stores found unreadable at start, removed and rebuilt from their changelogs.",
            registry=r,
        )
        self.recovering = Gauge(
            "acw_table_recovery_in_progress", "1 while state tables are being recovered from changelogs.", registry=r
        )
        # --- domain ---
        # One dimension of the organisation per histogram: team x queue x reason histograms grew to tens of
        # thousands of series (30,863 with 4,000 simulated agents) and rendering them cost the worker 10%.
        self.intervals = Counter(
            "acw_intervals_total", "ACW intervals emitted, by team and end reason.", ["team", "end_reason"], registry=r
        )
        labels = ["team", "channel"]
        self.interval_duration = BatchHistogram(
            "acw_interval_duration_seconds",
            "ACW per contact (disconnect to return to work), by team.",
            labels,
            buckets=ACW_BUCKETS,
            registry=r,
        )
        self.queue_interval_duration = BatchHistogram(
            "acw_queue_interval_duration_seconds",
            "ACW per contact (disconnect to return to work), by queue.",
            ["queue", "channel"],
            buckets=ACW_BUCKETS,
            registry=r,
        )
        self.talk = BatchHistogram(
            "acw_talk_duration_seconds",
            "Talk time per contact (connected, not on hold).",
            labels,
            buckets=TALK_BUCKETS,
            registry=r,
        )
        self.hold = BatchHistogram(
            "acw_hold_duration_seconds", "Hold time per contact.", labels, buckets=HOLD_BUCKETS, registry=r
        )
        self.handle = BatchHistogram(
            "acw_handle_duration_seconds",
            "Handle time per contact: talk + hold + ACW.",
            labels,
            buckets=TALK_BUCKETS,
            registry=r,
        )
        self.open_intervals = Gauge("acw_open_intervals", "Contacts in after-call work now.", registry=r)
        self.agents_in_acw = Gauge("acw_agents_in_acw", "Agents with at least one contact in ACW now.", registry=r)
        self.oldest_open = Gauge(
            "acw_oldest_open_interval_seconds",
            "Age, at stream time, of the oldest contact still in ACW (0 when none).",
            registry=r,
        )
        self.aggregates = Counter(
            "acw_aggregates_total", "Window aggregate records sent, by whether they were final.", ["final"], registry=r
        )
        self.alerts = Counter(
            "acw_alert_transitions_total",
            "Alert records sent, by rule, severity and state (FIRING or RESOLVED).",
            ["rule", "severity", "state"],
            registry=r,
        )
        self.alerts_firing = Gauge(
            "acw_alerts_firing",
            "Alerts firing now, by rule and severity (interval_over rules resolve at once and stay 0).",
            ["rule", "severity"],
            registry=r,
        )
        # The configured benchmark band, so alert rules and dashboard thresholds follow ACW_BENCHMARK.
        self.benchmark = Gauge(
            "acw_benchmark_seconds",
            "The configured industry benchmark's range of average ACW per interaction (ACW_BENCHMARK).",
            ["benchmark", "bound"],
            registry=r,
        )
        band = BANDS[benchmark]
        self.benchmark.labels(benchmark, "low").set(band.low)
        self.benchmark.labels(benchmark, "high").set(band.high)
        self.agent_in_acw = (
            Gauge(
                "acw_agent_acw_open_seconds",
                "Per agent: seconds in the current ACW (only with ACW_METRICS_AGENT_LABELS=true).",
                ["agent"],
                registry=r,
            )
            if agent_labels
            else None
        )

    def observe_translation(self, fmt: str, kind: str, ignored: bool, notes: Iterable[str], n: int = 1) -> None:
        """Count `n` translated input records of one format and kind, and what their adapter noticed."""
        key = (fmt, kind, ignored)
        counters = self._source_children.get(key)
        if counters is None:
            label = self.source_kind(kind)
            counters = (
                self.source_records.labels(fmt, label),
                self.source_ignored.labels(fmt, label) if ignored else None,
            )
            if len(self._source_children) < CHILD_CACHE_SIZE:
                self._source_children[key] = counters
        counters[0].inc(n)
        if counters[1] is not None:
            counters[1].inc(n)
        for note in notes:
            self.source_notes.labels(fmt, note).inc(n)

    def observe_interval(self, interval: AcwInterval) -> None:
        """Count one emitted interval in the domain histograms."""
        channel = interval.channel
        # Keyed by the folded labels, so the caches stay as small as the series they stand for.
        key = (self.team(interval.team_id), channel, interval.end_reason)
        children = self._team_children.get(key)
        if children is None:
            children = self._team_children[key] = self._team_labels(*key)
        queue = (self.queue(interval.queue_id), channel)
        by_queue = self._queue_children.get(queue)
        if by_queue is None:
            by_queue = self._queue_children[queue] = self.queue_interval_duration.labels(queue[0], channel.value)
        count, acw, talk, hold, handle = children
        count.inc()
        acw.observe(interval.acw_seconds)
        by_queue.observe(interval.acw_seconds)
        if interval.talk_seconds is not None:
            talk.observe(interval.talk_seconds)
        if interval.hold_seconds is not None:
            hold.observe(interval.hold_seconds)
        if interval.handle_seconds is not None:
            handle.observe(interval.handle_seconds)

    def _team_labels(self, team: str, channel: Any, reason: Any) -> tuple[Any, ...]:
        """The labelled children by team one interval updates (looked up once per combination, then cached)."""
        ch = channel.value
        return (
            self.intervals.labels(team, reason.value),
            self.interval_duration.labels(team, ch),
            self.talk.labels(team, ch),
            self.hold.labels(team, ch),
            self.handle.labels(team, ch),
        )

    def attach_faust(self, app: Any) -> None:
        """Faust's own Prometheus monitor (rebalances, commits, sends) in our registry, without per-message work."""
        from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

        class _PerBatchMonitor(PrometheusMonitor):  # type: ignore[misc]
            """Faust's monitor without its per-message hooks, which cost 7% of the worker's time.

            Those hooks labelled, timed and stringified every record twice (in and out). What they counted is
            in our own acw_events_consumed_total, acw_consumer_lag and acw_processing_lag_seconds.
            """

            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self._end_offset_gauges: dict[Any, Any] = {}

            def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
                return None

            def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
                return None

            def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
                return None

            def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
                return None

            def track_tp_end_offset(self, tp: Any, offset: int) -> None:
                self.tp_end_offsets[tp] = offset
                gauge = self._end_offset_gauges.get(tp)
                if gauge is None:
                    gauge = self._metrics.topic_partition_end_offset.labels(tp.topic, tp.partition)
                    self._end_offset_gauges[tp] = gauge
                gauge.set(offset)  # called per fetched record: the labelled child is looked up once per partition

        app.monitor = _PerBatchMonitor(metrics=FaustMetrics.create(self.registry, "faust"))
