"""`acw`: the command line (worker, replay, consume, topics, ...). Exit codes: 0 ok, 1 failure, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from streams import __version__, gc_tuning, logs
from streams.connection import install_redaction, redact, secrets
from streams.progress import Progress
from streams.settings import ConfigError, Settings
from streams.sources.formats import FORMATS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acw",
        description="ACW Streams: after-call-work intervals from call-lifecycle events.",
        epilog="Settings come from ACW_* environment variables; see README.md.",
    )
    parser.add_argument("--version", action="version", version=f"acw {__version__}")
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
        description="Writes DIR/intervals.jsonl, aggregates.jsonl (final windows), alerts.jsonl, dead-letter.jsonl "
        "and summary.json. Avro container files are read with their writer schema resolved to ours.",
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
    rp.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        help="2 merges windows in a second process (same output, about 1.5x faster with windows); "
        "default ACW_REPLAY_PROCESSES, else 2 when two CPUs are free to it",
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
    pp.add_argument("--quiet", action="store_true", help="no progress on stderr")

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
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    lp = sub.add_parser(
        "top",
        help="live terminal view: agents in ACW now, team averages against the benchmark, alerts, events/s",
        description="Starts from the present: the agent-state topic (compacted, read whole), the aggregates and "
        "alerts of the latest windows; then follows them and the input (for events/s) and redraws every second.",
    )
    lp.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")

    rep = sub.add_parser(
        "report",
        help="an HTML report with figures of ACW for managers, from replay output or the intervals topic",
        description="Writes OUT/index.html (one self-contained file), one PNG per figure and figures.json: average "
        "ACW, ACW %% and AHT by team and queue against the benchmark band, distributions, a heatmap by time of day, "
        "agents for the huddle, what ended ACW, disposition codes, the cost in hours and FTEs, and --compare.",
    )
    where = rep.add_mutually_exclusive_group(required=True)
    where.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="an `acw replay --out` directory")
    where.add_argument(
        "--from-topics", action="store_true", help="read ACW_INTERVALS_TOPIC from the broker, up to its current end"
    )
    rep.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory (created)")
    rep.add_argument("--since", metavar="TIME", help="contacts disconnected at or after: ISO-8601, epoch ms, 15m/2h/1d")
    rep.add_argument("--until", metavar="TIME", help="contacts disconnected before: ISO-8601, epoch ms, 15m/2h/1d")
    rep.add_argument("--benchmark", help="the band to compare with (default ACW_BENCHMARK)")
    rep.add_argument("--tz", default="UTC", help="time zone of the heatmap's times of day and of days (default UTC)")
    rep.add_argument(
        "--min-contacts", type=int, default=20, metavar="N", help="contacts an agent needs to be listed (default 20)"
    )
    rep.add_argument("--shift-hours", type=float, default=8.0, help="paid hours of one shift, for FTEs (default 8)")
    rep.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="two periods or groups: START..END, agents:FILE, agents:ID,ID, team:T, queue:Q or rest",
    )
    rep.add_argument("--seed", type=int, default=1, help="seed of --compare's bootstrap (default 1)")

    cp = sub.add_parser(
        "consume",
        help="print any of the product's topics decoded, as JSON Lines with --json",
        description="Decodes TOPIC by its specification: Avro of our schemas (Confluent-framed, with each writer's "
        "schema from the registry, when ACW_SCHEMA_REGISTRY_URL is set), JSON for platform formats. Starts at the "
        "end (new records only) unless told otherwise; runs until --limit, --to-end or Ctrl-C.",
    )
    cp.add_argument(
        "topic",
        metavar="TOPIC",
        help="one of the product's topics (inputs, intervals, aggregates, alerts, dead letters, internal ones)",
    )
    start = cp.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    start.add_argument(
        "--since", metavar="TIME", help="start at this Kafka timestamp: ISO-8601, epoch ms, or 15m/2h/1d"
    )
    cp.add_argument("--limit", type=int, metavar="N", help="stop after N records")
    cp.add_argument("--to-end", action="store_true", help="stop at the end offsets seen at start")
    cp.add_argument(
        "--json",
        action="store_true",
        help="JSON Lines: topic, partition, offset, timestamp, key, headers, value (default: a line per record)",
    )

    wp = sub.add_parser("watch", help="alias of `consume ACW_INTERVALS_TOPIC --from-beginning`, one line per interval")
    wp.add_argument("--limit", type=int, help="stop after this many")

    rp2 = sub.add_parser(
        "redrive",
        help="re-send dead letters of the given reasons to the topic they came from (after a fix)",
        description="Reads the dead-letter topic as consumer group ACW_APP_ID-redrive up to its current end and "
        "commits as it goes: a second run sends nothing twice. Re-sent records keep their key and headers and "
        "carry acw-redriven-from.",
    )
    rp2.add_argument("--reason", action="append", required=True, metavar="REASON", help="a reason to re-send (repeat)")
    rp2.add_argument("--to", metavar="TOPIC", help="send to this topic instead of each record's source topic")
    rp2.add_argument("--dry-run", action="store_true", help="count what would be sent; send and commit nothing")

    ap = sub.add_parser(
        "asyncapi",
        help="print the AsyncAPI 3.0 contract of the topics as configured (asyncapi.yaml holds the defaults')",
    )
    ap.add_argument("--out", type=Path, metavar="FILE", help="write it to FILE instead")

    tp = sub.add_parser("topics", help="create or verify the product's topics")
    tsub = tp.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    tsub.add_parser("create", help="create every missing topic with its partitions, replication and configs")
    tsub.add_parser(
        "verify",
        help="compare existing topics with what the product needs; exit 1 naming each difference",
    )
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
    if args.command == "report":
        return _report(args, settings)
    if args.command == "generate":
        return _generate(args)
    if args.command == "simulate":
        return _simulate(args, settings)
    if args.command == "top":
        from streams.live import main_live

        return main_live(settings, args.seconds)
    if args.command == "watch":
        return _consume(args, settings, watch=True)
    if args.command == "consume":
        return _consume(args, settings)
    if args.command == "redrive":
        return _redrive(args, settings)
    if args.command == "topics":
        return _topics(args, settings)
    if args.command == "asyncapi":
        from streams.asyncapi import render

        text = render(settings)
        if args.out:
            args.out.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    if args.command == "worker":
        from prometheus_client import CollectorRegistry

        from streams.exposition import serve
        from streams.metrics import Metrics
        from streams.worker import run_worker
        from streams.worker.allocator import tune

        if settings.malloc_tuning:  # before any thread starts, so that no more arenas are made
            tune(os.environ)
        registry = CollectorRegistry()
        if settings.metrics_port:
            serve(registry, settings.metrics_host, settings.metrics_port, settings.metrics_refresh_seconds)
        teams, queues, limit = settings.metric_labels()
        gc_tuning.tune(settings.gc_threshold)
        run_worker(settings, Metrics(registry, teams, queues, limit, settings.metrics_agent_labels, settings.benchmark))
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
    with Progress("replay", enabled=not args.quiet) as bar:
        summary = replay(
            args.inputs,
            args.out,
            settings.rules(),
            bar.update,
            settings.aggregation(),
            aggregate=not args.intervals_only,
            max_future_ms=max_future_ms,
            intake=intake,
            gc_threshold=settings.gc_threshold,
            processes=args.processes or settings.replay_process_count(),
        )
    elapsed = time.perf_counter() - started
    rate = summary.events / elapsed if elapsed > 0 else 0.0
    print(
        f"{summary.events:,} events in {elapsed:.2f}s ({rate:,.0f}/s): "
        f"{sum(summary.intervals.values()):,} intervals, {summary.duplicates:,} duplicates, {summary.late:,} late, "
        f"{sum(summary.rejected.values()):,} rejected, {summary.still_open:,} still open -> {args.out}"
    )
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from streams.consume import ConsumeError, parse_since
    from streams.domain.benchmarks import BANDS

    try:
        from streams.report.build import ReportOptions, write_report
    except ModuleNotFoundError as exc:
        print(
            f"acw report needs the report extra ({exc.name} is missing): pip install 'acw-streams[report]'",
            file=sys.stderr,
        )
        return 1
    from streams.report.compare import SelectorError, parse_side
    from streams.report.contacts import read_replay_dir, unique

    benchmark = args.benchmark or settings.benchmark
    try:
        if benchmark not in BANDS:
            raise ValueError(f"--benchmark must be one of {', '.join(BANDS)}, got {benchmark!r}")
        ZoneInfo(args.tz)
        since = parse_since(args.since) if args.since else None
        until = parse_since(args.until) if args.until else None
        sides = (parse_side(args.compare[0]), parse_side(args.compare[1])) if args.compare else None
        if args.min_contacts < 1 or args.shift_hours <= 0:
            raise ValueError("--min-contacts must be >= 1 and --shift-hours > 0")
    except ZoneInfoNotFoundError:
        print(f"acw report: --tz {args.tz!r}: not a time zone (e.g. UTC, Europe/Berlin)", file=sys.stderr)
        return 2
    except (ValueError, ConsumeError, SelectorError, OSError) as exc:
        print(f"acw report: {exc}", file=sys.stderr)
        return 2
    if args.from_topics:
        from streams.report.topics import read_intervals_topic

        records = asyncio.run(read_intervals_topic(settings, since, _note))
    else:
        records = list(read_replay_dir(args.dir))
    contacts = unique(records, since, until)
    if not contacts:
        print("acw report: no ACW intervals in the input and period", file=sys.stderr)
        return 1
    options = ReportOptions(
        benchmark=benchmark,
        tz=args.tz,
        min_contacts=args.min_contacts,
        shift_hours=args.shift_hours,
        compare=sides,
        seed=args.seed,
    )
    try:
        files = write_report(contacts, options, args.out)
    except SelectorError as exc:
        print(f"acw report: {exc}", file=sys.stderr)
        return 2
    print(f"{len(contacts):,} contacts -> {files['index.html']} and {len(files) - 2} figures")
    return 0


def _note(text: str) -> None:
    print(f"  {text}", file=sys.stderr)


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.topic_admin import create_topics, verify_topics

    if args.topics_command == "create":
        created = asyncio.run(create_topics(settings))
        print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")
        return 0
    problems = asyncio.run(verify_topics(settings))
    for problem in problems:
        print(problem)
    if problems:
        print(f"acw topics verify: {len(problems)} difference(s)", file=sys.stderr)
        return 1
    print("every topic as the product needs it")
    return 0


def _consume(args: argparse.Namespace, settings: Settings, watch: bool = False) -> int:
    import orjson

    from streams.consume import ConsumeError, Start, consume, parse_since, readable

    if args.limit is not None and args.limit < 1:
        print("acw: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        if watch:
            topic, start, to_end = settings.intervals_topic, Start(beginning=True), False
        else:
            since = parse_since(args.since) if args.since else None
            topic, start, to_end = args.topic, Start(args.from_beginning, since), args.to_end
    except ConsumeError as exc:
        print(f"acw consume: {exc}", file=sys.stderr)
        return 2

    def emit(record: dict[str, object]) -> None:
        if watch:
            print(_interval_line(record["value"]), flush=True)  # type: ignore[arg-type]
        elif args.json:
            sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
            sys.stdout.flush()
        else:
            print(readable(record), flush=True)

    try:
        asyncio.run(consume(settings, topic, start, emit, args.limit, to_end))
    except ConsumeError as exc:
        print(f"acw consume: {exc}", file=sys.stderr)
        return 1
    return 0


def _interval_line(r: dict[str, object]) -> str:
    """One interval as `acw watch` shows it."""
    talk = "-" if r["talk_seconds"] is None else f"{r['talk_seconds']:.0f}s"
    return (
        f"{r['agent_id']:<12} {r['contact_id']:<20} {r['channel']:<5} team={r['team_id'] or '-':<8} "
        f"talk={talk:<6} acw={r['acw_seconds']:>7.1f}s  {r['end_reason']}"
    )


def _redrive(args: argparse.Namespace, settings: Settings) -> int:
    from streams.redrive import redrive

    def progress(n: int) -> None:
        print(f"  {n:,} dead letters read…", file=sys.stderr)

    summary = asyncio.run(redrive(settings, args.reason, args.to, args.dry_run, progress))
    verb = "would re-send" if args.dry_run else "re-sent"
    sent = ", ".join(f"{n:,} {r}" for r, n in sorted(summary.sent.items())) or "nothing"
    skipped = ", ".join(f"{n:,} {r}" for r, n in sorted(summary.skipped.items())) or "none"
    print(f"{verb} {sent}; passed over {skipped}")
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
        # Paced runs follow the clock: progress only for runs as fast as possible.
        with Progress("simulate", enabled=not args.quiet and args.speed == 0) as bar:
            counts = run_simulation(
                config,
                faults,
                settings,
                out=args.out,
                topic=args.topic,
                speed=args.speed,
                fmt=args.format,
                progress=bar.update,
            )
    except ValueError as exc:
        print(f"acw simulate: {exc}", file=sys.stderr)
        return 2
    where = args.out or f"topic {args.topic}"
    extras = ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items()) if k != "events") or "no faults"
    print(f"simulated {counts['events']:,} events of {args.agents} agents ({extras}) -> {where}")
    return 0


def _lines(path: Path) -> int | None:
    """The lines of a JSON Lines file, counted fast; None for an Avro container file."""
    with open(path, "rb") as f:
        if f.read(4) == b"Obj\x01":
            return None
        f.seek(0)
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka_io import produce_file

    if not args.file.is_file():
        print(f"acw produce: no such file: {args.file}", file=sys.stderr)
        return 1
    topic = args.topic or settings.input_topic
    fmt = args.format or settings.input_format
    total = _lines(args.file)
    with Progress(f"produce to {topic}", enabled=not args.quiet) as bar:

        def progress(n: int) -> None:
            bar.update(n, n / total if total else None)

        summary = asyncio.run(produce_file(args.file, topic, settings, fmt, progress, keyed=not args.unkeyed))
    print(f"sent {summary.valid:,} events and {summary.invalid:,} invalid records to {topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
