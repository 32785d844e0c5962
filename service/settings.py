"""Settings from the environment (prefix ``LOG_``), validated once, with errors that name the variable."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ENV_PREFIX", "LogSettings", "SettingsError", "load_settings"]

ENV_PREFIX = "LOG_"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")

Level = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
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
    health_paths: CommaList = ["/healthz", "/readyz"]
    access_health: bool = False
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

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

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


def _describe(error: Mapping[str, Any]) -> str:
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
        raise SettingsError("; ".join(_describe(e) for e in exc.errors())) from None
