"""`acw report --compare`: two periods or two groups of agents, on the same channel and queue mix.

Each contact is in a stratum (channel, queue). Only strata that both sides have are compared; each stratum
weighs its share of those contacts in both sides together, so a side that took more chats, or more billing
calls, is not better or worse for that alone. The mean of a side is the weighted mean of its strata's means;
its median is the median of its contacts with each weighed stratum weight / the side's contacts in it.
Confidence intervals come from a stratified bootstrap: contacts are redrawn with replacement within each
side's stratum, from a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streams.consume import ConsumeError, parse_since
from streams.report.contacts import Contact

Stratum = tuple[str, str]


class SelectorError(ValueError):
    """A `--compare` side that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a name and which contacts belong to it (given the other side's test)."""

    label: str
    test: Callable[[Contact], bool] | None  # None: "rest", every contact the other side does not take


def parse_side(text: str) -> Side:
    """A side: START..END (ISO-8601 or epoch ms), agents:FILE or agents:A,B, team:T, queue:Q, or rest."""
    text = text.strip()
    if text == "rest":
        return Side("the rest", None)
    kind, _, value = text.partition(":")
    if kind == "agents" and value:
        path = Path(value)
        names = (
            {n.strip() for n in path.read_text().split() if n.strip()}
            if path.is_file()
            else {n.strip() for n in value.split(",") if n.strip()}
        )
        label = f"agents in {path.name}" if path.is_file() else f"agents {', '.join(sorted(names))}"
        return Side(label, lambda c: c.agent_id in names)
    if kind == "team" and value:
        return Side(f"team {value}", lambda c: c.team == value)
    if kind == "queue" and value:
        return Side(f"queue {value}", lambda c: c.queue == value)
    if ".." in text:
        start_text, _, end_text = text.partition("..")
        try:
            start, end = parse_since(start_text), parse_since(end_text)
        except ConsumeError:
            raise SelectorError(f"--compare {text!r}: START..END wants ISO-8601 times or epoch ms") from None
        if end <= start:
            raise SelectorError(f"--compare {text!r}: END is not after START")
        return Side(f"{start_text}..{end_text}", lambda c: start <= c.disconnected_ms < end)
    raise SelectorError(f"--compare {text!r}: want START..END, agents:FILE, agents:A,B, team:T, queue:Q or rest")


def split(contacts: list[Contact], a: Side, b: Side) -> tuple[list[Contact], list[Contact]]:
    """The contacts of each side; "rest" takes what the other side does not."""
    if a.test is None and b.test is None:
        raise SelectorError("--compare: at most one side can be `rest`")
    test_a = a.test or (lambda c: not b.test(c))  # type: ignore[misc]
    test_b = b.test or (lambda c: not a.test(c))  # type: ignore[misc]
    return [c for c in contacts if test_a(c)], [c for c in contacts if test_b(c)]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A difference B - A with its 95% bootstrap interval, in seconds."""

    a: float
    b: float
    diff: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """The result of comparing two sides."""

    label_a: str
    label_b: str
    contacts_a: int
    contacts_b: int
    left_out: int  # contacts in a stratum only one side has
    strata: int
    mean: Estimate
    median: Estimate
    resamples: int
    seed: int

    def sentence(self) -> str:
        """The result in a plain sentence."""
        return f"{_sentence('Mean', self.mean, self)} {_sentence('Median', self.median, self)}"


def _sentence(what: str, e: Estimate, c: Comparison) -> str:
    head = f"{what} ACW per contact was {_s(e.a)} for {c.label_a} and {_s(e.b)} for {c.label_b}"
    interval = f"95% CI {_signed(e.low)} to {_signed(e.high)}"
    if e.low <= 0 <= e.high:
        return f"{head}: no change the data can tell from chance ({interval})."
    direction = "lower" if e.diff < 0 else "higher"
    return f"{head}: {_s(abs(e.diff))} {direction} ({interval})."


def _s(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole} s" if abs(whole) < 120 else f"{whole // 60}:{whole % 60:02d} min"


def _signed(seconds: float) -> str:
    return f"{seconds:+.0f} s"


def compare(
    a_contacts: list[Contact],
    b_contacts: list[Contact],
    label_a: str,
    label_b: str,
    resamples: int = 2000,
    seed: int = 1,
) -> Comparison:
    """Mean and median ACW of B against A on their pooled channel and queue mix, with bootstrap intervals."""
    a_by, b_by = _strata(a_contacts), _strata(b_contacts)
    shared = sorted(set(a_by) & set(b_by))
    if not shared:
        raise SelectorError(f"--compare: {label_a} and {label_b} share no channel and queue, nothing to compare")
    total = sum(len(a_by[s]) + len(b_by[s]) for s in shared)
    weights = np.array([(len(a_by[s]) + len(b_by[s])) / total for s in shared])
    a_groups = [np.array(a_by[s]) for s in shared]
    b_groups = [np.array(b_by[s]) for s in shared]
    mean_a, mean_b = _mean(a_groups, weights), _mean(b_groups, weights)
    med_a, med_b = _median(a_groups, weights), _median(b_groups, weights)
    rng = np.random.default_rng(seed)
    mean_diffs = np.empty(resamples)
    median_diffs = np.empty(resamples)
    for i in range(resamples):
        ra = [g[rng.integers(0, len(g), len(g))] for g in a_groups]
        rb = [g[rng.integers(0, len(g), len(g))] for g in b_groups]
        mean_diffs[i] = _mean(rb, weights) - _mean(ra, weights)
        median_diffs[i] = _median(rb, weights) - _median(ra, weights)
    used = sum(len(g) for g in a_groups) + sum(len(g) for g in b_groups)
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        contacts_a=sum(len(g) for g in a_groups),
        contacts_b=sum(len(g) for g in b_groups),
        left_out=len(a_contacts) + len(b_contacts) - used,
        strata=len(shared),
        mean=_estimate(mean_a, mean_b, mean_diffs),
        median=_estimate(med_a, med_b, median_diffs),
        resamples=resamples,
        seed=seed,
    )


def _strata(contacts: list[Contact]) -> dict[Stratum, list[float]]:
    out: dict[Stratum, list[float]] = {}
    for c in contacts:
        out.setdefault((c.channel, c.queue), []).append(c.acw_s)
    return out


def _mean(groups: list[np.ndarray], weights: np.ndarray) -> float:
    return float(sum(w * g.mean() for w, g in zip(weights, groups, strict=True)))


def _median(groups: list[np.ndarray], weights: np.ndarray) -> float:
    """Weighted median: each value of a stratum weighs the stratum's weight / its number of values."""
    values = np.concatenate(groups)
    each = np.concatenate([np.full(len(g), w / len(g)) for w, g in zip(weights, groups, strict=True)])
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(each[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _estimate(a: float, b: float, diffs: np.ndarray) -> Estimate:
    low, high = np.percentile(diffs, [2.5, 97.5])
    return Estimate(a, b, b - a, float(low), float(high))
