"""gunicorn's own loggers through the pipeline, so the arbiter's lines are JSON too, and each worker named.

    gunicorn app:app -k uvicorn_worker.UvicornWorker -w 2 --logger-class service.logs.gunicorn.Logger

gunicorn sets its loggers up (``Logger.setup``) when the arbiter starts and on every reload, before any
app is imported: this subclass lets gunicorn do that, then routes its records into the pipeline. The
uvicorn worker copies ``gunicorn.error``'s handlers onto ``uvicorn.error``, so uvicorn's lines follow.

Workers are forked, not started by multiprocessing, so stdlib would call each of them ``MainProcess``:
a forked worker is named ``Worker-<pid>``. The pid is what gunicorn's own lines say about a worker
("Booting worker with pid: 4242", "Worker (pid:4242) was sent SIGKILL!"), it stays the same for the
worker's whole life, and no two live workers share it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger

from service.logs import fastlog
from service.logs.pipeline import QueueLogHandler, setup_logging

__all__ = ["Logger"]

_names_workers = False


def _name_worker() -> None:
    multiprocessing.current_process().name = f"Worker-{os.getpid()}"
    fastlog.refresh_process()


class Logger(_GunicornLogger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's logger class with every line rendered by the bundle's pipeline."""

    def setup(self, cfg: Any) -> None:
        global _names_workers
        super().setup(cfg)
        pipeline = setup_logging()
        error_log: logging.Logger = self.error_log
        if not any(isinstance(h, QueueLogHandler) for h in error_log.handlers):
            error_log.addHandler(QueueLogHandler(pipeline))
        setup_logging()  # routes gunicorn's loggers: its plain handlers go, the bundle's stays
        if not _names_workers and hasattr(os, "register_at_fork"):
            _names_workers = True
            os.register_at_fork(after_in_child=_name_worker)
