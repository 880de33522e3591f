"""`acw worker`: the Faust application around the core; `run_worker` starts it.

Faust is imported only when `run_worker` is first used: the core process (`streams.worker.core_process`)
lives in this package and needs none of it.
"""

from typing import Any

__all__ = ["run_worker"]


def __getattr__(name: str) -> Any:
    if name == "run_worker":
        from streams.worker.app import run_worker

        return run_worker
    raise AttributeError(name)
