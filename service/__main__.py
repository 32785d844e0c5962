"""Command line: ``python -m service [serve] [--host ...]`` runs the service; ``python -m service logs ID``
finds a tracking ID across file-mode logs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from service.settings import SettingsError, load_settings

__all__ = ["main"]


def _fatal(message: str) -> int:
    """A startup error as one JSON line on stderr (``kubectl logs | jq`` keeps working), exit status 2."""
    from service.logs.format import render_event

    sys.stderr.write(render_event("CRITICAL", "service", message, func="main").decode())
    sys.stderr.flush()
    return 2


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service", description="Run the service under uvicorn.")
    parser.add_argument("--app", default="service.app:app", help="ASGI app import string (default: %(default)s)")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="bind address")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="bind port")
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")), help="worker processes"
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"],
        help="sets LOG_LEVEL for every worker",
    )
    parser.add_argument("--graceful-timeout", type=float, default=20.0, help="seconds to finish requests on SIGTERM")
    return parser


def serve(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    if args.workers < 1:
        return _fatal(f"invalid --workers {args.workers}: must be at least 1")
    if args.log_level:
        os.environ["LOG_LEVEL"] = args.log_level  # workers are spawned: they read it from the environment
    try:
        settings = load_settings()
        if settings.mode != "stdout":  # an unusable LOG_DIR stops startup here, not in every worker
            from service.logs.files import check_log_dir

            check_log_dir(settings.dir)
    except SettingsError as exc:
        return _fatal(str(exc))

    import uvicorn

    from service.logs.pipeline import setup_logging

    try:
        setup_logging()  # the supervisor's own lines ("Started parent process") are JSON too
    except SettingsError as exc:  # e.g. LOG_DIR removed since the check above
        return _fatal(str(exc))
    uvicorn.run(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,  # uvicorn must not install its plain-text handlers; the app sets up logging
        access_log=False,  # replaced by the middleware's JSON access line
        timeout_graceful_shutdown=args.graceful_timeout,
        server_header=False,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "logs":
        from service.logs.query import main as logs_main

        return int(logs_main(argv[1:]))
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
