"""Fixtures of the worker's unit tests: both worker shapes, and no core process left behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.worker_fakes import close_offline_workers


@pytest.fixture(autouse=True)
def _no_core_process_left() -> Iterator[None]:
    yield
    close_offline_workers()


@pytest.fixture(params=[1, 2], ids=["one-process", "core-process"])
def processes(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of each worker shape: the cores in the worker's process, or in a core process."""
    return {"ACW_WORKER_PROCESSES": str(request.param)}
