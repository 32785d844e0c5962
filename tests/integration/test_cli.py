"""`python -m service` startup checks: every environment input of the CLI is validated the same way
(exit 2, one JSON line naming the variable and what is allowed); typos in LOG_* get a hint."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT, parse_json_lines


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOG_") and k not in ("PORT", "HOST")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args], env={**clean, **env}, capture_output=True, cwd=ROOT, timeout=60
    )


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("PORT", "abc", "an integer from 0 to 65535"),
        ("PORT", "70000", "an integer from 0 to 65535"),
        ("WEB_CONCURRENCY", "abc", "an integer from 1 to 1024"),
        ("WEB_CONCURRENCY", "0", "an integer from 1 to 1024"),
        ("HOST", "", "an IP address or host name"),
        ("HOST", "bad host", "an IP address or host name"),
        ("LOG_LEVEL", "loud", "'CRITICAL', 'ERROR', 'WARNING', 'INFO' or 'DEBUG'"),
        ("LOG_DIR", "", "must not be empty"),
        ("LOG_QUEUE_SIZE", "many", "integer"),
    ],
)
def test_bad_environment_exits_2_with_one_json_line(variable: str, value: str, allowed: str) -> None:
    result = run({variable: value, "LOG_MODE": "file" if variable == "LOG_DIR" else "stdout"})
    assert result.returncode == 2
    assert result.stdout == b""
    (line,) = parse_json_lines(result.stderr, "stderr")
    assert line["level"] == "CRITICAL"
    assert line["message"].startswith(f"invalid setting {variable}={value!r}") and allowed in line["message"]


def test_misspelt_log_variable_warns_with_the_closest_name() -> None:
    """The warning comes first; here a bad PORT then stops startup, so nothing is served."""
    result = run({"LOG_LEVL": "debug", "PORT": "x"})
    lines = parse_json_lines(result.stderr, "stderr")
    assert [r["level"] for r in lines] == ["WARNING", "CRITICAL"]
    assert lines[0]["message"] == "unknown setting LOG_LEVL is ignored; did you mean LOG_LEVEL?"


def test_help_mentions_both_commands() -> None:
    result = run({}, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "python -m service [serve]" in text and "python -m service logs ID" in text
    assert run({}, "help").stdout == result.stdout


def test_log_level_option_takes_any_case_and_warn() -> None:
    """--log-level warn parses (the run then stops at the bad PORT, after the options were accepted)."""
    accepted = run({"PORT": "x"}, "--log-level", "warn")
    (line,) = parse_json_lines(accepted.stderr, "stderr")
    assert accepted.returncode == 2 and "PORT" in line["message"]
    rejected = run({}, "--log-level", "loud")
    assert rejected.returncode == 2 and b"allowed: CRITICAL, ERROR, WARNING, INFO, DEBUG" in rejected.stderr
