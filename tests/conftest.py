from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_log_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests start from default settings, whatever the developer's shell exports."""
    for key in list(os.environ):
        if key.startswith("LOG_"):
            monkeypatch.delenv(key)
    yield
