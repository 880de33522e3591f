"""The optional agent directory (`ACW_AGENT_DIRECTORY`): a CSV that supplies or overrides each agent's team."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.domain.events import MAX_ID_LENGTH, CallEvent


class DirectoryError(ValueError):
    """The directory file cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class AgentDirectory:
    """agent_id -> team_id (and a display name, kept for views); empty when no file is configured."""

    teams: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.teams)

    def apply(self, events: tuple[CallEvent, ...]) -> tuple[CallEvent, ...]:
        """The events with `team_id` taken from the directory wherever it knows the agent."""
        teams = self.teams
        return tuple(
            e._replace(team_id=teams[e.agent_id]) if e.agent_id in teams and e.team_id != teams[e.agent_id] else e
            for e in events
        )

    @classmethod
    def load(cls, path: Path) -> AgentDirectory:
        """Read `agent_id,team_id[,display_name]` rows; a first row starting with `agent_id` is a header."""
        teams: dict[str, str] = {}
        names: dict[str, str] = {}
        try:
            with open(path, newline="", encoding="utf-8") as f:
                for number, row in enumerate(csv.reader(f), start=1):
                    cells = [c.strip() for c in row]
                    if not cells or not any(cells) or cells[0].startswith("#"):
                        continue
                    if number == 1 and cells[0].lower() == "agent_id":
                        continue
                    if len(cells) < 2 or not cells[0] or not cells[1]:
                        raise DirectoryError(f"{path}:{number}: expected agent_id,team_id[,display_name]")
                    if len(cells[0]) > MAX_ID_LENGTH or len(cells[1]) > MAX_ID_LENGTH:
                        raise DirectoryError(f"{path}:{number}: an id is longer than {MAX_ID_LENGTH} characters")
                    teams[cells[0]] = cells[1]
                    if len(cells) > 2 and cells[2]:
                        names[cells[0]] = cells[2]
        except OSError as exc:
            raise DirectoryError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise DirectoryError(f"{path} is not UTF-8 text") from None
        return cls(teams, names)
