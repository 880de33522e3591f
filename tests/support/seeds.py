"""Seeds of tests' random choices: printed (pytest shows them with a failure); ACW_TEST_SEED repeats a run."""

from __future__ import annotations

import os
import random


def logged_seed(what: str) -> int:
    """A seed for `what`: ACW_TEST_SEED when set, else a fresh one; printed either way."""
    seed = int(os.environ.get("ACW_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"{what}: seed {seed} (ACW_TEST_SEED={seed} repeats it)")
    return seed
