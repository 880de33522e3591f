"""The project's own Kafka broker and Schema Registry (deploy/), started on a free port and stopped again."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKER = ROOT / "deploy" / "kafka" / "broker.sh"
REGISTRY = ROOT / "deploy" / "registry" / "registry.sh"


@contextmanager
def running(script: Path, run_dir: Path, *options: str) -> Iterator[str]:
    """Start `script` (broker.sh or registry.sh) on a free port with its files in `run_dir`; yield its address."""
    out = subprocess.run(
        [str(script), "start", "--port", "0", "--dir", str(run_dir), *options],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{script.name} start failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(script), "stop", "--dir", str(run_dir)], check=False)


def broker(run_dir: Path, conf: Path | None = None) -> AbstractContextManager[str]:
    """A local single-node Kafka, with the broker settings in `conf` added if given; yields its bootstrap address."""
    return running(BROKER, run_dir, *(["--conf", str(conf)] if conf is not None else []))


def registry(run_dir: Path) -> AbstractContextManager[str]:
    """A local Schema Registry (Apicurio, Confluent API); yields its URL."""
    return running(REGISTRY, run_dir)
