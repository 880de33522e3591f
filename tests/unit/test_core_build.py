"""The compiled core: used only when built from exactly these sources, and giving the Python core's outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams import core_build


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (the core is chosen once per process, at import)."""
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_digest_follows_every_byte_and_file_of_the_core(tmp_path: Path) -> None:
    domain = tmp_path / "domain"
    shutil.copytree(core_build.DOMAIN, domain, ignore=shutil.ignore_patterns("__pycache__"))
    before = core_build.digest(domain)
    assert before == core_build.digest(core_build.DOMAIN)
    events = domain / "events.py"
    events.write_bytes(events.read_bytes() + b"\n")
    edited = core_build.digest(domain)
    (domain / "extra.py").write_text("")
    assert len({before, edited, core_build.digest(domain)}) == 3


def test_only_a_finished_build_of_these_sources_is_activated(tmp_path: Path) -> None:
    built = core_build.build_dir(tmp_path)
    package_path = ["/the/package"]
    assert not core_build.activate(package_path, {}, tmp_path)  # nothing built
    (built / "streams").mkdir(parents=True)
    assert not core_build.activate(package_path, {}, tmp_path)  # a build cut short
    (built / "BUILT").write_text("")
    assert not core_build.activate(package_path, {"ACW_CORE": "python"}, tmp_path)
    assert package_path == ["/the/package"]
    try:
        assert core_build.activate(package_path, {}, tmp_path)
        assert package_path == [str(built / "streams"), "/the/package"]
        assert sys.path[-1] == str(built)
    finally:
        sys.path.remove(str(built))


@pytest.mark.skipif(os.environ.get("ACW_CORE") == "python", reason="this run asked for the Python core")
def test_the_suite_runs_the_compiled_core() -> None:
    assert core_build.running() == "compiled", "no compiled core for these sources: scripts/setup.sh builds it"


def test_acw_core_python_runs_the_source_and_compiled_then_refuses_to_start() -> None:
    done = _python("import streams.core_build as c; print(c.running())", ACW_CORE="python")
    assert done.stdout.strip() == "python", done.stderr
    done = _python("from streams.settings import Settings; Settings(core='compiled')", ACW_CORE="python")
    assert done.returncode != 0 and "ACW_CORE: is compiled, but no compiled core is built" in done.stderr


@pytest.mark.skipif(core_build.running() != "compiled", reason="no compiled core built")
def test_both_cores_write_byte_identical_outputs(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    simulate = f"simulate --agents 40 --duration 3h --start 1772438400000 --seed 5 --out {src}".split()
    done = _python(f"from streams.cli import main; raise SystemExit(main({simulate!r}))")
    assert done.returncode == 0, done.stderr
    for core, runs in (("python", "python"), ("auto", "compiled")):
        args = ["replay", str(src), "--out", str(tmp_path / core), "--quiet"]
        code = f"from streams.core_build import running; assert running() == {runs!r}; from streams.cli import main"
        done = _python(f"{code}; raise SystemExit(main({args!r}))", ACW_CORE=core)
        assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "python").iterdir())
    assert "aggregates.jsonl" in names and (tmp_path / "python" / "aggregates.jsonl").stat().st_size > 0
    for name in names:
        assert (tmp_path / "python" / name).read_bytes() == (tmp_path / "auto" / name).read_bytes(), name
