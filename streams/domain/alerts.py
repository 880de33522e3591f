"""Alert rules (kinds, presets from industry benchmarks, validation) and the alert records they produce."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streams.domain.aggregates import Scope, WindowKey, WindowStats
from streams.domain.benchmarks import BANDS
from streams.domain.ids import uuid5
from streams.domain.intervals import AcwInterval
from streams.domain.windows import WindowSpec

_ALERT_NAMESPACE_BYTES = uuid.UUID("0d8a5c9e-2b71-5f4a-8e3d-7c1b9a2f4e60").bytes


class RuleKind(StrEnum):
    """What a rule watches."""

    INTERVAL_OVER = "interval_over"
    OPEN_OVER = "open_over"
    AVG_OVER = "avg_over"
    PCT_OVER = "pct_over"


WINDOW_KINDS = (RuleKind.AVG_OVER, RuleKind.PCT_OVER)
SEVERITIES = ("info", "warning", "critical")

# Top of the per-interaction ACW range, in seconds, of each industry benchmark.
BENCHMARKS: dict[str, int] = {name: round(band.high) for name, band in BANDS.items()}


class RuleError(ValueError):
    """An alert rule is invalid; the message names the rule."""


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert rule. Thresholds are seconds, or percent for pct_over; `clear` is where a firing alert resolves."""

    name: str
    kind: RuleKind
    scope: Scope
    threshold: float
    clear: float
    severity: str = "warning"
    window: WindowSpec | None = None
    min_contacts: int = 1
    # The threshold of a duration rule in ms, worked out once (it is read for every interval).
    threshold_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold_ms", round(self.threshold * 1000))


def preset_rules(benchmark: str, window: WindowSpec) -> list[AlertRule]:
    """The rules of an industry benchmark: avg at the top of its range, open at twice, one interval at three times."""
    if benchmark not in BENCHMARKS:
        raise RuleError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    top = float(BENCHMARKS[benchmark])
    return [
        AlertRule("team-acw-avg", RuleKind.AVG_OVER, Scope.TEAM, top, top * 0.9, "warning", window, 10),
        AlertRule("agent-acw-avg", RuleKind.AVG_OVER, Scope.AGENT, top, top * 0.9, "warning", window, 3),
        AlertRule("agent-stuck-in-acw", RuleKind.OPEN_OVER, Scope.AGENT, 2 * top, 2 * top, "critical"),
        AlertRule("acw-interval-long", RuleKind.INTERVAL_OVER, Scope.AGENT, 3 * top, 3 * top, "info"),
    ]


