"""`acw replay` of two checkouts, alternated on the same file: the same-run comparison a core change needs.

    git worktree add /tmp/base <before>
    .venv/bin/python -m bench.replay_ab FILE --baseline-tree /tmp/base [--runs 5] [--out bench/results/replay_ab.json]

Each run replays FILE (JSON Lines) with the default job as `acw replay` runs it (ACW_REPLAY_PROCESSES), with the
default job in one process, and with intervals only, once in each tree, in a fresh
process whose `streams` package comes from that tree; events/s is timed inside the process around `replay()`
(as `bench.bench` does), so start-up and imports are left out. Prints and writes the medians and every run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
JOBS = ("default", "default-one-process", "intervals-only")
_TIMED = """
import sys, tempfile, time
from pathlib import Path
from streams.domain.processor import RulesConfig
from streams.replay import replay
from streams.settings import Settings
path = Path(sys.argv[1])
events = sum(1 for _ in open(path, "rb"))
settings = Settings()
options = {}
if hasattr(settings, "replay_process_count"):  # as `acw replay` runs it; a tree from before has one process
    options["processes"] = 1 if sys.argv[2] == "default-one-process" else settings.replay_process_count()
with tempfile.TemporaryDirectory() as out:
    started = time.perf_counter()
    replay([path], Path(out), RulesConfig(), aggregate=sys.argv[2] != "intervals-only", **options)
    print(events / (time.perf_counter() - started))
"""


def _rate(tree: Path, path: Path, job: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _TIMED, str(path), job],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="JSON Lines of CallEvents")
    parser.add_argument("--baseline-tree", type=Path, required=True, help="a checkout of the version to compare with")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replay_ab.json")
    args = parser.parse_args()
    if not (args.baseline_tree / "streams").is_dir():
        parser.error(f"--baseline-tree {args.baseline_tree} holds no streams package")
    trees = {"baseline": args.baseline_tree.resolve(), "this": ROOT}
    rates: dict[str, dict[str, list[float]]] = {job: {t: [] for t in trees} for job in JOBS}
    for run in range(args.runs):
        for job in JOBS:
            for name, tree in trees.items():
                rates[job][name].append(_rate(tree, args.file.resolve(), job))
        print(
            f"run {run + 1}/{args.runs}: " + ", ".join(f"{j} {rates[j]['this'][-1]:,.0f}/s" for j in JOBS), flush=True
        )
    result = {
        "command": "python -m bench.replay_ab " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "file": str(args.file),
        "medians": {job: {t: statistics.median(v) for t, v in by_tree.items()} for job, by_tree in rates.items()},
        "runs": rates,
    }
    for job in JOBS:
        base, this = result["medians"][job]["baseline"], result["medians"][job]["this"]
        print(f"{job}: {this:,.0f} events/s against {base:,.0f} ({this / base:.2f}x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
