"""The repeat limiter keeps library reconnect loops from flooding the log; our own lines always pass."""

from __future__ import annotations

import logging

from streams.logs import RepeatLimiter


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_library_template_passes_once_per_window_then_reports_what_it_held_back() -> None:
    now = [0.0]
    limiter = RepeatLimiter(window_s=30, clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    passed = []
    for i in range(1000):
        now[0] = i * 0.01  # 1000 attempts in 10 s
        record = _record("aiokafka.client", template, 1, "refused")
        if limiter.filter(record):
            passed.append(record.getMessage())
    assert passed == ["Unable connect to node with id 1: refused"]
    now[0] = 31.0
    record = _record("aiokafka.client", template, 1, "refused")
    assert limiter.filter(record)
    assert record.getMessage() == "Unable connect to node with id 1: refused (999 more like this in the last 30 s)"


def test_other_templates_and_our_own_loggers_are_not_limited() -> None:
    limiter = RepeatLimiter(window_s=30, clock=lambda: 0.0)
    assert limiter.filter(_record("aiokafka.client", "a %s", 1))
    assert limiter.filter(_record("aiokafka.client", "b %s", 1))
    assert not limiter.filter(_record("aiokafka.client", "a %s", 2))
    assert all(limiter.filter(_record("acw.worker", "broker unreachable: %s", i)) for i in range(5))
