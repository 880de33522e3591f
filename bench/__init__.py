"""Benchmarks of ACW Streams (bench/run.sh and `python -m bench.NAME`); each writes its figures to bench/results/."""

from __future__ import annotations

import os
import platform


def machine() -> dict[str, object]:
    """What a result was measured with: the interpreter, the cores, the platform, and which build of our core ran."""
    from streams.core_build import running

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "core": running(),
    }
