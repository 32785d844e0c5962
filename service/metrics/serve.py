"""What ``python -m service`` does for metrics before uvicorn starts (and, in each worker, the app factory)."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile

from starlette.types import ASGIApp

from service.settings import LogSettings

__all__ = ["APP_ENV", "app_with_metrics", "prepare"]

#: The user's app import string, handed to the workers' factory (workers are spawned: the environment travels).
APP_ENV = "TRACKING_LOGS_METRICS_APP"


def prepare(app: str, settings: LogSettings, *, workers: int, host: str) -> tuple[str, bool]:
    """Set metrics up for the CLI; returns the ASGI import string and ``factory`` flag for ``uvicorn.run``.

    Must run before anything imports prometheus_client: its multiprocess mode is chosen at import, from
    ``PROMETHEUS_MULTIPROC_DIR``. Several workers get a private directory (removed at exit) unless the
    user set one. Raises OSError when ``LOG_METRICS_PORT`` cannot be bound.
    """
    if not settings.metrics or not _installed():
        return app, False
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = tempfile.mkdtemp(prefix="tracking-logs-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    if settings.metrics_port:
        from service.metrics.exposure import start_server

        start_server(settings.metrics_port, host)  # the supervisor serves every worker's files
        return app, False
    os.environ[APP_ENV] = app
    return "service.metrics.serve:app_with_metrics", True


def _installed() -> bool:
    """Whether prometheus_client can be imported, without importing it."""
    try:
        return importlib.util.find_spec("prometheus_client") is not None
    except (ImportError, ValueError):
        return False


def app_with_metrics() -> ASGIApp:
    """uvicorn app factory, run in each worker: the user's app with ``/metrics`` in front of it."""
    from uvicorn.importer import import_from_string

    from service.metrics.exposure import WithMetrics

    return WithMetrics(import_from_string(os.environ[APP_ENV]))
