"""OpenTelemetry's SDK ``LoggingHandler`` on the root keeps exporting records, before and after
``setup_logging()``, with fast records on; the JSON lines are written too."""

from __future__ import annotations

import io
import logging

import orjson
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from service.logs import fastlog
from service.logs.pipeline import current_pipeline, setup_logging, shutdown_logging


def test_root_logging_handler_exports_before_and_after_setup() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(level=logging.NOTSET, logger_provider=provider)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    out = io.BytesIO()
    try:
        logging.getLogger("orders").info("before setup")
        setup_logging(stream=out)
        assert fastlog.installed()
        logging.getLogger("orders").info("after setup %s", "with args")
        logging.getLogger("uvicorn.error").warning("a routed logger")
        pipeline = current_pipeline()
        assert pipeline is not None and pipeline.flush(10)
    finally:
        shutdown_logging()
        root.removeHandler(handler)
        root.setLevel(old_level)
        provider.shutdown()
    bodies = [data.log_record.body for data in exporter.get_finished_logs()]
    assert bodies == ["before setup", "after setup with args", "a routed logger"]
    lines = [orjson.loads(line)["message"] for line in out.getvalue().splitlines()]
    assert lines == ["after setup with args", "a routed logger"]
