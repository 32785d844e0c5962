"""taskiq: the request's tracking ID and traceparent travel in the task's labels.

    from service.jobs.taskiq import TrackingMiddleware
    broker = RedisStreamBroker(url).with_middlewares(TrackingMiddleware())

Client (``pre_send``): the current ID and traceparent become labels; explicit labels win. Worker
(``pre_execute`` / ``post_execute``): bind them (or the task id, logged, when none came), reset with
tokens after; each task runs in its own asyncio task, so jobs never see each other's ID. In the worker
process ``startup`` routes logging through the bundle (run ``taskiq worker --no-configure-logging``).
"""

from __future__ import annotations

from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from service.jobs.context import carrier, end_job, log_job_fields, start_job

__all__ = ["TrackingMiddleware"]


class TrackingMiddleware(TaskiqMiddleware):
    """Carries the tracking ID (and W3C trace context) from the code that kicks a task to its worker."""

    def startup(self) -> None:
        if self.broker.is_worker_process:
            from service.logs.pipeline import setup_logging

            setup_logging()
            log_job_fields()

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        for key, value in carrier().items():
            message.labels.setdefault(key, value)
        return message

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        start_job(message.labels, name=message.task_name, job_id=message.task_id)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        end_job()
