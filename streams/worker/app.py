"""`acw worker`: the Faust shell around the core. It decodes, calls the core, checkpoints, sends.

Two stages run in one app. The interval stage consumes call events (and their re-keyed copies) and
runs one `AcwPipeline` per input partition: intervals, interval alerts and pane aggregates. The merge
stage consumes the panes and runs one `WindowMerger` per partition of the panes topic: window
aggregates and window alerts. Each stage checkpoints its cores to its own changelog-backed table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from streams import logs
from streams.connection import BrokerWatch, faust_credentials, ssl_context
from streams.domain.pipeline import AggregationConfig
from streams.domain.processor import RulesConfig
from streams.metrics import Metrics
from streams.serialization import FramedCodec, codec
from streams.settings import Settings
from streams.topics import EVENT_TIME, output_headers, topic_specs
from streams.topics import outputs as output_specs
from streams.worker.faust_overrides import BatchApp
from streams.worker.gauges import update_gauges
from streams.worker.interval_stage import IntervalStage
from streams.worker.kafka_clients import SideClients
from streams.worker.kafka_sink import KafkaSink
from streams.worker.merge_stage import MergeStage
from streams.worker.remote_stage import RemoteIntervalStage
from streams.worker.stage import Stage

if TYPE_CHECKING:
    from streams.schema_registry import SchemaRegistry

log = logging.getLogger("acw.worker")

# How often committed offsets are compared with the offsets stored with the state.
RECONCILE_EVERY_SECONDS = 5.0
# How often the broker is probed for the outage log lines and acw_broker_up.
BROKER_CHECK_SECONDS = 3.0


class AcwWorker:
    """Builds the Faust app and its two stages; owns the outputs both send through."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        codecs: Mapping[str, FramedCodec] | None = None,
        registry: SchemaRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.registry = registry
        # Output topic -> value encoder: Confluent-framed with the registry's ids, else plain Avro.
        published = list(output_specs(settings).values())
        self.encoders: dict[str, Callable[[dict[str, Any]], bytes]] = {
            spec.name: codecs[spec.name].encode if codecs else codec(spec.schema).encode  # type: ignore[arg-type]
            for spec in published
        }
        self.rules: RulesConfig = settings.rules()
        self.aggregation: AggregationConfig = settings.aggregation()
        self._ssl = ssl_context(settings)
        self.app = BatchApp(
            settings.app_id,
            broker=[f"kafka://{s.strip()}" for s in settings.bootstrap_servers.split(",")],
            broker_credentials=faust_credentials(settings, self._ssl),
            store=settings.store,
            datadir=settings.data_dir,
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.topic_replication_factor,
            web_enabled=False,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_linger_ms=10,
            producer_max_batch_size=262144,
            producer_max_request_size=4_000_000,
            broker_commit_interval=1.0,
            table_cleanup_interval=3600.0,
            stream_wait_empty=False,
            stream_buffer_maxsize=65536,
            broker_max_poll_records=5000,
            # Per partition; Kafka still returns a larger first batch whole, so checkpoints always restore.
            consumer_max_fetch_size=settings.consumer_fetch_bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        metrics.attach_faust(self.app)
        written = [spec for spec in topic_specs(settings) if spec.role != "input"]
        sent = {spec.name: metrics.outputs.labels(spec.role) for spec in written}
        self.intervals = IntervalStage(self) if settings.worker_processes == 1 else RemoteIntervalStage(self)
        self.merge = MergeStage(self)
        self.stages: tuple[Stage, ...] = (self.intervals, self.merge)
        self.app.timer(1.0)(self._tick)
        self.broker = BrokerWatch(settings, self._ssl)
        self.app.timer(BROKER_CHECK_SECONDS)(self._watch_broker)
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.on_before_shutdown.connect(self._close_clients)
        self.app.task(self._quiet_library_logs)
        self.clients = SideClients(settings, self._ssl)
        self.sink = KafkaSink(
            settings,
            metrics,
            self.encoders,
            {spec.name: output_headers(spec) for spec in written},
            {spec.name: EVENT_TIME[spec.role] for spec in published if spec.role in EVENT_TIME},
            codec("acw_interval").encode,
            self.clients.output_producer,
            sent,
        )
        self._reconciling: asyncio.Future[None] | None = None
        self._failing: asyncio.Future[None] | None = None
        self._last_reconcile = 0.0

    async def _quiet_library_logs(self) -> None:
        """Faust, mode and aiokafka log per message at DEBUG/INFO; keep them at WARNING unless asked for more."""
        level = logging.getLevelName(self.settings.log_level.upper())
        for name in ("faust", "mode", "aiokafka", "kafka"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)
        logging.getLogger().setLevel(level)
        logs.adopt_handlers()

    def fail(self, reason: BaseException) -> None:
        """Stop the worker with an error; the next start restores the last checkpoint and repeats what followed."""
        self._failing = asyncio.ensure_future(self.app.crash(reason))

    async def _close_clients(self, sender: Any, **kwargs: Any) -> None:
        """On a clean stop: let a running checkpoint finish (briefly), then close our own Kafka clients."""
        running = [s.checkpointing for s in self.stages if s.checkpointing is not None]
        if running:
            await asyncio.wait(running, timeout=10)
        await self.sink.close()
        await self.clients.close()
        for stage in self.stages:
            await stage.close()

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        for stage in self.stages:
            stage.on_revoked(revoked)

    async def _on_assigned(self, sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        for stage in self.stages:
            stage.on_assigned(assigned)

    async def _reconcile(self) -> None:
        try:
            for stage in self.stages:
                await stage.reconcile()
        except Exception:
            log.exception("reconciling committed offsets failed; trying again later")
        finally:
            self._reconciling = None

    async def _watch_broker(self) -> None:
        """Probe the broker so an outage shows in the logs and in acw_broker_up while Faust retries."""
        was_up = self.broker.down_since is None
        up = await self.broker.check()
        if was_up and not up:
            self.metrics.broker_outages.inc()
        self.metrics.broker_up.set(1 if up else 0)

    async def _tick(self) -> None:
        """Every second: checkpoint what is due even without new records, and advance idle partitions."""
        try:
            for stage in self.stages:
                if stage.checkpoint_due():
                    await stage.checkpoint_now()
            now = time.monotonic()
            if self._reconciling is None and now - self._last_reconcile >= RECONCILE_EVERY_SECONDS:
                self._last_reconcile = now
                self._reconciling = asyncio.ensure_future(self._reconcile())
            if self.settings.idle_advance_after_seconds > 0:
                await self.intervals.advance_idle()
            await self.intervals.refresh_gauges()
            update_gauges(self)
        except Exception:  # a timer that raises would crash the worker; log and try next tick
            log.exception("timer tick failed")


def run_worker(settings: Settings, metrics: Metrics) -> None:
    """Start the Faust worker in this process until it is stopped."""
    from faust import Worker

    from streams.connection import check_connection
    from streams.core_build import running
    from streams.topic_admin import create_topics

    log.info("core: %s", running())
    asyncio.run(check_connection(settings))
    created = asyncio.run(create_topics(settings))
    if created:
        log.warning("created missing topics: %s", ", ".join(created))
    codecs, registry = None, None
    if settings.schema_registry_url:
        from streams.schema_registry import SchemaRegistry  # httpx and its client: 9 MB, loaded only when used

        registry = SchemaRegistry(settings)
        codecs = asyncio.run(registry.register_all(output_specs(settings).values()))
        log.info("registered output schemas: %s", ", ".join(f"{t}={c.schema_id}" for t, c in codecs.items()))
    worker = AcwWorker(settings, metrics, codecs, registry)
    if settings.store == "rocksdb://":
        from pathlib import Path

        from streams.stores import discard_unreadable_stores

        metrics.stores_discarded.inc(len(discard_unreadable_stores(Path(worker.app.conf.tabledir))))
    faust_worker = Worker(
        worker.app, loglevel=settings.log_level, quiet=True, logging_config=logs.dict_config(settings.log_level)
    )
    faust_worker.spinner = None  # it writes terminal control codes into log files
    faust_worker.execute_from_commandline()
