"""The hot path's dataclasses write their `__init__` out (so mypyc compiles it): it must match their fields."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from streams.domain.events import Channel
from streams.domain.intervals import AcwInterval, ContactState, EndReason
from streams.domain.pipeline import Output
from streams.domain.processor import Disposition, Step

WRITTEN = [AcwInterval, ContactState, Output, Step]
_REQUIRED: dict[str, Any] = {
    "interval_id": "i", "agent_id": "a", "contact_id": "c", "channel": Channel.VOICE, "team_id": None,
    "queue_id": None, "disconnected_at_ms": 0, "ended_at_ms": 1, "acw_seconds": 0.001,
    "end_reason": EndReason.AVAILABLE, "talk_seconds": None, "hold_seconds": None, "handle_seconds": None,
    "disposition_code": None, "status": None, "disposition": Disposition.ACCEPTED,
}  # fmt: skip


def _signature(cls: type) -> inspect.Signature:
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        signature = None
    if signature is None or any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
        pytest.skip("a compiled class shows no signature; the pass on the Python core checks it")
    return signature


@pytest.mark.parametrize("cls", WRITTEN, ids=lambda c: c.__name__)
def test_parameters_are_the_fields_in_order(cls: type) -> None:
    params = list(_signature(cls).parameters)[1:]
    assert params == [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("cls", WRITTEN, ids=lambda c: c.__name__)
def test_defaults_are_the_fields_defaults(cls: type) -> None:
    params = _signature(cls).parameters
    required = [f for f in dataclasses.fields(cls) if f.default is f.default_factory is dataclasses.MISSING]
    built = cls(**{f.name: _REQUIRED[f.name] for f in required})
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            assert params[f.name].default == f.default, f.name
            assert getattr(built, f.name) == f.default, f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert params[f.name].default is None, f.name  # None stands for a fresh default
            assert getattr(built, f.name) == f.default_factory(), f.name
        else:
            assert params[f.name].default is inspect.Parameter.empty, f.name


def test_every_field_is_set_from_its_argument() -> None:
    values: dict[str, Any] = {
        "interval_id": "i-1", "agent_id": "a-1", "contact_id": "c-1", "channel": Channel.CHAT,
        "team_id": "t-1", "queue_id": "q-1", "disconnected_at_ms": 1000, "ended_at_ms": 61000,
        "acw_seconds": 60.0, "end_reason": EndReason.TIMED_OUT, "talk_seconds": 12.5, "hold_seconds": 2.5,
        "handle_seconds": 75.0, "disposition_code": "SALE", "status": "Busy",
    }  # fmt: skip
    assert set(values) == {f.name for f in dataclasses.fields(AcwInterval)}
    interval = AcwInterval(**values)
    assert {name: getattr(interval, name) for name in values} == values
    with pytest.raises(dataclasses.FrozenInstanceError):
        interval.acw_seconds = 1.0  # type: ignore[misc]
    contact: dict[str, Any] = {
        "channel": Channel.EMAIL, "team_id": "t-2", "queue_id": "q-2", "offered": True, "connected_at_ms": 5,
        "hold_started_at_ms": 6, "hold_ms": 7, "last_seen_ms": 8, "disconnected_at_ms": 9,
        "acw_channel": Channel.TASK, "acw_team_id": "t-3", "acw_queue_id": "q-3", "reported_talk_ms": 10,
        "reported_hold_ms": 11,
    }  # fmt: skip
    assert set(contact) == {f.name for f in dataclasses.fields(ContactState)}
    state = ContactState(**contact)
    assert {name: getattr(state, name) for name in contact} == contact
    panes: list[Any] = [("pane", "stats")]
    out = Output(final_panes=panes, progress=3)
    assert out.final_panes is panes and out.progress == 3 and not out.intervals
    assert Output().intervals is not Output().intervals
