"""gunicorn server hook for multiprocess metrics; in your ``gunicorn.conf.py``:
``from service.metrics.gunicorn import child_exit``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["child_exit"]


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: drop its live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    mark_dead: Callable[[int], None] = multiprocess.mark_process_dead
    mark_dead(worker.pid)
