"""Headless Chromium (Debian's package): a page opened and screenshotted as a person's browser would show it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Without the background-networking flags Chromium keeps trying this machine's closed network at every start.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The Chromium binary; scripts/setup.sh installs it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is not installed (scripts/setup.sh installs Debian's package)")
    return found


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 2400, timeout_s: float = 120) -> Path:
    """A PNG of `page` (a local file) at the given window size, in a fresh profile."""
    profile = out.parent / f"{out.stem}-chromium-profile"
    args = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
    subprocess.run(
        [*args, f"--screenshot={out}", page.resolve().as_uri()], check=True, capture_output=True, timeout=timeout_s
    )
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {page}")
    return out