def load_rules(
    document: dict[str, Any] | None,
    benchmark: str,
    windows: tuple[WindowSpec, ...],
    scopes: frozenset[Scope] = frozenset(Scope),
) -> tuple[AlertRule, ...]:
    """The preset rules of `benchmark`, overridden, added to or disabled (`enabled: false`) by name from a document.

    Window presets on scopes that are not aggregated are left out; a rules-file rule on one is an error.
    """
    presets = preset_rules(benchmark, windows[-1])
    rules = {r.name: r for r in presets if r.kind not in WINDOW_KINDS or r.scope in scopes}
    if document is None:
        return tuple(rules.values())
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise RuleError("the rules file must be a mapping with a list under 'rules'")
    for i, raw in enumerate(document.get("rules") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise RuleError(f"rule #{i + 1}: every rule needs a 'name'")
        name = raw["name"]
        if not _NAME.match(name):
            raise RuleError(f"rule {name!r}: names may only hold letters, digits, '.', '_' and '-'")
        if raw.get("enabled", True) is False:
            rules.pop(name, None)
            continue
        base = rules.get(name) or next((r for r in presets if r.name == name), None)
        rule = _parse_rule(name, raw, base, windows)
        if rule.kind in WINDOW_KINDS and rule.scope not in scopes:
            raise RuleError(f"rule {name!r}: {rule.scope.value} windows are not aggregated (ACW_SCOPES)")
        rules[name] = rule
    return tuple(rules.values())


_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_FIELDS = {"name", "kind", "scope", "threshold", "clear", "severity", "window", "min_contacts", "enabled"}


def _parse_rule(name: str, raw: dict[str, Any], base: AlertRule | None, windows: tuple[WindowSpec, ...]) -> AlertRule:
    def bad(why: str) -> RuleError:
        return RuleError(f"rule {name!r}: {why}")

    unknown = set(raw) - _FIELDS
    if unknown:
        raise bad(f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_FIELDS))}")
    try:
        kind = RuleKind(raw["kind"]) if "kind" in raw else base.kind if base else None
    except ValueError:
        raise bad(f"kind must be one of {', '.join(k.value for k in RuleKind)}") from None
    if kind is None:
        raise bad("'kind' is required")
    try:
        scope = Scope(str(raw["scope"]).upper()) if "scope" in raw else base.scope if base else Scope.AGENT
    except ValueError:
        raise bad(f"scope must be one of {', '.join(s.value for s in Scope)}") from None
    if kind not in WINDOW_KINDS and scope is not Scope.AGENT:
        raise bad(f"{kind.value} watches one agent's contacts: its scope must be AGENT")
    threshold = raw.get("threshold", base.threshold if base else None)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or threshold <= 0:
        raise bad("'threshold' must be a positive number (seconds; percent for pct_over)")
    default_clear = base.clear if base and "threshold" not in raw else threshold * (0.9 if kind in WINDOW_KINDS else 1)
    clear = raw.get("clear", default_clear)
    if not isinstance(clear, int | float) or isinstance(clear, bool) or not 0 <= clear <= threshold:
        raise bad("'clear' must be a number between 0 and the threshold")
    severity = raw.get("severity", base.severity if base else "warning")
    if severity not in SEVERITIES:
        raise bad(f"severity must be one of {', '.join(SEVERITIES)}")
    window = base.window if base else None
    if kind in WINDOW_KINDS:
        if "window" in raw:
            try:
                window = WindowSpec.parse(str(raw["window"]))
            except ValueError as exc:
                raise bad(str(exc)) from None
        window = window or windows[-1]
        if window not in windows:
            raise bad(f"window {window.name} is not one of ACW_WINDOWS ({', '.join(w.name for w in windows)})")
    else:
        window = None
    min_contacts = raw.get("min_contacts", base.min_contacts if base else 1)
    if not isinstance(min_contacts, int) or isinstance(min_contacts, bool) or min_contacts < 1:
        raise bad("'min_contacts' must be a whole number >= 1")
    return AlertRule(name, kind, scope, float(threshold), float(clear), severity, window, min_contacts)


# --- alert records -------------------------------------------------------------------------------


def alert_id_for(*parts: object) -> str:
    """Deterministic alert id (UUIDv5) of one episode."""
    return uuid5(_ALERT_NAMESPACE_BYTES, "\x1f".join(str(p) for p in parts).encode())


def format_seconds(seconds: float) -> str:
    """14m 05s, 8m, 45s, 1h 02m: how a supervisor reads a duration."""
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {s:02d}s" if s else f"{m}m"
    return f"{s}s"


def _percent(value: float) -> str:
    return f"{value:.1f}%"


def _limit(rule: AlertRule) -> str:
    return f"{rule.threshold:g}%" if rule.kind is RuleKind.PCT_OVER else format_seconds(rule.threshold)


def _record(
    rule: AlertRule,
    alert_id: str,
    firing: bool,
    key: str,
    value: float,
    started_at: int,
    message: str,
    *,
    contact_id: str | None = None,
    window: tuple[int, int] | None = None,
    resolved_at: int | None = None,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "rule": rule.name,
        "kind": rule.kind.value,
        "severity": rule.severity,
        "state": "FIRING" if firing else "RESOLVED",
        "scope": rule.scope.value,
        "key": key,
        "contact_id": contact_id,
        "value": value,
        "threshold": rule.threshold,
        "window_start": window[0] if window else None,
        "window_end": window[1] if window else None,
        "started_at": started_at,
        "resolved_at": resolved_at,
        "message": message,
    }


def open_firing(rule: AlertRule, agent_id: str, contact_id: str, disconnected_at_ms: int) -> dict[str, Any]:
    """An agent has been in ACW on a contact for longer than the rule allows (and still is, as far as known)."""
    started = disconnected_at_ms + rule.threshold_ms
    return _record(
        rule,
        alert_id_for(rule.name, agent_id, contact_id, disconnected_at_ms),
        True,
        agent_id,
        rule.threshold,
        started,
        f"Agent {agent_id} has been in after-call work on contact {contact_id} for over {_limit(rule)} "
        f"(limit {_limit(rule)})",
        contact_id=contact_id,
    )


