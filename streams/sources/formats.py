"""Which adapter reads which input format, and the `ACW_INPUT_TOPICS` syntax that assigns formats to topics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.sources import Source
from streams.sources.callevent import CallEventSource
from streams.sources.connect_agent import ConnectAgentSource
from streams.sources.connect_contact import ConnectContactSource
from streams.sources.genesys import GenesysSource
from streams.sources.twilio import TwilioSettings, TwilioSource

if TYPE_CHECKING:
    from streams.serialization import WriterSchemas
    from streams.settings import Settings

NATIVE_FORMATS = ("avro", "json")
PLATFORM_FORMATS = ("connect-agent-events", "connect-contact-events", "genesys", "twilio-taskrouter")
FORMATS = NATIVE_FORMATS + PLATFORM_FORMATS


def parse_input_topics(raw: str, default_topic: str, default_format: str) -> tuple[tuple[str, str], ...]:
    """`topic[:format],...` as (topic, format) pairs; empty means the one default topic in the default format."""
    if not raw.strip():
        return ((default_topic, default_format),)
    pairs = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        topic, _, fmt = item.partition(":")
        topic, fmt = topic.strip(), (fmt.strip() or default_format)
        if not topic:
            raise ValueError(f"{item!r} names no topic")
        if fmt not in FORMATS:
            raise ValueError(f"{item!r}: format must be one of {', '.join(FORMATS)}")
        if topic in (t for t, _ in pairs):
            raise ValueError(f"topic {topic!r} is listed twice")
        pairs.append((topic, fmt))
    if not pairs:
        raise ValueError("names no topic")
    return tuple(pairs)


def build_source(fmt: str, settings: Settings, writers: WriterSchemas | None = None) -> Source:
    """The adapter of one format, configured from the settings (`writers`: registry-resolved Avro input)."""
    if fmt in NATIVE_FORMATS:
        return CallEventSource(fmt, settings.schema_ids(), writers)  # type: ignore[arg-type]
    if fmt == "connect-agent-events":
        return ConnectAgentSource(settings.connect_hierarchy_level)
    if fmt == "connect-contact-events":
        return ConnectContactSource()
    if fmt == "genesys":
        return GenesysSource()
    if fmt == "twilio-taskrouter":
        return TwilioSource(
            TwilioSettings(
                team_attribute=settings.twilio_team_attribute,
                disposition_path=settings.twilio_disposition_path,
                available_activities=_names(settings.twilio_available_activities),
                offline_activities=_names(settings.twilio_offline_activities),
            )
        )
    raise ValueError(f"unknown input format {fmt!r}")


def _names(raw: str) -> frozenset[str]:
    return frozenset(x.strip() for x in raw.split(",") if x.strip())
