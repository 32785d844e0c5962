"""Scraping and counting helpers for the metrics tests."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import parse_json_lines

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, keyed by (name, sorted labels)."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def written_by_level(samples: Samples) -> dict[str, int]:
    out = {}
    for (name, labels), number in samples.items():
        if name == "tracking_logs_lines_written_total":
            out[dict(labels)["level"]] = int(number)
    return out


def levels_in(records: list[dict[str, Any]]) -> dict[str, int]:
    """Lines per level, in the same shape as ``written_by_level`` (every standard level present)."""
    counts = collections.Counter(str(r.get("level")) for r in records)
    return {level: counts.get(level, 0) for level in sorted(set(LEVELS) | set(counts))}


def stable_scrape(url: str, read: Callable[[], bytes], settle: float = 0.6) -> tuple[Samples, list[dict[str, Any]]]:
    """A scrape together with the output at that moment: retried until no line arrived around the scrape."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = _settled(read, settle)
        samples = scrape(url)
        time.sleep(settle)
        if read() == before:
            return samples, parse_json_lines(before)
    raise AssertionError("the output never settled")


def _settled(read: Callable[[], bytes], settle: float) -> bytes:
    data = read()
    while True:
        time.sleep(settle)
        again = read()
        if again == data:
            return data
        data = again


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
