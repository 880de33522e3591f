"""`acw top` against a topic with a day of history shows the present within 10 s, read through tmux's screen.

The worker processes a simulated day; the view then starts from the compacted agent-state topic and the latest
windows, not from the input's first offset. What it must show is read from the agent-state topic directly.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.cli import main
from streams.consume import parse_since
from streams.serialization import codec
from streams.settings import Settings
from tests.integration.conftest import ROOT, WorkerProcess
from tests.integration.kafka_helpers import committed_to_end, read_topic, topic_size, wait_for
from tests.integration.outputs import send

pytestmark = pytest.mark.integration


@pytest.fixture
def tmux_session(tmp_path: Path) -> Iterator[str]:
    assert shutil.which("tmux"), "tmux is missing (Debian's package)"
    name = f"acw-top-{tmp_path.name}"[:40]
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False)


def _present(settings: Settings) -> tuple[int, str, int, int, int]:
    """Stream time and agents / contacts in ACW, as the latest agent-state record of each agent says."""
    decode = codec("acw_agent_state").decode
    latest: dict[bytes | None, bytes | None] = {}
    for key, value in read_topic(settings.bootstrap_servers, settings.agent_state_topic):
        latest[key] = value
    records = [decode(v) for v in latest.values() if v is not None]
    as_of = max(r["as_of"] for r in records)
    cutoff = as_of - round(settings.max_acw_seconds * 1000)
    contacts = [(r["agent_id"], c) for r in records for c in r["acw_contacts"] if c["disconnected_at"] >= cutoff]
    when = dt.datetime.fromtimestamp(as_of / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    teams = len({r["team_id"] for r in records if r["team_id"]})
    return as_of, when, len({a for a, _ in contacts}), len(contacts), teams


def test_top_shows_the_present_of_a_day_of_history_within_10_s(
    worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path, tmux_session: str
) -> None:
    worker_env["ACW_INPUT_FORMAT"] = "json"
    settings = Settings.from_env(worker_env)
    # Yesterday's whole day, then today's shifts cut at 04:00: agents are mid-shift at the present.
    history = tmp_path / "history.jsonl"
    sim = ["simulate", "--agents", "300", "--seed", "3"]
    assert main([*sim, "--duration", "1d", "--start", "2026-03-02T00:00:00Z", "--out", str(tmp_path / "d0.jsonl")]) == 0
    assert main([*sim, "--duration", "8h", "--start", "2026-03-03T00:00:00Z", "--out", str(tmp_path / "d1.jsonl")]) == 0
    cut = parse_since("2026-03-03T04:00:00Z")
    today = [x for x in (tmp_path / "d1.jsonl").read_bytes().splitlines() if orjson.loads(x)["occurred_at"] < cut]
    history.write_bytes((tmp_path / "d0.jsonl").read_bytes() + b"\n".join(today) + b"\n")
    events = len(history.read_bytes().splitlines())
    workers.append(WorkerProcess(worker_env, tmp_path / "worker.log").start())
    send(settings, history)
    assert topic_size(settings.bootstrap_servers, settings.input_topic) == events
    for topic in (settings.input_topic, settings.panes_topic):  # the interval stage, then the merge stage
        wait_for(
            lambda topic=topic: committed_to_end(settings.bootstrap_servers, settings.app_id, topic),
            300,
            f"the worker to apply and checkpoint all of {topic}",
            poll_s=1,
        )
    last_event = max(orjson.loads(line)["occurred_at"] for line in history.read_bytes().splitlines())
    seen: list[tuple[int, str, int, int, int]] = []

    def settled() -> tuple[int, str, int, int, int] | None:
        """The present once it reaches the last event's time and two reads agree (the last updates arrived)."""
        seen.append(_present(settings))
        return seen[-1] if seen[-1][0] == last_event and seen[-2:-1] == seen[-1:] else None

    _, when, agents, contacts, teams = wait_for(settled, 60, "the agent-state topic to reach the present", poll_s=0.5)
    print(f"{events:,} events of history; present: {when}, {agents} agents / {contacts} contacts in ACW, {teams} teams")
    assert contacts > 0
    script = tmp_path / "top.sh"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in worker_env.items() if k.startswith(("ACW_", "PYTHON")))
    command = f"exec env COLUMNS=200 LINES=60 {exports} {shlex.quote(sys.executable)} -m streams.cli top"
    script.write_text(f"cd {shlex.quote(str(ROOT))} && {command}\n")
    started = time.monotonic()
    window = ["-x", "200", "-y", "60"]
    subprocess.run(["tmux", "new-session", "-d", "-s", tmux_session, *window, f"bash {script}"], check=True)
    wanted = (f"stream time {when} UTC", f"in ACW now {agents} agents, {contacts} contacts", "Teams, current")
    last = [""]

    def screen() -> str | None:
        capture = ["tmux", "capture-pane", "-p", "-t", tmux_session]
        last[0] = subprocess.run(capture, capture_output=True, text=True, check=False).stdout
        rows = last[0].partition("Teams, current")[2].partition("Latest alerts")[0].count("│ team-")
        return last[0] if all(w in last[0] for w in wanted) and rows == teams else None

    try:
        shown = wait_for(screen, 10, f"acw top to show {wanted}", poll_s=0.2)
    except AssertionError:
        print(f"the screen showed:\n{last[0]}")
        raise
    print(f"acw top showed the present after {time.monotonic() - started:.1f} s:\n{shown}")
