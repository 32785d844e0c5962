"""The tracking ID (and W3C trace context) follows work into job queues.

One module per queue, each imported on its own and only by the user, so the core never needs the
queue library: ``service.jobs.celery``, ``service.jobs.arq``, ``service.jobs.taskiq``.
``service.jobs.context`` holds what they share (the carrier keys, binding a job, the log fields).
"""
