"""LOG_METRICS and LOG_METRICS_PORT: parsed once, a bad value stops startup with one JSON line naming it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import orjson
import pytest

from service.settings import SettingsError, load_settings
from tests.support import ROOT


def test_defaults_and_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.metrics, settings.metrics_port) == (True, 0)
    assert "/metrics" in settings.health_paths  # a scrape leaves no access line
    monkeypatch.setenv("LOG_METRICS", "off")
    monkeypatch.setenv("LOG_METRICS_PORT", "9464")
    assert (load_settings().metrics, load_settings().metrics_port) == (False, 9464)
    monkeypatch.setenv("LOG_METRICS_PORT", "70000")
    with pytest.raises(SettingsError, match="LOG_METRICS_PORT"):
        load_settings()


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "service", "--port", "0"]
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(command, capture_output=True, env=full, timeout=60, check=False)


@pytest.mark.parametrize("value", ["70000", "many"])
def test_a_bad_port_stops_startup_naming_the_setting(value: str) -> None:
    done = _serve({"LOG_METRICS_PORT": value})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "LOG_METRICS_PORT" in orjson.loads(line)["message"]


def test_a_busy_port_stops_startup_naming_the_setting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = _serve({"LOG_METRICS_PORT": str(busy.getsockname()[1])})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    message = orjson.loads(line)["message"]
    assert "LOG_METRICS_PORT" in message and "cannot listen" in message
