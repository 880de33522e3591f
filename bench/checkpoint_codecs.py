"""Compression of the worker's checkpoint batches: gzip (level 9, aiokafka's), lz4 and zstd, on a real checkpoint.

    .venv/bin/python -m bench.checkpoint_codecs [--agents 2000] [--runs 5] [--out bench/results/checkpoint_codecs.json]

The checkpoint is what the interval stage writes for one partition: every entry of an `AcwPipeline` that
replayed a generated day (its dirty entries and meta, as JSON, the way `streams/worker/stage.py` writes
them), concatenated as one record batch's payload. Prints MB/s of uncompressed input and the ratio, medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka.codec import gzip_decode, gzip_encode, lz4_decode, lz4_encode, zstd_decode, zstd_encode

from streams.domain.pipeline import AcwPipeline
from streams.domain.processor import RulesConfig
from streams.settings import Settings
from streams.traffic import TrafficShape, generate

ROOT = Path(__file__).resolve().parents[1]


def checkpoint_payload(agents: int) -> bytes:
    """The keys and values of one full checkpoint of a pipeline that saw `agents` agents' day."""
    pipeline = AcwPipeline(RulesConfig(), Settings().aggregation())
    for event in generate(TrafficShape(agents=agents, contacts_per_agent=20), seed=11):
        pipeline.offer(event)
    entries: dict[str, Any] = pipeline.take_dirty()
    entries["m"] = pipeline.meta()
    return b"".join(orjson.dumps(k) + (b"" if v is None else orjson.dumps(v)) for k, v in entries.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "checkpoint_codecs.json")
    args = parser.parse_args()
    payload = checkpoint_payload(args.agents)
    codecs = {"gzip": (gzip_encode, gzip_decode), "lz4": (lz4_encode, lz4_decode), "zstd": (zstd_encode, zstd_decode)}
    result: dict[str, Any] = {"payload_bytes": len(payload), "codecs": {}}
    for name, (encode, decode) in codecs.items():
        enc, dec = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            packed = encode(payload)
            enc.append(len(payload) / (time.perf_counter() - t) / 1e6)
            t = time.perf_counter()
            assert bytes(decode(packed)) == payload
            dec.append(len(payload) / (time.perf_counter() - t) / 1e6)
        result["codecs"][name] = {
            "ratio": round(len(payload) / len(packed), 2),
            "compress_mb_per_s": round(statistics.median(enc), 1),
            "decompress_mb_per_s": round(statistics.median(dec), 1),
        }
        c = result["codecs"][name]
        print(
            f"{name:5} ratio {c['ratio']:5.2f}  compress {c['compress_mb_per_s']:7.1f} MB/s  "
            f"decompress {c['decompress_mb_per_s']:7.1f} MB/s  (medians of {args.runs})"
        )
    print(f"payload: {len(payload):,} bytes of one checkpoint ({args.agents} agents)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
