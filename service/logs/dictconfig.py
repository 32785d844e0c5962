"""The pipeline as a ``logging.config.dictConfig``, for servers started without ``python -m service``.

    uvicorn mymodule:app --workers 2 --log-config "$(python -m service.logs.dictconfig)"
    uvicorn.run(app, log_config=LOG_CONFIG)

uvicorn applies its log config in the supervisor and again in every worker, before importing the
app, so even its first lines ("Started parent process") are JSON.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["LOG_CONFIG", "config_path", "handler"]

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"json": {"()": "service.logs.dictconfig.handler"}},
    "root": {"handlers": ["json"]},
    "loggers": {
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": [], "propagate": True},
        "uvicorn.access": {"handlers": [], "propagate": False},
    },
}


def handler() -> logging.Handler:
    """dictConfig factory: set the pipeline up from ``LOG_*`` and hand back its root handler."""
    from service.logs.pipeline import QueueLogHandler, setup_logging

    pipeline = setup_logging()
    return QueueLogHandler(pipeline)


def config_path() -> Path:
    """The shipped JSON copy of ``LOG_CONFIG`` (uvicorn's ``--log-config`` takes a path)."""
    return Path(__file__).with_name("uvicorn-log-config.json")


if __name__ == "__main__":
    sys.stdout.write(f"{config_path()}\n")
