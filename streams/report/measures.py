"""The report's numbers, computed from contacts: averages, distributions, outliers, endings, codes and cost.

Plain functions of a list of `Contact`s; no plotting, no I/O. Each formula is stated where it is computed and
again under its figure in the report.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from streams.domain.benchmarks import Band
from streams.report.contacts import NOT_CLOSED_BY_AGENT, Contact

SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """ACW, ACW % and AHT of one team or queue (or everyone)."""

    name: str
    contacts: int
    contacts_with_acw: int
    acw_total_s: float
    avg_acw_s: float  # total ACW / interactions handled
    avg_acw_when_any_s: float | None  # total ACW / contacts that had ACW (> 0 s)
    acw_pct: float | None  # total ACW / total handle time x 100, over contacts whose talk was seen
    aht_s: float | None  # (talk + hold + ACW) / contacts, over the same contacts


def summarize(name: str, contacts: list[Contact]) -> GroupSummary:
    """The ACW figures of one group of contacts (at least one)."""
    total = math.fsum(c.acw_s for c in contacts)
    with_acw = sum(1 for c in contacts if c.acw_s > 0)
    known = [c for c in contacts if c.handle_s is not None]
    handle = math.fsum(c.handle_s for c in known if c.handle_s is not None)
    known_acw = math.fsum(c.acw_s for c in known)
    return GroupSummary(
        name=name,
        contacts=len(contacts),
        contacts_with_acw=with_acw,
        acw_total_s=total,
        avg_acw_s=total / len(contacts),
        avg_acw_when_any_s=total / with_acw if with_acw else None,
        acw_pct=100 * known_acw / handle if handle > 0 else None,
        aht_s=handle / len(known) if known else None,
    )


def grouped(contacts: Iterable[Contact], key: Callable[[Contact], str]) -> dict[str, list[Contact]]:
    """Contacts by a key, keys sorted."""
    groups: dict[str, list[Contact]] = defaultdict(list)
    for c in contacts:
        groups[key(c)].append(c)
    return dict(sorted(groups.items()))


def by_team(contacts: list[Contact]) -> list[GroupSummary]:
    """One summary per team."""
    return [summarize(team, cs) for team, cs in grouped(contacts, lambda c: c.team).items()]


def by_queue(contacts: list[Contact]) -> list[GroupSummary]:
    """One summary per queue."""
    return [summarize(queue, cs) for queue, cs in grouped(contacts, lambda c: c.queue).items()]


def slot_of(ms: int, tz: ZoneInfo) -> int:
    """The 15-minute interval of the day (0 = 00:00-00:15) of a time, in a time zone."""
    local = dt.datetime.fromtimestamp(ms / 1000, tz)
    return (local.hour * 60 + local.minute) // SLOT_MINUTES


def heatmap(contacts: list[Contact], tz: ZoneInfo) -> tuple[list[str], list[list[float | None]]]:
    """Teams, and per team the average ACW of contacts disconnected in each 15-minute interval of the day."""
    sums: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for c in contacts:
        slot = slot_of(c.disconnected_ms, tz)
        sums.setdefault(c.team, [0.0] * SLOTS_PER_DAY)[slot] += c.acw_s
        counts.setdefault(c.team, [0] * SLOTS_PER_DAY)[slot] += 1
    teams = sorted(sums)
    rows = [[s / n if n else None for s, n in zip(sums[t], counts[t], strict=True)] for t in teams]
    return teams, rows


@dataclass(frozen=True, slots=True)
class AgentSummary:
    """One agent's ACW over the period."""

    agent_id: str
    team: str
    contacts: int
    avg_acw_s: float
    ci95_s: tuple[float, float]  # normal-approximation 95% interval of the mean
    not_closed: int  # intervals ended by timeout, logout or the next contact
    timeouts: int

    @property
    def timeout_share(self) -> float:
        """Share of the agent's intervals that timed out."""
        return self.timeouts / self.contacts

    @property
    def not_closed_share(self) -> float:
        """Share of the agent's intervals the agent did not close."""
        return self.not_closed / self.contacts


def agents(contacts: list[Contact]) -> list[AgentSummary]:
    """One summary per agent, by agent id; the team is the one of the agent's most contacts."""
    out = []
    for agent, cs in grouped(contacts, lambda c: c.agent_id).items():
        values = [c.acw_s for c in cs]
        mean = math.fsum(values) / len(values)
        half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.inf
        team = Counter(c.team for c in cs).most_common(1)[0][0]
        out.append(
            AgentSummary(
                agent_id=agent,
                team=team,
                contacts=len(cs),
                avg_acw_s=mean,
                ci95_s=(mean - half, mean + half),
                not_closed=sum(1 for c in cs if c.end_reason in NOT_CLOSED_BY_AGENT),
                timeouts=sum(1 for c in cs if c.end_reason == "TIMED_OUT"),
            )
        )
    return out


def above_band(people: list[AgentSummary], band: Band, min_contacts: int) -> list[AgentSummary]:
    """Agents for the huddle: average ACW above the band's top over at least `min_contacts`, highest first."""
    chosen = [a for a in people if a.contacts >= min_contacts and a.avg_acw_s > band.high]
    return sorted(chosen, key=lambda a: (-a.avg_acw_s, a.agent_id))


