"""The gunicorn config a user writes for multiprocess metrics (see README, Metrics)."""

from service.metrics.gunicorn import child_exit  # noqa: F401
