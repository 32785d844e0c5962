from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_flb_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fluent Bit runs with the configs' own defaults unless a test sets FLB_* itself."""
    for key in list(os.environ):
        if key.startswith("FLB_"):
            monkeypatch.delenv(key)
    yield
