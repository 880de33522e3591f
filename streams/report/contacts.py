"""The report's input: ACW intervals read from replay output or the intervals topic, one `Contact` each."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

# How an interval ended that the agent did not choose: the system closed it, or the agent left or took a contact.
NOT_CLOSED_BY_AGENT = frozenset({"TIMED_OUT", "LOGGED_OUT", "NEXT_CONTACT"})
NO_TEAM = "(no team)"
NO_QUEUE = "(no queue)"


@dataclass(frozen=True, slots=True)
class Contact:
    """One handled contact and its ACW, as the report reads an `AcwInterval` record."""

    interval_id: str
    agent_id: str
    team: str
    queue: str
    channel: str
    disconnected_ms: int
    ended_ms: int
    acw_s: float
    talk_s: float | None
    hold_s: float | None
    handle_s: float | None
    end_reason: str
    disposition: str | None

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Contact:
        """A contact from an interval record as replay writes it and `acw consume --json` decodes it."""
        return cls(
            interval_id=r["interval_id"],
            agent_id=r["agent_id"],
            team=r.get("team_id") or NO_TEAM,
            queue=r.get("queue_id") or NO_QUEUE,
            channel=r["channel"],
            disconnected_ms=int(r["disconnected_at"]),
            ended_ms=int(r["ended_at"]),
            acw_s=float(r["acw_seconds"]),
            talk_s=r.get("talk_seconds"),
            hold_s=r.get("hold_seconds"),
            handle_s=r.get("handle_seconds"),
            end_reason=r["end_reason"],
            disposition=r.get("disposition_code"),
        )


def unique(
    records: Iterable[dict[str, Any]], since_ms: int | None = None, until_ms: int | None = None
) -> list[Contact]:
    """Contacts of the records, each interval once (the topic is at-least-once), disconnected in [since, until)."""
    seen: set[str] = set()
    contacts = []
    for record in records:
        contact = Contact.from_record(record)
        if contact.interval_id in seen:
            continue
        if since_ms is not None and contact.disconnected_ms < since_ms:
            continue
        if until_ms is not None and contact.disconnected_ms >= until_ms:
            continue
        seen.add(contact.interval_id)
        contacts.append(contact)
    contacts.sort(key=lambda c: (c.disconnected_ms, c.interval_id))
    return contacts


def read_replay_dir(directory: Path) -> Iterator[dict[str, Any]]:
    """The interval records of a replay output directory (its intervals.jsonl)."""
    path = directory / "intervals.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no intervals.jsonl (is {directory} the --out of `acw replay`?)")
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)
