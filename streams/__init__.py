"""ACW Streams: after-call-work intervals, aggregates and alerts from call-lifecycle events."""

from importlib.metadata import PackageNotFoundError, version

from streams import core_build

try:
    __version__ = version("acw-streams")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

# Before any module imports the core: its mypyc build, when one exists for exactly these sources.
core_build.activate(__path__)
