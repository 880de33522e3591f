"""The event ids one agent saw within the de-duplication window, kept compactly."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping

# Below this many ids an agent's memory is not pruned on insert (the periodic sweep still prunes it).
MIN_PRUNE_AT = 64


class SeenEvents:
    """Event ids in arrival order, and beside them in a packed array their event times (ms).

    An id costs its dict slot and 8 bytes of time, instead of a slot and a 32-byte int object: ids are
    most of the worker's state (every event of the last hour of every agent).
    """

    __slots__ = ("_ids", "_times", "prune_at")

    def __init__(self, ids: dict[str, None] | None = None, times: array[int] | None = None) -> None:
        self._ids: dict[str, None] = {} if ids is None else ids
        self._times: array[int] = array("q") if times is None else times
        self.prune_at = max(MIN_PRUNE_AT, 2 * len(self._ids))

    @classmethod
    def of(cls, seen: Mapping[str, int]) -> SeenEvents:
        """From event id -> event time, in that mapping's order (the changelog's form)."""
        return cls(dict.fromkeys(seen), array("q", seen.values()))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeenEvents):
            return NotImplemented
        return list(self._ids) == list(other._ids) and self._times == other._times

    __hash__ = None  # type: ignore[assignment]

    def add(self, event_id: str, occurred_at_ms: int, cutoff_ms: int) -> bool:
        """Record an event id; False if it was already seen. Past `prune_at` ids, those before the cutoff go."""
        ids = self._ids
        if event_id in ids:
            return False
        ids[event_id] = None
        self._times.append(occurred_at_ms)
        if len(ids) >= self.prune_at:
            self.prune(cutoff_ms)
        return True

    def oldest_ms(self) -> int | None:
        """The earliest event time remembered, None when empty."""
        return min(self._times) if self._times else None

    def prune(self, cutoff_ms: int) -> None:
        """Forget the ids of events before the cutoff, keeping the others in their order."""
        kept = [(i, t) for i, t in zip(self._ids, self._times, strict=True) if t >= cutoff_ms]
        self._ids = {i: None for i, _ in kept}
        self._times = array("q", [t for _, t in kept])
        self.prune_at = max(MIN_PRUNE_AT, 2 * len(kept))

    def to_dict(self) -> dict[str, int]:
        """Event id -> event time, in arrival order (the changelog's form)."""
        return dict(zip(self._ids, self._times, strict=True))

    def snapshot(self) -> SeenSnapshot:
        """An unchanging copy for a checkpoint, a third of `to_dict`'s size (no int object per id)."""
        return SeenSnapshot(tuple(self._ids), array("q", self._times))


class SeenSnapshot(Mapping[str, int]):
    """Event id -> event time as of a checkpoint, read-only; JSON-encode it with `json_default`.

    A checkpoint taken while catching up holds every agent's copy at once until it is written; as a dict
    each id's time was a 32-byte int object and a dict slot, here it is 8 bytes in an array.
    """

    __slots__ = ("_ids", "_times")

    def __init__(self, ids: tuple[str, ...], times: array[int]) -> None:
        self._ids = ids
        self._times = times

    def __getitem__(self, event_id: str) -> int:
        return self._times[self._ids.index(event_id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def values(self) -> Iterator[int]:  # type: ignore[override]
        """The event times, in arrival order (no lookup per id)."""
        return iter(self._times)

    def to_dict(self) -> dict[str, int]:
        """Event id -> event time, in arrival order (the changelog's form)."""
        return dict(zip(self._ids, self._times, strict=True))


def json_default(value: object) -> object:
    """orjson's `default` for checkpoint entries: a `SeenSnapshot` encodes as its `to_dict`."""
    if isinstance(value, SeenSnapshot):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
