"""Celery: the request's tracking ID and traceparent travel in the task message headers.

    from service.jobs.celery import install
    install(celery_app)

Producer (``before_task_publish``): the current ID and traceparent go into the headers; explicit
headers win. Worker (``task_prerun`` / ``task_postrun``): bind them (or the task id, logged, when none
came), reset with tokens after. Eager mode (``task_always_eager``, ``.apply()``) publishes nothing,
so the task keeps the caller's ID. The worker's logging is the bundle's: every line JSON, with
``task_name`` and ``task_id`` on the lines of a task.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task, signals

from service.jobs.context import TRACEPARENT_KEY, TRACKING_KEY, carrier, end_job, log_job_fields, start_job

__all__ = ["install"]

_UID = "service.jobs.celery"


def install(app: Celery) -> None:
    """Propagate the tracking ID through ``app``'s tasks and log its workers through the bundle. Idempotent."""
    # Celery must not replace the root handler with its plain-text one (the setup_logging receiver
    # below already stops it; this also covers apps that disconnect it).
    app.conf.worker_hijack_root_logger = False
    signals.before_task_publish.connect(_before_publish, weak=False, dispatch_uid=f"{_UID}.publish")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid=f"{_UID}.prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid=f"{_UID}.postrun")
    signals.setup_logging.connect(_setup_logging, weak=False, dispatch_uid=f"{_UID}.logging")
    signals.celeryd_init.connect(_no_banner, weak=False, dispatch_uid=f"{_UID}.banner")
    signals.worker_ready.connect(_quiet_shutdown, weak=False, dispatch_uid=f"{_UID}.shutdown")


def _before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    for key, value in carrier().items():
        headers.setdefault(key, value)


def _prerun(task: Task[Any, Any] | None = None, task_id: str | None = None, **_: Any) -> None:
    if task is None or task_id is None:
        return
    request = task.request
    if request.is_eager:  # nothing was published: the caller's context is the carrier
        received: dict[str, object] = dict(carrier())
    else:
        received = {TRACKING_KEY: request.get(TRACKING_KEY), TRACEPARENT_KEY: request.get(TRACEPARENT_KEY)}
    start_job(received, name=task.name, job_id=task_id)


def _postrun(**_: Any) -> None:
    end_job()


def _setup_logging(**_: Any) -> None:
    """Connected to ``setup_logging``: Celery then leaves logging to us; prefork children inherit it."""
    from service.logs.pipeline import setup_logging

    setup_logging()
    log_job_fields()


def _no_banner(instance: Any = None, **_: Any) -> None:
    """The worker's startup banner is plain text on stdout; its facts are in the JSON lines that follow."""
    if instance is not None and hasattr(instance, "quiet"):
        instance.quiet = True


def _quiet_shutdown(sender: Any = None, **_: Any) -> None:
    """Celery's SIGTERM/SIGQUIT handlers write "worker: Warm shutdown (MainProcess)" straight to fd 1 (a raw
    write, from the signal handler): the same handlers again, without that plain-text line."""
    from celery.apps import worker as celery_worker

    worker = getattr(sender, "controller", None)
    if worker is None:
        return
    for name in ("install_worker_term_handler", "install_worker_term_hard_handler"):
        install_handler = getattr(celery_worker, name, None)  # module-level partials (per platform)
        if install_handler is not None:
            install_handler(worker, verbose=False)
