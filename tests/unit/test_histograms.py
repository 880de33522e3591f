"""A BatchHistogram scrapes exactly as prometheus_client's Histogram fed the same observations."""

from __future__ import annotations

import random

import pytest
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from streams.histograms import BatchHistogram
from streams.metrics import ACW_BUCKETS, HOLD_BUCKETS
from tests.support.seeds import logged_seed


@pytest.fixture(autouse=True)
def _no_created_series() -> None:
    """As in the worker, where `Metrics` turns them off for the process: a `_created` series shows its clock."""
    disable_created_metrics()


def _both(buckets: tuple[float, ...], labelnames: tuple[str, ...]) -> tuple[bytes, bytes]:
    """The scrapes of a BatchHistogram and a Histogram fed the same seeded values, a third of them on an edge."""
    rng = random.Random(logged_seed("histogram observations"))
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = BatchHistogram("acw_x_seconds", "Some durations.", labelnames, buckets=buckets, registry=ours)
    slow = Histogram("acw_x_seconds", "Some durations.", labelnames, buckets=buckets, registry=theirs)
    edges = [*buckets, 0.0, buckets[-1] * 3]
    for _ in range(2_000):
        labels = tuple(rng.choice(["a", "b", "c"]) for _ in labelnames)
        value = rng.choice(edges) if rng.random() < 0.3 else rng.uniform(0, buckets[-1] * 1.2)
        if rng.random() < 0.2:
            value = round(value)
        fast.labels(*labels).observe(value)
        (slow.labels(*labels) if labels else slow).observe(value)
    return generate_latest(ours), generate_latest(theirs)


@pytest.mark.parametrize("buckets", [tuple(map(float, ACW_BUCKETS)), tuple(map(float, HOLD_BUCKETS))])
@pytest.mark.parametrize("labelnames", [("team", "channel"), ()])
def test_the_scrape_is_byte_identical_to_prometheus_clients_histogram(
    buckets: tuple[float, ...], labelnames: tuple[str, ...]
) -> None:
    ours, theirs = _both(buckets, labelnames)
    assert b"_bucket" in ours and ours == theirs


def test_an_unlabelled_histogram_shows_zeros_before_its_first_observation() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    BatchHistogram("acw_lag_seconds", "Lag.", buckets=(1, 5), registry=ours)
    Histogram("acw_lag_seconds", "Lag.", buckets=(1, 5), registry=theirs)
    assert generate_latest(ours) == generate_latest(theirs)
    assert b'acw_lag_seconds_bucket{le="+Inf"} 0.0' in generate_latest(ours)


def test_a_second_metric_of_the_same_name_is_refused() -> None:
    registry = CollectorRegistry()
    BatchHistogram("acw_x_seconds", "X.", buckets=(1,), registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        BatchHistogram("acw_x_seconds", "X again.", buckets=(1,), registry=registry)


@pytest.mark.parametrize("buckets", [(), (5, 1), (1, 1)])
def test_buckets_must_increase(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="increasing order"):
        BatchHistogram("acw_x_seconds", "X.", buckets=buckets)


def test_label_count_is_checked() -> None:
    histogram = BatchHistogram("acw_x_seconds", "X.", ("team",), buckets=(1,))
    with pytest.raises(ValueError, match="expected labels"):
        histogram.labels("a", "b")
