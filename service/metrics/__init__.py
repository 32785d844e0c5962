"""Prometheus metrics of the log pipeline (optional: ``pip install 'fastapi-tracking-logs[metrics]'``).

    app.mount("/metrics", service.metrics.asgi_app())

Counting is switched on by ``setup_logging()`` when prometheus_client is installed (``LOG_METRICS``);
this package only serves what is counted. Nothing here imports prometheus_client until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.metrics.exposure import MetricsApp

__all__ = ["asgi_app"]


def asgi_app() -> MetricsApp:
    """An ASGI app serving the pipeline's metrics (and everything else in prometheus_client's registry)."""
    from service.metrics.exposure import MetricsApp

    return MetricsApp()
