"""Command line: ``python -m service [serve] [--host ...]`` runs the service; ``python -m service logs ID``
finds a tracking ID across file-mode logs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from service.settings import LEVELS, SettingsError, load_settings, normalise_level, unknown_variables

__all__ = ["main"]


def _startup_line(level: str, message: str) -> None:
    """One JSON line on stderr about startup itself (``kubectl logs | jq`` keeps working)."""
    from service.logs.format import render_event

    sys.stderr.write(render_event(level, "service", message, func="main").decode())
    sys.stderr.flush()


def _fatal(message: str) -> int:
    """A startup error, then exit status 2."""
    _startup_line("CRITICAL", message)
    return 2


_USAGE = """commands:
  python -m service [serve] [options]     run an ASGI app under uvicorn (default: the demo, service.app:app)
  python -m service logs ID [--dir DIR]   find a tracking ID in every file-mode log file and rotation
                                          (python -m service logs --help for its options)"""


class _EnvError(ValueError):
    """An environment variable of the CLI has a bad value; the message names it and what is allowed."""


def _env_int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise _EnvError(f"invalid setting {name}={raw!r}: allowed: an integer from {low} to {high}")
    return value


def _env_host(environ: Mapping[str, str], default: str) -> str:
    raw = environ.get("HOST")
    if raw is None:
        return default
    if not raw.strip() or any(c.isspace() or not c.isprintable() for c in raw.strip()):
        raise _EnvError(f"invalid setting HOST={raw!r}: allowed: an IP address or host name to bind, e.g. 0.0.0.0")
    return raw.strip()


def _level(value: str) -> str:
    level = normalise_level(value)
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"invalid level {value!r}: allowed: {', '.join(LEVELS)} (any case, or warn)")
    return level


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Run the service under uvicorn, every log line JSON.",
        epilog=_USAGE + "\n\nHOST, PORT and WEB_CONCURRENCY set the defaults of --host, --port and --workers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--app", default="service.app:app", help="ASGI app import string (default: %(default)s)")
    parser.add_argument("--host", help="bind address (default: $HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="bind port (default: $PORT or 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: $WEB_CONCURRENCY or 1)")
    parser.add_argument("--log-level", type=_level, help=f"sets LOG_LEVEL for every worker: {', '.join(LEVELS)}")
    parser.add_argument("--graceful-timeout", type=float, default=20.0, help="seconds to finish requests on SIGTERM")
    return parser


def _warn(message: str) -> None:
    _startup_line("WARNING", message)


def serve(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    environ = os.environ
    for warning in unknown_variables(environ):
        _warn(warning)
    try:
        host = args.host if args.host is not None else _env_host(environ, "127.0.0.1")
        port = args.port if args.port is not None else _env_int(environ, "PORT", 8000, 0, 65535)
        workers = args.workers if args.workers is not None else _env_int(environ, "WEB_CONCURRENCY", 1, 1, 1024)
    except _EnvError as exc:
        return _fatal(str(exc))
    if workers < 1:
        return _fatal(f"invalid --workers {workers}: must be at least 1")
    if args.log_level:
        os.environ["LOG_LEVEL"] = args.log_level  # workers are spawned: they read it from the environment
    try:
        settings = load_settings()
        if settings.mode != "stdout":  # an unusable LOG_DIR stops startup here, not in every worker
            from service.logs.files import check_log_dir

            check_log_dir(settings.dir)
    except SettingsError as exc:
        return _fatal(str(exc))

    app, factory = args.app, False
    if settings.metrics:  # before anything imports prometheus_client (multiprocess mode is chosen at import)
        from service.metrics.serve import prepare

        try:
            app, factory = prepare(args.app, settings, workers=workers, host=host)
        except OSError as exc:
            return _fatal(f"invalid setting LOG_METRICS_PORT={settings.metrics_port}: cannot listen: {exc}")

    import uvicorn

    from service.logs.pipeline import setup_logging

    try:
        setup_logging()  # the supervisor's own lines ("Started parent process") are JSON too
    except SettingsError as exc:  # e.g. LOG_DIR removed since the check above
        return _fatal(str(exc))
    uvicorn.run(
        app,
        factory=factory,
        host=host,
        port=port,
        workers=workers,
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
    if argv and argv[0] == "help":
        argv = ["--help"]
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
