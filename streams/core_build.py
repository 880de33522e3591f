"""The compiled core: `streams.domain` built by mypyc from these very sources, and the choice to run it.

The core stays plain Python, and that source is the only one there is. `build` (run by scripts/setup.sh)
compiles a copy of it with mypyc into `.cache/compiled-core/DIGEST/`, where DIGEST hashes the sources and the
interpreter's extension suffix, and builds again when mypyc's version changes. At import, `streams` puts that
directory in front of its own package path, so `streams.domain` and its modules load compiled, but only when a
finished build for exactly these sources exists: an edited core runs as Python until it is built again, never
stale. `ACW_CORE=python` keeps the Python core; `ACW_CORE=compiled` makes the settings refuse to start without one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

SETTING = "ACW_CORE"
CHOICES = ("auto", "python", "compiled")
PACKAGE = Path(__file__).resolve().parent
DOMAIN = PACKAGE / "domain"
CACHE = PACKAGE.parent / ".cache" / "compiled-core"
_DONE = "BUILT"
_KEEP = 4  # builds kept besides the newest: worktrees sharing one .cache each need their own


def digest(domain: Path = DOMAIN) -> str:
    """The key of a build: the core's sources, byte for byte, and the interpreter's extension suffix."""
    h = hashlib.sha256(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
    for path in sorted(domain.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def build_dir(cache: Path = CACHE, domain: Path = DOMAIN) -> Path:
    """Where the build of the current sources lives (it may not exist)."""
    return cache / digest(domain)


def activate(
    package_path: list[str],
    environ: Mapping[str, str] = os.environ,
    cache: Path = CACHE,
    domain: Path = DOMAIN,
) -> bool:
    """Put the compiled core in front of `streams`' package path when it is built and wanted; True if it is."""
    if environ.get(SETTING, "auto") not in ("auto", "compiled"):
        return False
    built = build_dir(cache, domain)
    if not (built / _DONE).is_file():
        return False
    package_path.insert(0, str(built / "streams"))
    # mypyc keeps the compiled modules' shared code in one top-level extension module beside `streams/`.
    sys.path.append(str(built))
    return True


def running() -> str:
    """Which core this process runs: "compiled" or "python"."""
    import streams.domain.processor

    return "python" if streams.domain.processor.__file__.endswith(".py") else "compiled"


def build() -> Path:
    """Compile the current sources with mypyc unless this mypyc already built them; returns the build's directory."""
    from mypy.version import __version__ as mypyc_version

    target = build_dir()
    if (target / _DONE).is_file() and (target / _DONE).read_text() == mypyc_version:
        return target
    work = CACHE / f"{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "streams" / "domain").mkdir(parents=True)
    (work / "streams" / "__init__.py").write_text("")
    for path in DOMAIN.glob("*.py"):
        shutil.copy2(path, work / "streams" / "domain" / path.name)
    done = subprocess.run(
        [sys.executable, "-m", "mypyc", "--strict", "streams/domain"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"mypyc failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    for leftover in ("build", ".mypy_cache"):
        shutil.rmtree(work / leftover, ignore_errors=True)
    (work / _DONE).write_text(mypyc_version)
    shutil.rmtree(target, ignore_errors=True)  # built by another mypyc; a process using it keeps its mapped files
    work.rename(target)
    builds = sorted((d for d in CACHE.iterdir() if (d / _DONE).is_file()), key=lambda d: d.stat().st_mtime)
    for old in builds[: -(_KEEP + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    print(f"compiled core: built {target} with mypyc {mypyc_version}", file=sys.stderr)
    return target


def main() -> int:
    """What scripts/setup.sh runs: build the compiled core of the current sources (0), or say why not (1)."""
    try:
        build()
    except (RuntimeError, OSError) as exc:
        print(f"compiled core: not built: {exc}", file=sys.stderr)
        return 1
    return 0
