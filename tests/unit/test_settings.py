"""Settings: parsed from LOG_* once; every bad value names its variable and what is allowed."""

from __future__ import annotations

import pytest

from service.settings import LEVELS, SettingsError, load_settings, unknown_variables


def test_defaults() -> None:
    s = load_settings()
    assert (s.level, s.mode, s.overflow, s.queue_size) == ("INFO", "stdout", "block", 10_000)
    assert s.id_headers == ["X-Tracking-ID", "X-Request-ID"]
    assert s.health_paths == ["/healthz", "/readyz", "/metrics"]
    assert s.retention_days == 7


def test_environment_is_read_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", " debug ")
    monkeypatch.setenv("LOG_OVERFLOW", "DROP")
    monkeypatch.setenv("LOG_ID_HEADERS", "X-Correlation-ID, X-Request-ID")
    monkeypatch.setenv("LOG_HEALTH_PATHS", "/live,/ready")
    monkeypatch.setenv("LOG_QUEUE_SIZE", "5000")
    s = load_settings()
    assert s.level == "DEBUG" and s.overflow == "drop" and s.queue_size == 5000
    assert s.id_headers == ["X-Correlation-ID", "X-Request-ID"]
    assert s.health_paths == ["/live", "/ready"]


def test_keyword_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    assert load_settings(level="warning").level == "WARNING"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_LEVEL", "LOUD", "'CRITICAL', 'ERROR', 'WARNING', 'INFO' or 'DEBUG'"),
        ("LOG_MODE", "syslog", "'stdout', 'file' or 'both'"),
        ("LOG_OVERFLOW", "maybe", "'block' or 'drop'"),
        ("LOG_QUEUE_SIZE", "ten", "integer"),
        ("LOG_QUEUE_SIZE", "5", "greater than or equal to 100"),
        ("LOG_RETENTION_DAYS", "0", "greater than or equal to 1"),
        ("LOG_RETENTION_DAYS", "-3", "greater than or equal to 1"),
        ("LOG_ID_HEADERS", "X-Ok,bad header", "not a header name"),
        ("LOG_ID_HEADERS", " , ", "at least one header"),
        ("LOG_HEALTH_PATHS", "healthz", "must start with '/'"),
        ("LOG_ACCESS", "perhaps", "boolean"),
        ("LOG_FILE_NAME", "../etc/passwd", "pattern"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert f"{variable}=" in message
    assert expected in message
    assert "\n" not in message


def test_settings_are_immutable() -> None:
    s = load_settings()
    with pytest.raises(Exception, match="frozen"):
        s.level = "DEBUG"


@pytest.mark.parametrize(("value", "level"), [("warn", "WARNING"), ("Warning", "WARNING"), ("info", "INFO"),
                                              ("FATAL", "CRITICAL"), (" Debug ", "DEBUG")])  # fmt: skip
def test_level_any_case_and_aliases(monkeypatch: pytest.MonkeyPatch, value: str, level: str) -> None:
    monkeypatch.setenv("LOG_LEVEL", value)
    assert load_settings().level == level


def test_empty_log_dir_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_DIR", "")
    with pytest.raises(SettingsError, match="invalid setting LOG_DIR='': must not be empty"):
        load_settings()


def test_unknown_variables_name_the_closest_setting() -> None:
    environ = {"LOG_LEVL": "debug", "LOG_MDOE": "file", "LOG_LEVEL": "info", "LOGGING": "x", "PATH": "/bin"}
    assert unknown_variables(environ) == [
        "unknown setting LOG_LEVL is ignored; did you mean LOG_LEVEL?",
        "unknown setting LOG_MDOE is ignored; did you mean LOG_MODE?",
    ]
    (far,) = unknown_variables({"LOG_QQQQQQQQQQQQQQ": "1"})
    assert far.startswith("unknown setting LOG_QQQQQQQQQQQQQQ is ignored; known: LOG_LEVEL")


def test_the_level_list_is_shared_with_the_cli() -> None:
    from service import __main__ as cli

    assert vars(cli)["LEVELS"] is LEVELS == ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
