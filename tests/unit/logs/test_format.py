"""The formatter: one JSON object per line, the original design's fields, and nothing ever raises."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from service.logs.format import JsonFormatter, render

FIELDS = ["@timestamp", "level", "name", "processName", "tracking_id", "loc", "func", "message"]


def make(msg: object = "hello", args: Any = None, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("t.fmt").makeRecord(
        "t.fmt", logging.INFO, "/src/app/handlers.py", 42, msg, args, exc_info, func="handle", extra=extra or None
    )
    if "tracking_id" not in extra:
        record.tracking_id = "abcd-1234"
    return record


def line(record: logging.LogRecord) -> dict[str, Any]:
    data = render(record)
    assert data.endswith(b"\n") and data.count(b"\n") == 1, "exactly one line per record"
    result: dict[str, Any] = orjson.loads(data)
    return result


class TestFields:
    def test_original_fields_in_order(self) -> None:
        """The eight fields of the original design come first, in its order."""
        assert list(line(make()))[:8] == FIELDS

    def test_values(self) -> None:
        """Each field carries what its name says."""
        out = line(make("user %s did %s", (7, "x")))
        assert out["level"] == "INFO"
        assert out["name"] == "t.fmt"
        assert out["processName"] == "MainProcess"
        assert out["tracking_id"] == "abcd-1234"
        assert out["loc"] == "handlers.py:42"
        assert out["func"] == "handle"
        assert out["message"] == "user 7 did x"

    def test_timestamp_is_rfc3339_utc_milliseconds(self) -> None:
        """@timestamp is RFC 3339 in UTC with milliseconds, and matches the record's creation time."""
        record = make()
        stamp = line(record)["@timestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert abs(parsed.timestamp() - record.created) < 0.001
        assert parsed.tzinfo == UTC

    def test_timestamp_cache_crosses_seconds(self) -> None:
        """The per-second prefix cache never serves a stale second."""
        first, second = make(), make()
        second.created = first.created + 1.5
        second.msecs = (second.created - int(second.created)) * 1000
        a, b = line(first)["@timestamp"], line(second)["@timestamp"]
        assert datetime.fromisoformat(b.replace("Z", "+00:00")) > datetime.fromisoformat(a.replace("Z", "+00:00"))

    def test_no_tracking_id_is_null(self) -> None:
        """Outside a request the field is present and null, so jq filters never miss the key."""
        record = make()
        del record.tracking_id  # type: ignore[attr-defined]
        assert line(record)["tracking_id"] is None


class TestContent:
    def test_newlines_stay_inside_the_string(self) -> None:
        """A multi-line message is still one line of output."""
        assert line(make("a\nb\r\nc"))["message"] == "a\nb\r\nc"

    def test_exception_is_one_string_field(self) -> None:
        """exc_info holds the whole formatted traceback as one string."""
        try:
            raise ValueError("bad thing")
        except ValueError:
            out = line(make("failed", exc_info=sys.exc_info()))
        assert out["exc_info"].startswith("Traceback (most recent call last):")
        assert "ValueError: bad thing" in out["exc_info"]

    def test_stack_info(self) -> None:
        """stack_info=True output is kept."""
        record = make()
        record.stack_info = "Stack (most recent call last):\n  File x"
        assert line(record)["stack_info"].startswith("Stack")

    def test_extra_fields_are_added(self) -> None:
        """extra= keys become top-level fields."""
        out = line(make(user_id=7, tags=["a", "b"], nested={"k": 1}))
        assert (out["user_id"], out["tags"], out["nested"]) == (7, ["a", "b"], {"k": 1})

    @pytest.mark.parametrize("key", ["level", "loc", "func", "@timestamp", "kubernetes", "stream", "time", "_p"])
    def test_reserved_keys_are_never_overwritten(self, key: str) -> None:
        """An extra key that collides with ours (or with Fluent Bit's) is kept as extra_<key>."""
        out = line(make(**{key: "spoof"}))
        assert out.get(key) != "spoof"
        assert out[f"extra_{key}"] == "spoof"

    def test_explicit_tracking_id_extra_wins(self) -> None:
        """extra={'tracking_id': ...} binds the record to another request explicitly."""
        assert line(make(tracking_id="explicit-id"))["tracking_id"] == "explicit-id"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


class TestNeverRaises:
    def test_bad_percent_arguments(self) -> None:
        """Wrong % arguments still give a line that says what went wrong."""
        out = line(make("%d items", ("many",)))
        assert "could not be rendered" in out["message"]
        assert "TypeError" in out["message"]
        assert "%d items" in out["message"]

    def test_too_many_arguments(self) -> None:
        out = line(make("no placeholders", (1, 2)))
        assert "could not be rendered" in out["message"]

    def test_object_whose_str_raises(self) -> None:
        """An argument whose __str__ raises does not break logging."""
        out = line(make("value %s", (Unprintable(),)))
        assert "RuntimeError" in out["message"]

    def test_unserializable_extra_uses_str(self) -> None:
        """Values orjson cannot serialize are rendered with str()."""

        class Thing:
            def __str__(self) -> str:
                return "a thing"

        out = line(make(thing=Thing(), when=datetime(2026, 1, 2, tzinfo=UTC), ids={3}))
        assert out["thing"] == "a thing"
        assert out["when"].startswith("2026-01-02")
        assert out["ids"] == [3]

    def test_unserializable_extra_whose_str_raises(self) -> None:
        out = line(make(bad=Unprintable()))
        assert out["bad"].startswith("<unprintable Unprintable")

    def test_huge_int_and_non_string_keys(self) -> None:
        out = line(make(big=2**80, mapping={1: "one"}))
        assert out["big"] == str(2**80)
        assert out["message"] == "hello"

    def test_lone_surrogates_are_escaped(self) -> None:
        """JSON (UTF-8) cannot carry a lone surrogate: it is written as visible text; other values keep
        their JSON types."""
        name = b"\xff.log".decode("utf-8", "surrogateescape")
        out = line(make("rotating %s", (name,), file=name, count=3, ratio=0.5, ok=True))
        assert out["message"] == "rotating \\udcff.log"
        assert out["file"] == "\\udcff.log"
        assert (out["count"], out["ratio"], out["ok"]) == (3, 0.5, True)

    def test_non_string_message(self) -> None:
        assert line(make({"a": 1}))["message"] == "{'a': 1}"

    def test_stdlib_formatter_adapter(self) -> None:
        """JsonFormatter plugs into any stdlib handler."""
        text = JsonFormatter().format(make("x"))
        assert "\n" not in text and orjson.loads(text)["message"] == "x"
