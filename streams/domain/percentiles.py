"""ACW durations of a window: exact up to EXACT_LIMIT values, then a mergeable sketch with <= 0.5% relative error."""

from __future__ import annotations

import math
from typing import Any, TypeVar

EXACT_LIMIT = 4096
RELATIVE_ACCURACY = 0.005
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)


def bucket_of(value_ms: int) -> int:
    """The sketch bucket of a positive value: bucket i holds (gamma^(i-1), gamma^i]."""
    return math.ceil(math.log(value_ms) / _LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The value a bucket stands for, within RELATIVE_ACCURACY of anything in it."""
    return 2 * _GAMMA**index / (_GAMMA + 1)


K = TypeVar("K")


def take_off_counts(counts: dict[K, int], part: dict[K, int]) -> None:
    """Take the counts of `part`, which `counts` holds, off `counts`; a key counted down to 0 is dropped."""
    for key, n in part.items():
        left = counts[key] - n
        if left:
            counts[key] = left
        else:
            del counts[key]


class Durations:
    """A multiset of durations in ms with nearest-rank quantiles; merging gives the same as adding one by one.

    Whether it is exact depends only on how many values it holds, so the same values give the same
    answer however they were split across partitions and merged.
    """

    __slots__ = ("buckets", "count", "values", "zeros")

    def __init__(self) -> None:
        self.count = 0
        self.values: list[int] | None = []
        self.zeros = 0
        self.buckets: dict[int, int] = {}

    def add(self, value_ms: int) -> None:
        """Count one duration."""
        self.count += 1
        if self.values is not None:
            self.values.append(value_ms)
            if self.count > EXACT_LIMIT:
                self._to_sketch()
        else:
            self._add_to_sketch(value_ms, 1)

    def merge(self, other: Durations) -> None:
        """Add every value of `other`."""
        self.count += other.count
        if self.values is not None and other.values is not None and self.count <= EXACT_LIMIT:
            self.values.extend(other.values)
            return
        if self.values is not None:
            self.count -= other.count
            self._to_sketch()
            self.count += other.count
        if other.values is not None:
            for v in other.values:
                self._add_to_sketch(v, 1)
        else:
            self.zeros += other.zeros
            for index, n in other.buckets.items():
                self.buckets[index] = self.buckets.get(index, 0) + n

    def remove(self, other: Durations) -> bool:
        """Take off every value of `other`, which this holds; False, changing nothing, when it would turn exact again.

        A sketch cannot give back the values it counted, so one falling to EXACT_LIMIT values or fewer must be
        summed again from its parts.
        """
        if self.values is None:
            if self.count - other.count <= EXACT_LIMIT:
                return False
            if other.values is not None:
                for v in other.values:
                    self._add_to_sketch(v, -1)
            else:
                self.zeros -= other.zeros
                take_off_counts(self.buckets, other.buckets)
            self.count -= other.count
            return True
        gone = other.values
        assert gone is not None  # a part of an exact multiset is exact
        if len(gone) <= 8:
            for v in gone:
                self.values.remove(v)
        else:  # one pass with counts instead of a scan per value
            drop: dict[int, int] = {}
            for v in gone:
                drop[v] = drop.get(v, 0) + 1
            kept: list[int] = []
            for v in self.values:
                n = drop.get(v, 0)
                if n:
                    drop[v] = n - 1
                else:
                    kept.append(v)
            self.values = kept
        self.count -= other.count
        return True

    @property
    def exact(self) -> bool:
        """Whether quantiles are exact."""
        return self.values is not None

    def quantile(self, q: float) -> float | None:
        """Nearest-rank q-quantile in ms (the ceil(q*n)-th smallest); None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: tuple[float, ...]) -> list[float | None]:
        """Several nearest-rank quantiles in ms, sorting the exact values (in place) once."""
        n = self.count
        if not n:
            return [None for _ in qs]
        values = self.values
        if values is None:
            return [self._sketch_quantile(self._rank(q)) for q in qs]
        if n > 1:
            # In place: a hopping window's values stay sorted but for the panes added since, which timsort then
            # merges in at little cost, where sorting a copy each time starts from the same disorder.
            values.sort()
        out: list[float | None] = []
        for q in qs:
            rank = math.ceil(q * n - 1e-9)  # as `_rank`, inlined: this runs for every window record
            out.append(float(values[rank - 1 if rank > 1 else 0]))
        return out

    def _rank(self, q: float) -> int:
        return max(1, math.ceil(q * self.count - 1e-9))  # ceil(q*n), immune to 0.9*n rounding up

    def _sketch_quantile(self, rank: int) -> float:
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return bucket_value(index)
        raise AssertionError("bucket counts do not add up to the count")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for state and partial records."""
        if self.values is not None:
            return {"v": sorted(self.values)}
        return {"n": self.count, "z": self.zeros, "b": sorted(self.buckets.items())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Durations:
        """Inverse of `to_dict`."""
        d = cls()
        if "v" in data:
            d.values = list(data["v"])
            d.count = len(d.values)
        else:
            d.values = None
            d.count = data["n"]
            d.zeros = data["z"]
            d.buckets = {int(i): n for i, n in data["b"]}
        return d

    def _to_sketch(self) -> None:
        values, self.values = self.values or [], None
        for v in values:
            self._add_to_sketch(v, 1)

    def _add_to_sketch(self, value_ms: int, n: int) -> None:
        if value_ms <= 0:
            self.zeros += n
        else:
            index = bucket_of(value_ms)
            left = self.buckets.get(index, 0) + n
            if left:
                self.buckets[index] = left
            else:  # emptied by `remove`: gone, as if never counted
                del self.buckets[index]