def efficient(
    people: list[AgentSummary], band: Band, min_contacts: int, max_timeout_share: float
) -> list[AgentSummary]:
    """Agents who wrap up efficiently: below the band's middle, few timeouts, over at least `min_contacts`."""
    chosen = [
        a
        for a in people
        if a.contacts >= min_contacts and a.avg_acw_s < band.middle and a.timeout_share <= max_timeout_share
    ]
    return sorted(chosen, key=lambda a: (a.avg_acw_s, a.agent_id))


def never_close(people: list[AgentSummary], min_contacts: int, top: int = 10) -> list[AgentSummary]:
    """Agents whose intervals most often end without them closing it (timeout, logout, next contact)."""
    chosen = [a for a in people if a.contacts >= min_contacts and a.not_closed]
    return sorted(chosen, key=lambda a: (-a.not_closed_share, -a.not_closed, a.agent_id))[:top]


def endings(contacts: list[Contact]) -> dict[str, dict[str, int]]:
    """Counts of end reasons per team (and "all"), reasons in a fixed order."""
    out: dict[str, dict[str, int]] = {}
    for team, cs in [("all", contacts), *grouped(contacts, lambda c: c.team).items()]:
        counts = Counter(c.end_reason for c in cs)
        out[team] = {reason: counts[reason] for reason in END_REASONS if counts[reason]}
    return out


END_REASONS = ("WRAPUP_COMPLETED", "AVAILABLE", "STATUS_CHANGE", "LOGGED_OUT", "NEXT_CONTACT", "TIMED_OUT", "OTHER")


@dataclass(frozen=True, slots=True)
class CodeSummary:
    """ACW of the contacts closed with one disposition code."""

    code: str | None
    contacts: int
    share: float
    avg_acw_s: float
    acw_hours: float


def dispositions(contacts: list[Contact]) -> list[CodeSummary]:
    """One summary per disposition code (None: no code), by total ACW hours, the costliest first."""
    out = []
    for code, cs in grouped(contacts, lambda c: c.disposition or "").items():
        total = math.fsum(c.acw_s for c in cs)
        out.append(CodeSummary(code or None, len(cs), len(cs) / len(contacts), total / len(cs), total / 3600))
    return sorted(out, key=lambda s: (-s.acw_hours, s.code or ""))


def rare_codes(codes: list[CodeSummary], max_share: float) -> list[CodeSummary]:
    """Codes used on at most `max_share` of contacts: candidates to retire."""
    return sorted((s for s in codes if s.code is not None and s.share <= max_share), key=lambda s: s.contacts)


@dataclass(frozen=True, slots=True)
class Shift:
    """One agent's stretch of work: contacts with no gap longer than the shift gap between them."""

    agent_id: str
    team: str
    start_ms: int
    end_ms: int
    contacts: int
    acw_hours: float


def shifts(contacts: list[Contact], gap_ms: int) -> list[Shift]:
    """Agent-shifts: an agent's contacts, split where one disconnects more than `gap_ms` after the last ended."""
    out = []
    for agent, cs in grouped(contacts, lambda c: c.agent_id).items():
        cs = sorted(cs, key=lambda c: c.disconnected_ms)
        current: list[Contact] = []
        for c in cs:
            if current and c.disconnected_ms - max(x.ended_ms for x in current) > gap_ms:
                out.append(_shift(agent, current))
                current = []
            current.append(c)
        out.append(_shift(agent, current))
    return out


def _shift(agent: str, cs: list[Contact]) -> Shift:
    team = Counter(c.team for c in cs).most_common(1)[0][0]
    acw = math.fsum(c.acw_s for c in cs) / 3600
    return Shift(agent, team, cs[0].disconnected_ms, max(c.ended_ms for c in cs), len(cs), acw)


@dataclass(frozen=True, slots=True)
class TeamCost:
    """Unavailable time spent in ACW by one team (or everyone)."""

    team: str
    shifts: int
    acw_hours: float
    hours_per_shift: float  # ACW hours / agent-shifts
    fte: float  # ACW hours / (paid hours of a shift x days in the period)


def cost(all_shifts: list[Shift], shift_hours: float, days: int) -> list[TeamCost]:
    """ACW hours per agent-shift and the full-time equivalents they represent, per team, then "all"."""
    groups: dict[str, list[Shift]] = defaultdict(list)
    for s in all_shifts:
        groups[s.team].append(s)
    out = []
    for team, ss in [*sorted(groups.items()), ("all", all_shifts)]:
        hours = math.fsum(s.acw_hours for s in ss)
        out.append(TeamCost(team, len(ss), hours, hours / len(ss), hours / (shift_hours * days)))
    return out


def days_in(contacts: list[Contact], tz: ZoneInfo) -> int:
    """Calendar days, in a time zone, from the first disconnect to the last (at least 1)."""
    first = dt.datetime.fromtimestamp(contacts[0].disconnected_ms / 1000, tz).date()
    last = dt.datetime.fromtimestamp(contacts[-1].disconnected_ms / 1000, tz).date()
    return (last - first).days + 1
