"""LogMetrics on a real Pipeline: levels, write errors and queue drops counted exactly, per batch."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from service.logs.format import render
from service.logs.pipeline import Pipeline, current_pipeline, setup_logging, shutdown_logging
from service.logs.sinks import StreamSink
from service.metrics.observer import LEVELS, LogMetrics, PipelineMetrics, pipeline_observer
from service.settings import load_settings
from tests.metrics.support import levels_in
from tests.support import parse_json_lines


def _line(level: int, message: str = "m") -> bytes:
    record = logging.LogRecord("t", level, "f.py", 1, message, None, None)
    record.tracking_id = None
    return render(record)


class _Metrics:
    def __init__(self, sinks: int = 1) -> None:
        self.registry = CollectorRegistry()
        self.observer = LogMetrics(prometheus_client, registry=self.registry).observer(sinks)

    def get(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def written(self) -> dict[str, int]:
        out = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name == "tracking_logs_lines_written_total":
                    out[sample.labels["level"]] = int(sample.value)
        return out


def _pipeline(*sinks: StreamSink, **overrides: object) -> tuple[Pipeline, _Metrics]:
    pipeline = Pipeline(load_settings(**overrides), list(sinks))
    metrics = _Metrics(len(sinks))
    pipeline.observer = metrics.observer
    pipeline.start()
    return pipeline, metrics


def _fallback_line() -> bytes:
    """The renderer's line for a record it cannot render (no timestamp: not in the standard shape)."""
    record = logging.LogRecord("t", logging.INFO, "f.py", 1, "m", None, None)
    record.created = "broken"  # type: ignore[assignment]
    line = render(record)
    assert not line.startswith(b'{"@timestamp"')
    return line


@pytest.mark.parametrize("custom", ["NOTICE", "INFORMATION"])  # the second starts like INFO
def test_lines_are_counted_by_level_exactly_including_odd_lines(custom: str) -> None:
    out = io.BytesIO()
    pipeline, metrics = _pipeline(StreamSink(out))
    logging.addLevelName(25, custom)
    try:
        lines = [_line(level, f"n{i}") for i, level in enumerate([10, 20, 20, 30, 40, 50, 25, 15] * 50)]
        lines += [_fallback_line()] * 3
        for line in lines:
            pipeline.submit(line)
        pipeline.drain()
    finally:
        del logging._levelToName[25]
        del logging._nameToLevel[custom]
    records = parse_json_lines(out.getvalue())
    expected = levels_in(records)
    expected["unknown"] = expected.pop("Level 15")  # not a registered name: "unknown" keeps labels bounded
    assert metrics.written() == expected
    assert expected[custom] == 50 and expected["unknown"] == 50 and expected["ERROR"] == 53
    assert expected["INFO"] == 100
    batches = metrics.get("tracking_logs_write_batch_duration_seconds_count")
    assert 1 <= batches <= len(lines)
    assert metrics.get("tracking_logs_queue_capacity") == 10_000


def test_every_standard_series_exists_at_zero_from_the_start() -> None:
    metrics = _Metrics()
    for level in LEVELS:
        assert metrics.registry.get_sample_value("tracking_logs_lines_written_total", {"level": level}) == 0
    for reason in ("queue_full", "write_error", "shutdown"):
        assert metrics.registry.get_sample_value("tracking_logs_lines_dropped_total", {"reason": reason}) == 0
    for sink in ("stdout", "file"):
        assert metrics.registry.get_sample_value("tracking_logs_write_errors_total", {"sink": sink}) == 0
    assert metrics.registry.get_sample_value("tracking_logs_queue_depth") == 0
    infos = [s for f in metrics.registry.collect() for s in f.samples if s.name == "tracking_logs_build_info"]
    assert len(infos) == 1 and infos[0].value == 1 and set(infos[0].labels) == {"version", "python"}


def _closed() -> StreamSink:
    stream = io.BytesIO()
    stream.close()
    return StreamSink(stream)


def test_a_batch_every_sink_failed_is_dropped_not_written() -> None:
    pipeline, metrics = _pipeline(_closed())
    for _ in range(30):
        pipeline.submit(_line(logging.WARNING))
    pipeline.drain()
    assert metrics.get("tracking_logs_lines_dropped_total", reason="write_error") == 30
    assert metrics.get("tracking_logs_write_errors_total", sink="stdout") == 30
    assert sum(metrics.written().values()) == 0


