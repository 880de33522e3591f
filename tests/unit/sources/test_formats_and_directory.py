"""Input topics and formats, the agent directory, and the intake that applies both."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.domain.events import CallEvent, EventType, InvalidEvent
from streams.serialization import encode_call_event
from streams.settings import ConfigError, Settings
from streams.sources.callevent import CallEventSource, RekeyedSource
from streams.sources.directory import AgentDirectory, DirectoryError
from streams.sources.formats import FORMATS, NATIVE_FORMATS, build_source, parse_input_topics
from streams.sources.intake import Intake

T = 1767225600000


def test_input_topics_syntax() -> None:
    assert parse_input_topics("", "call-events", "json") == (("call-events", "json"),)
    assert parse_input_topics("a:connect-agent-events, b:connect-contact-events,c", "x", "avro") == (
        ("a", "connect-agent-events"),
        ("b", "connect-contact-events"),
        ("c", "avro"),
    )
    for bad in ("a:telepathy", "a,a", ":genesys", ","):
        with pytest.raises(ValueError):
            parse_input_topics(bad, "x", "avro")


def test_settings_name_the_variable() -> None:
    assert Settings(input_topics="g:genesys").inputs() == (("g", "genesys"),)
    for kwargs, name in (
        ({"input_format": "fax"}, "ACW_INPUT_FORMAT"),
        ({"input_topics": "g:fax"}, "ACW_INPUT_TOPICS"),
        ({"input_topics": "acw-streams-rekeyed:json"}, "ACW_INPUT_TOPICS"),
        ({"agent_directory": "/no/such/file.csv"}, "ACW_AGENT_DIRECTORY"),
        ({"connect_hierarchy_level": 6}, "ACW_CONNECT_HIERARCHY_LEVEL"),
        ({"twilio_team_attribute": " "}, "ACW_TWILIO_TEAM_ATTRIBUTE"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings(**kwargs)


@pytest.mark.parametrize("header", [True, False])
def test_directory_with_or_without_header(tmp_path: Path, header: bool) -> None:
    path = tmp_path / "agents.csv"
    path.write_text(("agent_id,team_id,display_name\n" if header else "") + "a1,blue,Ann\n\na2 , red\n")
    directory = AgentDirectory.load(path)
    assert dict(directory.teams) == {"a1": "blue", "a2": "red"} and dict(directory.names) == {"a1": "Ann"}
    assert Settings(agent_directory=str(path)).directory().teams == directory.teams


def test_directory_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "agents.csv"
    path.write_text("a1,blue\na2\n")
    with pytest.raises(DirectoryError, match=r"agents.csv:2"):
        AgentDirectory.load(path)


@pytest.mark.parametrize("way", ["read", "read_event"])
def test_intake_applies_the_directory_to_every_format_and_rejects_the_future(tmp_path: Path, way: str) -> None:
    directory = AgentDirectory({"a1": "gold"})
    intake = Intake(CallEventSource("json"), directory, max_future_ms=1000)
    read = (lambda data, now_ms: intake.read(data, now_ms).events[0]) if way == "read" else intake.read_event
    line = b'{"event_id": "e", "event_type": "AGENT_AVAILABLE", "occurred_at": %d, "agent_id": "a1", "team_id": "x"}'
    assert intake.single and len(intake.read(line % T, now_ms=T).events) == 1
    event = read(line % T, T)
    assert event.team_id == "gold"
    with pytest.raises(InvalidEvent) as err:
        read(line % (T + 5000), T)
    assert err.value.reason == "timestamp_in_future"


def test_only_our_own_contract_is_read_one_event_at_a_time() -> None:
    settings = Settings.from_env({})
    for fmt in FORMATS:
        assert Intake(build_source(fmt, settings)).single is (fmt in NATIVE_FORMATS)
    with pytest.raises(TypeError, match="single-event source"):
        Intake(build_source("genesys", settings)).read_event(b"{}", T)


def test_rekeyed_records_are_avro_and_legacy_json_copies_still_read() -> None:
    event = CallEvent("e", EventType.CONTACT_DISCONNECTED, T, "a1", contact_id="c", talk_ms=5, hold_ms=0, restated=True)
    source = RekeyedSource()
    assert source.translate(encode_call_event(event)).events == (event,)
    assert source.translate(encode_call_event(event, "json")).events == (event,)
    assert source.decode(encode_call_event(event)) == source.decode(encode_call_event(event, "json")) == event
