"""Reading typed fields of a platform's JSON record; every failure names the format in its reason."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from streams.domain.events import MAX_ID_LENGTH, MAX_TEXT_LENGTH, InvalidEvent, parse_timestamp_ms

# Snapshots repeat the same timestamps record after record: parsed strings are remembered (bounded).
_TIMES: dict[str, int] = {}
_TIMES_LIMIT = 65_536
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class FieldReader:
    """Typed access to one format's records; `prefix` starts every reject reason (`connect_missing_field`, ...)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def fail(self, reason: str, detail: str) -> InvalidEvent:
        """An InvalidEvent whose reason names the format."""
        return InvalidEvent(f"{self.prefix}_{reason}", detail)

    def load(self, data: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
        """The record as a JSON object (bytes are parsed)."""
        if type(data) is dict or isinstance(data, Mapping):
            return data
        if not data:
            raise self.fail("unparseable", "the record is empty")
        try:
            record = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self.fail("unparseable", f"not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise self.fail("not_an_object", f"expected a JSON object, got {type(record).__name__}")
        return record

    def obj(self, record: Mapping[str, Any], name: str, *, required: bool = False) -> Mapping[str, Any] | None:
        """A nested object, or None when absent or null."""
        value = record.get(name)
        if type(value) is dict:
            return value
        if value is None:
            if required:
                raise self.fail("missing_field", f"{name} is required")
            return None
        if not isinstance(value, Mapping):
            raise self.fail("wrong_type", f"{name} must be an object, not {type(value).__name__}")
        return value

    def string(
        self, record: Mapping[str, Any], name: str, *, required: bool = False, limit: int = MAX_ID_LENGTH
    ) -> str | None:
        """A string field; empty counts as absent."""
        value = record.get(name)
        if type(value) is str and 0 < len(value) <= limit:
            return value
        if value is None or value == "":
            if required:
                raise self.fail("missing_field", f"{name} is required")
            return None
        if not isinstance(value, str):
            raise self.fail("wrong_type", f"{name} must be a string, not {type(value).__name__}")
        if len(value) > limit:
            raise self.fail("field_too_long", f"{name} has {len(value)} characters (limit {limit})")
        return value

    def text(self, record: Mapping[str, Any], name: str) -> str | None:
        """A free-text field (longer limit)."""
        return self.string(record, name, limit=MAX_TEXT_LENGTH)

    def time_ms(self, record: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
        """A timestamp: ISO-8601 with an offset, or epoch milliseconds (a number or a string of digits)."""
        value = record.get(name)
        if value is None or value == "":
            if required:
                raise self.fail("missing_field", f"{name} is required")
            return None
        if isinstance(value, str):
            cached = _TIMES.get(value)
            if cached is not None:
                return cached
            if value.isdigit():
                value = int(value)
        try:
            ms = parse_timestamp_ms(value)
        except InvalidEvent as exc:
            raise self.fail("bad_timestamp", f"{name}: {exc.detail}") from None
        if isinstance(record.get(name), str):
            if len(_TIMES) >= _TIMES_LIMIT:
                _TIMES.clear()
            _TIMES[record[name]] = ms
        return ms

    def integer(self, record: Mapping[str, Any], name: str) -> int | None:
        """A non-negative integer (a number or a string of digits), or None when absent."""
        value = record.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.isdigit():
            return int(value)
        if type(value) is int and value >= 0:
            return value
        if type(value) is float and value >= 0 and value.is_integer():
            return int(value)
        raise self.fail("wrong_type", f"{name} must be a non-negative integer, not {value!r:.64}")


def last_segment(arn: str) -> str:
    """The last path segment of an ARN-like identifier (`.../agent/<id>` gives `<id>`)."""
    return arn.rsplit("/", 1)[-1]


def topic_pattern(topic: str) -> str:
    """A notification topic with its ids replaced by `{id}`, so it can label a metric."""
    return ".".join("{id}" if _UUID.match(part) else part for part in topic.split("."))


def with_lower_keys(value: Any) -> Any:
    """A copy of an object with every key's first letter lower-cased (`AgentInfo` and `agentInfo` read alike)."""
    if type(value) is not dict:
        return value
    return {
        (k[:1].lower() + k[1:] if type(k) is str and k[:1].isupper() else k): (
            with_lower_keys(v) if type(v) is dict else v
        )
        for k, v in value.items()
    }