def test_a_batch_one_sink_failed_is_written_and_the_error_counted() -> None:
    good = io.BytesIO()
    pipeline, metrics = _pipeline(StreamSink(good), _closed())
    for _ in range(30):
        pipeline.submit(_line(logging.ERROR))
    pipeline.drain()
    assert len(parse_json_lines(good.getvalue())) == 30
    assert metrics.written()["ERROR"] == 30
    assert metrics.get("tracking_logs_write_errors_total", sink="stdout") == 30  # both sinks are "stdout" here
    assert metrics.get("tracking_logs_lines_dropped_total", reason="write_error") == 0


class _StalledStream(io.BytesIO):
    """A stream whose writes wait until released: a collector that stopped reading."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.entered.set()
        self.release.wait(30)
        return super().write(data)


def test_queue_full_drops_equal_the_lines_sent_minus_the_lines_present() -> None:
    stream = _StalledStream()
    pipeline, metrics = _pipeline(StreamSink(stream), overflow="drop", queue_size=100)
    pipeline.submit(_line(logging.INFO, "first"))
    assert stream.entered.wait(10)  # the listener is stuck in the first write
    sent = 1 + 1000
    for i in range(1000):
        pipeline.submit(_line(logging.INFO, f"burst {i}"))
    stream.release.set()
    pipeline.drain()
    records = parse_json_lines(stream.getvalue())
    present = sum(1 for r in records if r["message"] == "first" or str(r["message"]).startswith("burst "))
    dropped = metrics.get("tracking_logs_lines_dropped_total", reason="queue_full")
    assert present < sent
    assert dropped == sent - present
    assert dropped == sum(r["dropped"] for r in records if "dropped" in r)
    assert metrics.written() == levels_in(records)


def test_setup_logging_attaches_the_observer_unless_log_metrics_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        pipeline = setup_logging(stream=io.BytesIO())
        assert isinstance(pipeline.observer, PipelineMetrics) and pipeline.observer.sinks == 1
        monkeypatch.setenv("LOG_METRICS", "false")
        assert setup_logging(stream=io.BytesIO()).observer is None
        assert current_pipeline() is not pipeline
    finally:
        shutdown_logging()


@pytest.fixture(autouse=True)
def _no_leftover_pipeline() -> Iterator[None]:
    yield
    shutdown_logging()


def test_the_asgi_app_serves_text_openmetrics_head_and_refuses_other_methods() -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from service.metrics import asgi_app, endpoint, with_metrics

    pipeline_observer(1)  # this process's metrics exist
    app = FastAPI()
    app.add_route("/metrics", endpoint)
    with TestClient(app) as client:
        text = client.get("/metrics")
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        assert "tracking_logs_lines_written_total" in text.text
        om = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.endswith("# EOF\n")
        head = client.head("/metrics")
        assert head.status_code == 200 and head.content == b""
        assert client.post("/metrics").status_code == 405
    plain = FastAPI()
    for wrapped in (with_metrics(plain), with_metrics(plain, "/m")):
        with TestClient(wrapped) as client:
            path = wrapped.path
            assert "tracking_logs_queue_capacity" in client.get(path).text
            assert client.get("/other").status_code == 404  # everything else reaches the app
    raw = FastAPI()
    raw.mount("/raw", asgi_app())
    with TestClient(raw) as client:
        assert "tracking_logs_build_info" in client.get("/raw/").text


def test_standard_lines_take_the_fast_path_no_line_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.metrics.observer as module

    def parsed(lines: object) -> None:
        raise AssertionError("a standard line was parsed")

    monkeypatch.setattr(module, "_odd_levels", parsed)
    metrics = _Metrics()
    metrics.observer.batch_written([_line(level) for level in (10, 20, 30, 40, 50)] * 3, 0.001, 0, 100)
    assert metrics.written() == dict.fromkeys(LEVELS, 3)


@pytest.mark.parametrize("dropped_first", [True, False])
def test_lines_every_sink_failed_are_not_written_whichever_the_order_of_the_calls(dropped_first: bool) -> None:
    metrics = _Metrics(sinks=2)
    observer = metrics.observer
    lines = [_line(logging.INFO)] * 4
    observer.write_failed("stdout", 4)
    observer.write_failed("file", 4)
    if dropped_first:
        observer.lines_dropped("write_error", 4)
    observer.batch_written(lines, 0.001, 0, 100)
    if not dropped_first:
        observer.lines_dropped("write_error", 4)
    observer.write_failed("file", 4)  # the next batch: one of two sinks failed, the other has the lines
    observer.batch_written(lines, 0.001, 0, 100)
    assert metrics.written()["INFO"] == 4
    assert metrics.get("tracking_logs_lines_dropped_total", reason="write_error") == 4
    assert metrics.get("tracking_logs_write_errors_total", sink="file") == 8
    assert metrics.get("tracking_logs_write_errors_total", sink="stdout") == 4
