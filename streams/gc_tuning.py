"""The garbage collector's thresholds for a long stream run: young collections far apart, start-up objects frozen.

CPython collects its youngest generation after 700 net container allocations. A worker allocates records,
tuples and dicts by the million and keeps a large heap of long-lived ones (Faust, aiokafka, the state of
thousands of agents), so with those defaults it collects often and the older generations it promotes into
are traversed again and again: freezing the start-up heap with a young threshold of 50,000 gave 1.23x the
events/s on the peers benchmark (docs/benchmarks.md). Collections still took 1.2 s of a 32 s run there, and
found next to nothing: over a whole run the collector freed about 1,800 objects in cycles, nearly all made at
start-up. So the young threshold is now 1,000,000 (no collection at all after start-up in that run), older
generations every 20 and 100 collections of the one below. Reference counting still frees everything without
cycles at once; only cyclic garbage, which this workload hardly makes, waits longer for its collection.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_THRESHOLD = 1_000_000
OLDER = (20, 100)  # collections of the generation below between two of gen 1, of gen 2


def tune(threshold: int) -> tuple[int, int, int] | None:
    """Freeze what exists and set the thresholds, unless `threshold` is 0; returns the thresholds set."""
    if threshold <= 0:
        return None
    gc.freeze()  # modules, settings and what start-up built: never garbage, never traversed again
    thresholds = (threshold, *OLDER)
    gc.set_threshold(*thresholds)
    return thresholds


@contextmanager
def tuned(threshold: int) -> Iterator[tuple[int, int, int] | None]:
    """`tune` for the duration of a block (a replay inside a longer process), then the thresholds as they were."""
    before, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    thresholds = tune(threshold)
    try:
        yield thresholds
    finally:
        if thresholds is not None:
            gc.set_threshold(*before)
            if not frozen_before:  # unfreeze releases every frozen object, so only when the block froze them all
                gc.unfreeze()
