"""The worker's malloc tuning: applied through glibc's mallopt, never over what the operator set."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from streams.worker.allocator import ARENA_MAX, MMAP_THRESHOLD_BYTES, tune

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


@glibc
def test_both_parameters_are_applied_when_the_environment_sets_neither() -> None:
    assert tune({}) == {"MALLOC_ARENA_MAX": ARENA_MAX, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD_BYTES}


@glibc
def test_a_parameter_the_operator_set_in_the_environment_is_left_alone() -> None:
    assert tune({"MALLOC_ARENA_MAX": "4"}) == {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD_BYTES}
    assert tune({"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "65536"}) == {}


def test_without_mallopt_nothing_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libc-that-does-not-exist.so")
    assert tune({}) == {}
