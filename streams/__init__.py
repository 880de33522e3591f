"""ACW Streams: after-call-work intervals, aggregates and alerts from call-lifecycle events."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("acw-streams")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
