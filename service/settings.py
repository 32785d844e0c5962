"""Settings from the environment (prefix ``LOG_``), validated once, with errors that name the variable."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "ENV_PREFIX",
    "LEVELS",
    "LogSettings",
    "SettingsError",
    "load_settings",
    "normalise_level",
    "unknown_variables",
]

ENV_PREFIX = "LOG_"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")

Level = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
#: The level names, in one place (settings and the CLI's --log-level share it).
LEVELS: tuple[Level, ...] = get_args(Level)
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
CommaList = Annotated[list[str], NoDecode]


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable and what is allowed."""


class LogSettings(BaseSettings):
    """Every knob of the bundle. Environment variables are the field names, upper-cased, with ``LOG_``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    level: Level = "INFO"
    mode: Literal["stdout", "file", "both"] = "stdout"
    queue_size: int = Field(default=10_000, ge=100, le=10_000_000)
    overflow: Literal["block", "drop"] = "block"
    # Inbound headers tried in order; the first valid value is adopted.
    id_headers: CommaList = ["X-Tracking-ID", "X-Request-ID"]
    response_header: str = "X-Tracking-ID"
    access: bool = True
    health_paths: CommaList = ["/healthz", "/readyz", "/metrics"]
    access_health: bool = False
    # Expose the chosen ID to the app as its x-request-id header; unset: only when X-Request-ID is in
    # LOG_ID_HEADERS.
    expose_request_id: bool | None = None
    # W3C trace context: trace_id/span_id/trace_flags on every line of a request; a new trace when the
    # request brings none (and no OpenTelemetry span is active); the trace ID as the tracking ID when no
    # tracking header came in.
    trace_context: bool = True
    new_trace: bool = True
    trace_id_as_tracking_id: bool = False
    # The demo app's /demo/* and /ws/echo routes (service.app); probes stay.
    demo_routes: bool = True
    # Build stdlib LogRecords with service.logs.fastlog (same records, about half the cost).
    fast_records: bool = True
    # How often (seconds) dropped-record counts are reported under LOG_OVERFLOW=drop.
    drop_report_interval: float = Field(default=10.0, gt=0, le=3600)
    # Seconds shutdown may spend writing queued lines (a stalled stdout); then they are counted as lost.
    shutdown_timeout: float = Field(default=5.0, gt=0, le=600)
    # File mode (LOG_MODE=file|both).
    dir: Path = Path("logs")
    file_name: str = Field(default="app", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    retention_days: int = Field(default=7, ge=1, le=3650)
    rotate_utc: bool = False
    gzip: bool = False
    # Prometheus metrics of the pipeline (service.metrics); only when prometheus_client is installed.
    metrics: bool = True
    # 0: the CLI serves /metrics on the app's port; else on this port of its own.
    metrics_port: int = Field(default=0, ge=0, le=65535)

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        level = normalise_level(value)
        return level if level in LEVELS else value  # an error names the value as it was given

    @field_validator("dir", mode="before")
    @classmethod
    def _non_empty_dir(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty (it would mean the current directory); e.g. /var/log/app")
        return value

    @field_validator("mode", "overflow", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("id_headers", "health_paths", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("id_headers")
    @classmethod
    def _check_headers(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one header name")
        for name in value:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a header name (letters, digits and '-')")
        return value

    @field_validator("response_header")
    @classmethod
    def _check_response_header(cls, value: str) -> str:
        if not _HEADER_NAME.match(value):
            raise ValueError(f"{value!r} is not a header name (letters, digits and '-')")
        return value

    @field_validator("health_paths")
    @classmethod
    def _check_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} must start with '/'")
        return value


def normalise_level(value: str) -> str:
    """``warn``, `` Info `` -> ``WARNING``, ``INFO``: any case, stdlib's aliases."""
    upper = value.strip().upper()
    return _LEVEL_ALIASES.get(upper, upper)


def _explain_validation_error(error: Mapping[str, Any]) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "?"
    variable = ENV_PREFIX + field.upper()
    given = error.get("input")
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        allowed = f"allowed: {ctx['expected']}"
    else:
        allowed = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return f"unknown setting {field!r}"
    return f"invalid setting {variable}={given!r}: {allowed}"


def load_settings(**overrides: Any) -> LogSettings:
    """Read ``LOG_*`` from the environment; keyword arguments override. Raise SettingsError on a bad value."""
    try:
        return LogSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError("; ".join(_explain_validation_error(e) for e in exc.errors())) from None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per ``LOG_*`` variable that is no setting, naming the closest valid one (a typo such
    as ``LOG_LEVL`` would otherwise be ignored without a word)."""
    known = [ENV_PREFIX + name.upper() for name in LogSettings.model_fields]
    warnings = []
    for variable in sorted(environ):
        if not variable.upper().startswith(ENV_PREFIX) or variable.upper() in known:
            continue
        close = difflib.get_close_matches(variable.upper(), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
        warnings.append(f"unknown setting {variable} is ignored{hint}")
    return warnings
