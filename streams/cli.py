"""`acw`: the command line (worker, replay, produce, topics create). Exit codes: 0 ok, 1 failure, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from streams import logs
from streams.connection import install_redaction, redact, secrets
from streams.settings import ConfigError, Settings
from streams.sources.formats import FORMATS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acw",
        description="ACW Streams: after-call-work intervals from call-lifecycle events.",
        epilog="Settings come from ACW_* environment variables; see README.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "worker",
        help="run the streaming worker (Faust) against Kafka",
        description="Consume the input topics (ACW_INPUT_TOPICS, or ACW_INPUT_TOPIC in ACW_INPUT_FORMAT), publish "
        "intervals, window aggregates, alerts and dead letters; serve /metrics.",
    )

    rp = sub.add_parser(
        "replay",
        help="run the core over JSON Lines or Avro files, no broker",
        description="Writes DIR/intervals.jsonl, DIR/dead-letter.jsonl and DIR/summary.json.",
    )
    rp.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="JSON Lines or Avro container files")
    rp.add_argument(
        "--input-format",
        choices=FORMATS,
        help="format of the records: our CallEvent (json, or avro container files; the default) or a platform's "
        "records, one JSON object per line",
    )
    rp.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory (created)")
    rp.add_argument("--max-acw-seconds", type=float, help="ACW timeout (default ACW_MAX_ACW_SECONDS or 1800)")
    rp.add_argument(
        "--allowed-lateness-seconds",
        type=float,
        help="allowed lateness (default ACW_ALLOWED_LATENESS_SECONDS or 5)",
    )
    rp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    rp.add_argument(
        "--intervals-only", action="store_true", help="skip window aggregates and alerts (faster; empty files)"
    )

    pp = sub.add_parser(
        "produce",
        help="send a file's events to Kafka keyed by agent_id",
        description="Valid events are encoded in ACW_INPUT_FORMAT; invalid lines are sent raw.",
    )
    pp.add_argument("file", type=Path, metavar="FILE")
    pp.add_argument("--topic", help="topic (default ACW_INPUT_TOPIC)")
    pp.add_argument(
        "--format",
        choices=FORMATS,
        help="avro or json: encode our events; a platform format: send each line as it is, keyed by its agent's "
        "routing key (default ACW_INPUT_FORMAT)",
    )
    pp.add_argument(
        "--unkeyed", action="store_true", help="platform formats: send records unkeyed, as EventBridge does"
    )

    gp = sub.add_parser(
        "generate",
        help="write deterministic synthetic call events as JSON Lines",
        description="Agents working a shift: voice and chat, holds, missed offers, timeouts.",
    )
    gp.add_argument("--out", required=True, type=Path, metavar="FILE")
    gp.add_argument("--agents", type=int, default=100, help="number of agents (default 100)")
    gp.add_argument("--contacts", type=int, default=20, help="contacts per agent (default 20)")
    gp.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    gp.add_argument("--start-ms", type=int, help="first event time, epoch ms (default 2026-01-01)")

    sp = sub.add_parser(
        "simulate",
        help="simulate a contact center's call events (to a file or to Kafka)",
        description="Agents in teams and queues, shifts, breaks, voice and chat, holds, missed offers, "
        "next-contact transfers and timeouts, with ACW calibrated to an industry preset; faults on demand.",
    )
    sp.add_argument("--agents", type=int, default=50, help="number of agents (default 50)")
    sp.add_argument("--duration", default="8h", help="simulated time, e.g. 90m, 8h, 1d (default 8h)")
    sp.add_argument("--rate", type=float, default=4.0, help="contacts offered per voice agent per hour (default 4)")
    sp.add_argument("--preset", default="general", help="general, financial_services, healthcare, technical_support")
    sp.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    sp.add_argument("--start", help="first event time: ISO-8601 or epoch ms (default: now)")
    sp.add_argument(
        "--speed", type=float, default=0.0, help="1 = real time, N = N times faster, 0 = as fast as possible"
    )
    sink = sp.add_mutually_exclusive_group(required=True)
    sink.add_argument("--out", type=Path, metavar="FILE", help="write JSON Lines (.jsonl) or an Avro container (.avro)")
    sink.add_argument("--topic", help="send to this Kafka topic, keyed by agent (format ACW_INPUT_FORMAT)")
    sp.add_argument(
        "--format",
        choices=FORMATS,
        help="record format: our CallEvent (json or avro, default ACW_INPUT_FORMAT for topics, by suffix for files) "
        "or a platform's records, rendered from the same simulated events",
    )
    sp.add_argument(
        "--directory", type=Path, metavar="CSV", help="also write the simulated agents' directory (ACW_AGENT_DIRECTORY)"
    )
    sp.add_argument("--duplicates", type=float, default=0.0, metavar="RATE", help="share of events sent twice")
    sp.add_argument("--reorder-ms", type=int, default=0, metavar="MS", help="shuffle events within this window")
    sp.add_argument("--late", type=float, default=0.0, metavar="RATE", help="share of events delayed past the lateness")
    sp.add_argument("--malformed", type=float, default=0.0, metavar="RATE", help="garbage records per event")

    lp = sub.add_parser(
        "top",
        help="live terminal view: agents in ACW now, team averages against the benchmark, alerts, events/s",
        description="Follows the input, aggregates and alerts topics from their start and redraws every second.",
    )
    lp.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")

    wp = sub.add_parser("watch", help="print intervals from the intervals topic as they arrive")
    wp.add_argument("--limit", type=int, help="stop after this many")

    tp = sub.add_parser("topics", help="manage the product's topics")
    tsub = tp.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    tsub.add_parser("create", help="create the input, re-key, intervals and dead-letter topics if missing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `acw` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            os.environ,
            max_acw_seconds=getattr(args, "max_acw_seconds", None),
            allowed_lateness_seconds=getattr(args, "allowed_lateness_seconds", None),
        )
    except ConfigError as exc:
        print(f"acw: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    install_redaction(settings)
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        print(f"acw: configuration error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"acw: {redact(str(exc), secrets(settings))}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "replay":
        return _replay(args, settings)
    if args.command == "produce":
        return _produce(args, settings)
    if args.command == "generate":
        return _generate(args)
    if args.command == "simulate":
        return _simulate(args, settings)
    if args.command == "top":
        from streams.live import main_live

        return main_live(settings, args.seconds)
    if args.command == "watch":
        from streams.kafka_io import watch_intervals

        asyncio.run(watch_intervals(settings, lambda line: print(line, flush=True), args.limit))
        return 0
    if args.command == "topics":
        from streams.kafka_io import create_topics

        created = asyncio.run(create_topics(settings))
        print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")
        return 0
    if args.command == "worker":
        from prometheus_client import CollectorRegistry

        from streams.exposition import serve
        from streams.metrics import Metrics
        from streams.worker import run_worker

        registry = CollectorRegistry()
        if settings.metrics_port:
            serve(registry, settings.metrics_host, settings.metrics_port, settings.metrics_refresh_seconds)
        teams, queues, limit = settings.metric_labels()
        run_worker(settings, Metrics(registry, teams, queues, limit, settings.metrics_agent_labels))
        return 0
    raise AssertionError(args.command)


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from streams.replay import replay
    from streams.sources.formats import build_source
    from streams.sources.intake import Intake

    max_future_ms = round(settings.max_future_seconds * 1000)
    fmt = args.input_format or (settings.input_format if settings.input_format not in ("avro", "json") else "json")
    intake = Intake(build_source(fmt, settings), settings.directory(), max_future_ms)
    for path in args.inputs:
        if not path.is_file():
            print(f"acw replay: no such file: {path}", file=sys.stderr)
            return 1
    started = time.perf_counter()

    def progress(n: int) -> None:
        if not args.quiet:
            print(f"  {n:,} events…", file=sys.stderr)

    summary = replay(
        args.inputs,
        args.out,
        settings.rules(),
        progress,
        settings.aggregation(),
        aggregate=not args.intervals_only,
        max_future_ms=max_future_ms,
        intake=intake,
    )
    elapsed = time.perf_counter() - started
    rate = summary.events / elapsed if elapsed > 0 else 0.0
    print(
        f"{summary.events:,} events in {elapsed:.2f}s ({rate:,.0f}/s): "
        f"{sum(summary.intervals.values()):,} intervals, {summary.duplicates:,} duplicates, {summary.late:,} late, "
        f"{sum(summary.rejected.values()):,} rejected, {summary.still_open:,} still open -> {args.out}"
    )
    return 0


def _generate(args: argparse.Namespace) -> int:
    import orjson

    from streams.traffic import T_START_MS, TrafficShape, generate

    if args.agents < 1 or args.contacts < 0:
        print("acw generate: --agents must be >= 1 and --contacts >= 0", file=sys.stderr)
        return 2
    shape = TrafficShape(agents=args.agents, contacts_per_agent=args.contacts, start_ms=args.start_ms or T_START_MS)
    events = generate(shape, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f:
        for event in events:
            f.write(orjson.dumps(event.to_record()) + b"\n")
    print(f"wrote {len(events):,} events of {args.agents} agents to {args.out}")
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.simulator import Faults, SimulationConfig, directory_csv, parse_duration, parse_start
    from streams.simulator_io import run_simulation

    try:
        config = SimulationConfig(
            agents=args.agents,
            duration_ms=parse_duration(args.duration),
            start_ms=parse_start(args.start),
            preset=args.preset,
            rate_per_agent_hour=args.rate,
            seed=args.seed,
        )
        faults = Faults(
            duplicate_rate=args.duplicates,
            reorder_ms=args.reorder_ms,
            late_rate=args.late,
            late_by_ms=round(settings.allowed_lateness_seconds * 1000) + 20_000,
            malformed_rate=args.malformed,
        )
    except ValueError as exc:
        print(f"acw simulate: {exc}", file=sys.stderr)
        return 2
    if args.speed < 0:
        print("acw simulate: --speed must be >= 0", file=sys.stderr)
        return 2
    if args.directory is not None:
        args.directory.parent.mkdir(parents=True, exist_ok=True)
        args.directory.write_text(directory_csv(config))
    try:
        counts = run_simulation(
            config, faults, settings, out=args.out, topic=args.topic, speed=args.speed, fmt=args.format
        )
    except ValueError as exc:
        print(f"acw simulate: {exc}", file=sys.stderr)
        return 2
    where = args.out or f"topic {args.topic}"
    extras = ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items()) if k != "events") or "no faults"
    print(f"simulated {counts['events']:,} events of {args.agents} agents ({extras}) -> {where}")
    return 0


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka_io import produce_file

    if not args.file.is_file():
        print(f"acw produce: no such file: {args.file}", file=sys.stderr)
        return 1
    topic = args.topic or settings.input_topic
    fmt = args.format or settings.input_format
    summary = asyncio.run(produce_file(args.file, topic, settings, fmt, keyed=not args.unkeyed))
    print(f"sent {summary.valid:,} events and {summary.invalid:,} invalid records to {topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
