"""A partition's checkpointed state in two numbers, written beside it, to tell a complete restore from a partial one.

Faust rebuilds the local store from the changelog, and a standby that becomes active can keep a store that
misses records of the changelog (docs/benchmarks.md, "Cause found"): the store then holds the latest meta
but older or missing entries. The fingerprint (live-entry count and the XOR of a 64-bit hash per live
entry) is computed from the bytes each checkpoint writes, stored in the meta, and recomputed from whatever
a restore read; when they differ the restore is incomplete and the stage reads the changelog itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from hashlib import blake2b
from typing import Any

import orjson

META_COUNT = "n"
META_DIGEST = "fp"


def entry_hash(name: str, value: bytes) -> int:
    """A 64-bit hash of one entry's name and its JSON bytes as written to the changelog."""
    h = blake2b(name.encode(), digest_size=8)
    h.update(b"\x00")
    h.update(value)
    return int.from_bytes(h.digest(), "big")


class Fingerprint:
    """The hashes of one partition's live checkpointed entries, and their XOR."""

    __slots__ = ("digest", "hashes")

    def __init__(self) -> None:
        self.hashes: dict[str, int] = {}
        self.digest = 0

    @classmethod
    def of(cls, entries: Mapping[str, Any]) -> Fingerprint:
        """The fingerprint of restored entries (plain data as the changelog's JSON decodes to; None is absent)."""
        fp = cls()
        for name, value in entries.items():
            if value is not None:
                h = entry_hash(name, orjson.dumps(value))
                fp.hashes[name] = h
                fp.digest ^= h
        return fp

    def after(self, changes: Iterable[tuple[str, bytes | None]]) -> Change:
        """What writing these entries (None deletes) makes of the fingerprint; nothing changes until `commit`."""
        change = self.change()
        for name, value in changes:
            change.write(name, value)
        return change

    def change(self) -> Change:
        """An empty change to this fingerprint, to `write` entries into one at a time."""
        return Change(self.hashes, {}, self.digest, len(self.hashes))

    def commit(self, change: Change) -> None:
        """Take a change whose checkpoint was written."""
        for name, h in change.hashes.items():
            if h is None:
                self.hashes.pop(name, None)
            else:
                self.hashes[name] = h
        self.digest = change.digest

    def matches(self, meta: Mapping[str, Any]) -> bool:
        """Whether the entries this was computed from are those the checkpoint with `meta` wrote.

        Checkpoints written before fingerprints existed carry none and match anything.
        """
        if META_DIGEST not in meta:
            return True
        return meta[META_COUNT] == len(self.hashes) and meta[META_DIGEST] == f"{self.digest:016x}"


class Change:
    """A checkpoint's effect on a fingerprint: the new hash of each entry it writes (None: deleted)."""

    __slots__ = ("base", "count", "digest", "hashes")

    def __init__(self, base: Mapping[str, int], hashes: dict[str, int | None], digest: int, count: int) -> None:
        self.base = base  # the hashes of the fingerprint this changes, read only
        self.hashes = hashes
        self.digest = digest
        self.count = count

    def write(self, name: str, value: bytes | None) -> None:
        """Count one entry written (None deletes), as its JSON bytes go to the changelog."""
        old = self.hashes[name] if name in self.hashes else self.base.get(name)
        new = None if value is None else entry_hash(name, value)
        self.digest ^= (old or 0) ^ (new or 0)
        self.count += (new is not None) - (old is not None)
        self.hashes[name] = new

    def meta(self) -> dict[str, Any]:
        """The fields stored in the checkpoint's meta."""
        return {META_COUNT: self.count, META_DIGEST: f"{self.digest:016x}"}