def open_resolved(rule: AlertRule, interval: AcwInterval) -> dict[str, Any]:
    """The ACW that made an open_over alert fire has ended."""
    acw_ms = interval.ended_at_ms - interval.disconnected_at_ms
    return _record(
        rule,
        alert_id_for(rule.name, interval.agent_id, interval.contact_id, interval.disconnected_at_ms),
        False,
        interval.agent_id,
        acw_ms / 1000,
        interval.disconnected_at_ms + rule.threshold_ms,
        f"Agent {interval.agent_id} was in after-call work on contact {interval.contact_id} for "
        f"{format_seconds(acw_ms / 1000)} (limit {_limit(rule)}); it ended: {interval.end_reason.value}",
        contact_id=interval.contact_id,
        resolved_at=interval.ended_at_ms,
    )


def interval_alerts(rule: AlertRule, interval: AcwInterval) -> list[dict[str, Any]]:
    """interval_over: one interval longer than the threshold fires and, being over, resolves at its end."""
    acw_ms = interval.ended_at_ms - interval.disconnected_at_ms
    if acw_ms <= rule.threshold_ms:
        return []
    alert_id = alert_id_for(rule.name, interval.agent_id, interval.contact_id, interval.disconnected_at_ms)
    text = (
        f"Agent {interval.agent_id} spent {format_seconds(acw_ms / 1000)} in after-call work on contact "
        f"{interval.contact_id} (limit {_limit(rule)})"
    )
    contact = interval.contact_id
    return [
        _record(rule, alert_id, True, interval.agent_id, acw_ms / 1000, interval.ended_at_ms, text, contact_id=contact),
        _record(
            rule,
            alert_id,
            False,
            interval.agent_id,
            acw_ms / 1000,
            interval.ended_at_ms,
            text,
            resolved_at=interval.ended_at_ms,
            contact_id=contact,
        ),
    ]


def window_value(rule: AlertRule, stats: WindowStats | None) -> float | None:
    """The figure a window rule compares, or None when the window has too few contacts to judge."""
    if stats is None or stats.contacts < rule.min_contacts:
        return None
    return stats.acw_pct() if rule.kind is RuleKind.PCT_OVER else stats.acw_avg_seconds()


@dataclass(frozen=True, slots=True)
class Episode:
    """A firing window alert: where it started."""

    alert_id: str
    started_at: int

    def to_list(self) -> list[Any]:
        """Plain data."""
        return [self.alert_id, self.started_at]


def window_transition(
    rule: AlertRule, wk: WindowKey, stats: WindowStats | None, episode: Episode | None
) -> tuple[Episode | None, dict[str, Any] | None]:
    """Apply one final window to a rule's episode of one key: (episode after, alert record or None).

    Fires when the value goes over the threshold; resolves when it drops to the clear level or the key
    has no contacts in the window. Windows with some contacts but fewer than `min_contacts` change nothing.
    """
    value = window_value(rule, stats)
    if episode is None:
        if value is None or value <= rule.threshold:
            return None, None
    elif (stats is not None and stats.contacts and value is None) or (value is not None and value > rule.clear):
        return episode, None
    what = "ACW%" if rule.kind is RuleKind.PCT_OVER else "average ACW"
    label = f"{rule.scope.value.lower()} {wk.key}"
    shown: Callable[[float], str] = _percent if rule.kind is RuleKind.PCT_OVER else format_seconds
    window = (wk.start_ms, wk.end_ms)
    if episode is None:
        assert value is not None
        new = Episode(alert_id_for(rule.name, wk.scope.value, wk.key, wk.end_ms), wk.end_ms)
        text = f"The {what} of {label} is {shown(value)} over the last {_span(wk)} (limit {_limit(rule)})"
        return new, _record(rule, new.alert_id, True, wk.key, value, new.started_at, text, window=window)
    current = 0.0 if value is None else value
    text = (
        f"The {what} of {label} is back to {shown(current)} over the last {_span(wk)} (limit {_limit(rule)})"
        if value is not None
        else f"{label.capitalize()} had no contacts in the last {_span(wk)}; the {what} alert is cleared"
    )
    record = _record(
        rule, episode.alert_id, False, wk.key, current, episode.started_at, text, window=window, resolved_at=wk.end_ms
    )
    return None, record


def _span(wk: WindowKey) -> str:
    return format_seconds(wk.size_ms / 1000)
