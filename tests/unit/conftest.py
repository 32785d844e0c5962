"""Fixtures shared by the in-process tests."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from service.logs.pipeline import setup_logging, shutdown_logging


@pytest.fixture
def out() -> Iterator[io.BytesIO]:
    """The bundle's pipeline writing into a BytesIO for the test, removed after it."""
    stream = io.BytesIO()
    setup_logging(stream=stream)
    yield stream
    shutdown_logging()
