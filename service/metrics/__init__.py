"""Prometheus metrics of the log pipeline (optional: ``pip install 'fastapi-tracking-logs[metrics]'``).

    app.add_route("/metrics", service.metrics.endpoint)      # FastAPI / Starlette
    app = service.metrics.with_metrics(app)                   # any ASGI app: /metrics in front of it

Counting is switched on by ``setup_logging()`` when prometheus_client is installed (``LOG_METRICS``);
this package only serves what is counted. Nothing here imports prometheus_client until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pipeline imports service.metrics.observer: keep this package's import free
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp

    from service.metrics.exposure import MetricsApp, WithMetrics

__all__ = ["asgi_app", "endpoint", "with_metrics"]


async def endpoint(request: Request) -> Response:
    """FastAPI / Starlette endpoint serving the metrics (and the rest of prometheus_client's registry)."""
    from service.metrics.exposure import endpoint as serve

    return await serve(request)


def asgi_app() -> MetricsApp:
    """A plain ASGI app serving the metrics, for any ASGI framework (``mount`` it)."""
    from service.metrics.exposure import MetricsApp

    return MetricsApp()


def with_metrics(app: ASGIApp, path: str = "/metrics") -> WithMetrics:
    """``app`` with ``path`` answered by the metrics in front of it (what ``python -m service`` does)."""
    from service.metrics.exposure import WithMetrics

    return WithMetrics(app, path)
