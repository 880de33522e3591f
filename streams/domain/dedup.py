"""The event ids one agent saw within the de-duplication window, kept compactly."""

from __future__ import annotations

import base64
import hashlib
import sys
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

# Below this many ids an agent's memory is not pruned on insert (the periodic sweep still prunes it).
MIN_PRUNE_AT = 64
DIGEST_BYTES = 8


_BLAKE2B = hashlib.blake2b(digest_size=DIGEST_BYTES)  # copied per id: cheaper than a call with the keyword


def digest(event_id: str) -> bytes:
    """An event id's 64-bit BLAKE2b digest: what the de-duplication memory keeps of it."""
    h = _BLAKE2B.copy()
    h.update(event_id.encode())
    return h.digest()


class SeenEvents:
    """Digests of the event ids an agent saw, in arrival order, and beside them their event times (ms).

    Ids are most of the worker's state (every event of the last hour of every agent): as strings in a dict
    one cost about 100 bytes, here it costs 16 (an 8-byte digest and an 8-byte time). Two different ids of
    one agent within the window share a digest with odds of about n^2 / 2^65 for n ids (n = 100: 3e-16);
    the later one would count as a repeat.

    An agent's events mostly arrive in time order. While its times ascend, the oldest is the first and
    pruning cuts a prefix found by bisection; otherwise both look at every time.
    """

    __slots__ = ("_ascending", "_digests", "_times", "prune_at")

    def __init__(self, digests: bytearray | None = None, times: array[int] | None = None) -> None:
        self._digests = bytearray() if digests is None else digests
        self._times: array[int] = array("q") if times is None else times
        self.prune_at = max(MIN_PRUNE_AT, 2 * len(self._times))
        self._ascending = _ascending(self._times)

    @classmethod
    def of(cls, plain: Any) -> SeenEvents:
        """From `to_plain`'s form, or from a checkpoint written before digests: event id -> event time."""
        if isinstance(plain, Mapping):
            return cls(bytearray(b"".join(map(digest, plain))), array("q", plain.values()))
        digests, packed = (base64.b64decode(part) for part in plain)
        times = array("q", packed)
        if sys.byteorder != "little":
            times.byteswap()
        return cls(bytearray(digests), times)

    def __len__(self) -> int:
        return len(self._times)

    def __contains__(self, event_id: str) -> bool:
        return self._find(digest(event_id))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeenEvents):
            return NotImplemented
        return self._digests == other._digests and self._times == other._times

    __hash__ = None  # type: ignore[assignment]

    def _find(self, d: bytes) -> bool:
        digests, at = self._digests, self._digests.find(d)
        while at > 0 and at % DIGEST_BYTES:  # a match across two digests: look further
            at = digests.find(d, at + 1)
        return at >= 0

    def add(self, event_id: str, occurred_at_ms: int, cutoff_ms: int) -> bool:
        """Record an event id; False if it was already seen. Past `prune_at` ids, those before the cutoff go."""
        d = digest(event_id)
        if self._find(d):
            return False
        times = self._times
        if self._ascending and times and occurred_at_ms < times[-1]:
            self._ascending = False
        self._digests += d
        times.append(occurred_at_ms)
        if len(times) >= self.prune_at:
            self.prune(cutoff_ms)
        return True

    def oldest_ms(self) -> int | None:
        """The earliest event time remembered, None when empty."""
        if not self._times:
            return None
        return self._times[0] if self._ascending else min(self._times)

    def prune(self, cutoff_ms: int) -> None:
        """Forget the ids of events before the cutoff, keeping the others in their order."""
        digests, times = self._digests, self._times
        if self._ascending:
            first = bisect_left(times, cutoff_ms)
            if first:
                self._digests = digests[first * DIGEST_BYTES :]
                self._times = times[first:]
            self.prune_at = max(MIN_PRUNE_AT, 2 * (len(times) - first))
            return
        kept = [i for i, t in enumerate(times) if t >= cutoff_ms]
        if len(kept) < len(times):
            self._digests = bytearray(b"".join(digests[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES] for i in kept))
            self._times = array("q", [times[i] for i in kept])
            self._ascending = _ascending(self._times)
        self.prune_at = max(MIN_PRUNE_AT, 2 * len(kept))

    def to_plain(self) -> list[str]:
        """The changelog's form: the digests and the times (little-endian int64), each packed and base64-encoded."""
        times = self._times
        if sys.byteorder != "little":
            times = array("q", times)
            times.byteswap()
        return [base64.b64encode(self._digests).decode(), base64.b64encode(times.tobytes()).decode()]


def _ascending(times: array[int]) -> bool:
    """Whether the times never decrease."""
    return all(times[i - 1] <= times[i] for i in range(1, len(times)))
