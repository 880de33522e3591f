"""Local state stores: each partition's RocksDB files are read through before Faust opens them.

The changelog topics are the durable copy of the state; the local store is a cache of them. A store
that cannot be opened or read through (a crash mid-write, a full disk, a bad block) is removed, and
Faust rebuilds it from its changelog when the partition is assigned, instead of crashing the worker.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger("acw.stores")


def unreadable(path: Path) -> str | None:
    """Why the RocksDB store at `path` cannot be opened or read through, or None when it can."""
    import rocksdict

    try:
        db = rocksdict.Rdict(
            str(path), options=rocksdict.Options(raw_mode=True), access_type=rocksdict.AccessType.read_only()
        )
        try:
            # Iterating stops quietly at a bad block (so Faust's own reads would just see less state);
            # the iterator's status says why it stopped.
            it = db.iter()
            it.seek_to_first()
            while it.valid():
                it.next()
            it.status()
            del it
        finally:
            db.close()
    except Exception as exc:  # rocksdict raises plain exceptions whose message says what is wrong
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def discard_unreadable_stores(tabledir: Path) -> list[str]:
    """Remove every partition store under `tabledir` that cannot be read; returns their names."""
    removed = []
    for store in sorted(tabledir.glob("*.db")):
        problem = unreadable(store)
        if problem is None:
            continue
        log.warning(
            "local store %s is unreadable (%s): removing it to rebuild it from its changelog", store.name, problem
        )
        shutil.rmtree(store, ignore_errors=True)
        removed.append(store.name)
    return removed
