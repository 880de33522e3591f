"""`acw worker`: the Faust application around the core; `run_worker` starts it."""

from streams.worker.app import run_worker

__all__ = ["run_worker"]
