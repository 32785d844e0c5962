"""gunicorn server hook for multiprocess metrics. In your ``gunicorn.conf.py``:

    from service.metrics.gunicorn import child_exit  # noqa: F401
"""

from __future__ import annotations

from typing import Any

__all__ = ["child_exit"]


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: drop its live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
