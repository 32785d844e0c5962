"""FastLogger builds the same LogRecords stdlib would, for every way of calling a logger."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.logs import fastlog

TIMING = {"created", "msecs", "relativeCreated"}


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def keep() -> Iterator[Keep]:
    handler = Keep()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    yield handler
    fastlog.uninstall()
    root.handlers, root.level = saved[0], saved[1]


def both(keep: Keep, call: Callable[[], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``call`` with stdlib's classes, then with FastLogger; return both records' attributes."""
    fastlog.uninstall()
    call()
    fastlog.install()
    assert fastlog.installed()
    call()
    std, fast = keep.records[-2], keep.records[-1]
    assert type(std) is type(fast) is logging.LogRecord
    return _attrs(std), _attrs(fast)


def _attrs(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in TIMING}


log = logging.getLogger("t.fast")


def plain() -> None:
    log.info("user %s did %s", 7, "x")


def helper_with_stacklevel() -> None:
    log.warning("from helper", stacklevel=2)


def call_helper() -> None:
    helper_with_stacklevel()


CALLS: dict[str, Callable[[], None]] = {
    "plain": plain,
    "debug": lambda: log.debug("d"),
    "warning": lambda: log.warning("w %d", 1),
    "error": lambda: log.error("e"),
    "critical": lambda: log.critical("c"),
    "fatal": lambda: log.fatal("f"),
    "log-level": lambda: log.log(25, "custom %s", "level"),
    "mapping-arg": lambda: log.info("%(a)s", {"a": 1}),
    "extra": lambda: log.info("x", extra={"user": 1}),
    "stacklevel": call_helper,
    "module-function": lambda: logging.info("via logging.info"),
    "root-logger": lambda: logging.getLogger().info("root"),
    "adapter": lambda: logging.LoggerAdapter(log, {"k": "v"}).info("adapted %s", 1),
    "non-string-msg": lambda: log.info({"a": 1}),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_same_record_as_stdlib(keep: Keep, name: str) -> None:
    std, fast = both(keep, CALLS[name])
    assert fast.keys() == std.keys()
    assert fast["lineno"] != 0 and fast["filename"] == "test_fastlog.py"
    # The two calls run the same code line, so every attribute is the same.
    assert fast == std


def test_exceptions_and_stack_info(keep: Keep) -> None:
    def call() -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        log.info("with stack", stack_info=True)

    fastlog.uninstall()
    call()
    fastlog.install()
    call()
    std_exc, std_stack, fast_exc, fast_stack = keep.records[-4:]
    assert fast_exc.exc_info is not None and fast_exc.exc_info[0] is ValueError
    assert (fast_exc.funcName, fast_exc.lineno) == (std_exc.funcName, std_exc.lineno)
    assert fast_stack.stack_info is not None and std_stack.stack_info is not None
    assert fast_stack.stack_info.splitlines()[-1] == std_stack.stack_info.splitlines()[-1]


def test_disabled_levels_and_loggers(keep: Keep) -> None:
    fastlog.install()
    quiet = logging.getLogger("t.fast.quiet")
    quiet.setLevel(logging.ERROR)
    quiet.info("hidden")
    quiet.disabled = True
    quiet.error("hidden too")
    logging.disable(logging.CRITICAL)
    try:
        log.critical("disabled globally")
    finally:
        logging.disable(logging.NOTSET)
    assert keep.records == []


def test_custom_record_factory_is_respected(keep: Keep) -> None:
    class Custom(logging.LogRecord):
        pass

    fastlog.install()
    old = logging.getLogRecordFactory()
    logging.setLogRecordFactory(Custom)
    try:
        log.info("x")
    finally:
        logging.setLogRecordFactory(old)
    assert type(keep.records[0]) is Custom
    assert keep.records[0].funcName == "test_custom_record_factory_is_respected"


def test_user_logger_classes_are_left_alone(keep: Keep) -> None:
    class Mine(logging.Logger):
        pass

    mine = Mine("t.mine")
    logging.Logger.manager.loggerDict["t.mine"] = mine
    try:
        fastlog.install()
        assert type(mine) is Mine
        assert type(logging.getLogger("t.fast.new")) is fastlog.FastLogger
        fastlog.uninstall()
        assert type(logging.getLogger("t.fast.new")) is logging.Logger
        assert type(logging.getLogger()) is logging.RootLogger
    finally:
        del logging.Logger.manager.loggerDict["t.mine"]


def test_bad_level_type(keep: Keep) -> None:
    fastlog.install()
    with pytest.raises(TypeError, match="level must be an integer"):
        log.log("INFO", "x")  # type: ignore[arg-type]


def test_process_name_in_spawned_child(tmp_path: Any) -> None:
    """In a multiprocessing child the cached process name is the child's."""
    import subprocess

    code = (
        "import logging, multiprocessing as mp\n"
        "from service.logs import fastlog\n"
        "def child(q):\n"
        "    fastlog.install()\n"
        "    r = []\n"
        "    h = logging.Handler(); h.emit = r.append; logging.getLogger().addHandler(h)\n"
        "    logging.getLogger('c').warning('hi')\n"
        "    q.put(r[0].processName)\n"
        "if __name__ == '__main__':\n"
        "    q = mp.get_context('spawn').Queue()\n"
        "    p = mp.get_context('spawn').Process(target=child, args=(q,)); p.start()\n"
        "    print(q.get(timeout=60)); p.join()\n"
    )
    script = tmp_path / "child.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "SpawnProcess-1", out.stderr


@pytest.mark.parametrize("key", ["message", "asctime", "levelname", "lineno"])
def test_extra_may_not_overwrite_record_attributes(keep: Keep, key: str) -> None:
    """Like stdlib: an extra key that would overwrite a record attribute raises KeyError."""
    fastlog.install()
    with pytest.raises(KeyError, match="Attempt to overwrite"):
        log.info("x", extra={key: 1})


@pytest.mark.parametrize("key", ["message", "asctime", "levelname", "lineno"])
def test_extra_may_not_overwrite_record_attributes_on_the_direct_route(key: str) -> None:
    """The direct route (no record built) refuses the same keys as stdlib's makeRecord."""
    import io

    from service.logs.pipeline import current_pipeline, setup_logging, shutdown_logging

    stream = io.BytesIO()
    setup_logging(stream=stream)
    try:
        with pytest.raises(KeyError, match="Attempt to overwrite"):
            log.info("x", extra={key: 1})
        log.info("fine", extra={"user": 1})
        pipeline = current_pipeline()
        assert pipeline is not None and pipeline.flush(10)
    finally:
        shutdown_logging()
    assert [line.count(b'"user":1') for line in stream.getvalue().splitlines()] == [1]


def test_extra_with_other_keywords(keep: Keep) -> None:
    std, fast = both(keep, lambda: log.info("x %s", 1, extra={"user": 1}, stacklevel=1))
    assert fast == std and fast["user"] == 1


class TestDirectRoute:
    """When the bundle's handler is a record's only destination, FastLogger renders the line directly."""

    @pytest.fixture
    def out(self) -> Iterator[Any]:
        import io

        from service.logs.pipeline import setup_logging, shutdown_logging

        stream = io.BytesIO()
        setup_logging(stream=stream)
        yield stream
        shutdown_logging()

    @staticmethod
    def lines(out: Any) -> list[dict[str, Any]]:
        import orjson

        from service.logs.pipeline import current_pipeline

        pipeline = current_pipeline()
        assert pipeline is not None and pipeline.flush(10)
        return [orjson.loads(x) for x in out.getvalue().splitlines()]

    def test_same_line_as_through_a_record(self, out: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Direct (no filter) and record route (a pass-through filter) give identical lines."""
        from service.context import bind_tracking_id
        from service.logs.pipeline import QueueLogHandler

        calls: list[logging.LogRecord] = []
        original = QueueLogHandler.handle

        def spy(self: QueueLogHandler, record: logging.LogRecord) -> bool:
            calls.append(record)
            return original(self, record)

        monkeypatch.setattr(QueueLogHandler, "handle", spy)
        handler = next(h for h in logging.getLogger().handlers if isinstance(h, QueueLogHandler))

        def emit() -> None:
            log.info("user %s did %s", 7, "x")
            log.warning("%(a)s", {"a": "mapping"})
            log.error({"not": "a string"})
            log.info("bad %d", "arg")
            log.info("with extras", extra={"user": 1, "level": "shadowed", "tracking_id": "explicit-01"})
            log.info("uvicorn's", extra={"color_message": "dropped", "status": 200})

        with bind_tracking_id("direct-0001"):
            emit()
            assert calls == [], "the direct route was taken: no record reached the handler"
            handler.addFilter(lambda record: True)
            emit()
            assert len(calls) == 6, "a filter forces the record route"
        direct, via_record = self.lines(out)[:6], self.lines(out)[6:]
        assert direct[4]["extra_level"] == "shadowed" and direct[4]["tracking_id"] == "explicit-01"
        assert direct[5]["status"] == 200 and "color_message" not in direct[5]
        for a, b in zip(direct, via_record, strict=True):
            a.pop("@timestamp"), b.pop("@timestamp")  # made a few microseconds apart
            assert a == b

    def test_a_line_shows_its_values_as_they_were_at_the_call(self, out: Any) -> None:
        """The listener renders direct lines later: the message is formatted at the call, and a line with
        extra= (whose values may be mutable) is rendered at the call."""
        items = [1]
        state = {"step": "before"}
        log.info("items %s", items)
        log.info("state", extra={"state": state})
        items.append(2)
        state["step"] = "after"
        first, second = self.lines(out)
        assert first["message"] == "items [1]"
        assert second["state"] == {"step": "before"}

    def test_a_lone_surrogate_never_raises_from_the_call(self, out: Any) -> None:
        """A file name decoded with surrogateescape (no UTF-8, so no JSON) is logged, escaped, not raised."""
        name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
        log.info("opened %s", name)
        log.info("opened", extra={"file": name, "size": 3})
        first, second = self.lines(out)
        assert first["message"] == "opened caf\\udce9.txt"
        assert second["file"] == "caf\\udce9.txt" and second["size"] == 3

    def test_other_handlers_or_filters_get_real_records(self, out: Any) -> None:
        """Another handler anywhere on the chain, or a logger filter, sees a real LogRecord."""
        keep = Keep()
        child = logging.getLogger("t.fast.child")
        child.addHandler(keep)
        try:
            child.info("seen %s", "by keep")
            child.removeHandler(keep)
            seen: list[logging.LogRecord] = []

            def spy(record: logging.LogRecord) -> bool:
                seen.append(record)
                return True

            child.addFilter(spy)
            child.info("seen by filter")
        finally:
            child.handlers.clear()
            child.filters.clear()
        assert [r.getMessage() for r in keep.records] == ["seen by keep"]
        assert [r.getMessage() for r in seen] == ["seen by filter"]
        assert [r["message"] for r in self.lines(out)] == ["seen by keep", "seen by filter"]

    def test_levels_and_disabled_are_respected(self, out: Any) -> None:
        from service.logs.pipeline import QueueLogHandler

        handler = next(h for h in logging.getLogger().handlers if isinstance(h, QueueLogHandler))
        handler.setLevel(logging.WARNING)
        log.info("below the handler's level")
        handler.setLevel(logging.NOTSET)
        quiet = logging.getLogger("t.fast.off")
        quiet.disabled = True
        quiet.warning("disabled logger")
        quiet.disabled = False
        nonprop = logging.getLogger("t.fast.np")
        nonprop.propagate = False
        nonprop.warning("goes nowhere: no handlers, not propagated")
        nonprop.propagate = True
        log.warning("shown")
        assert [r["message"] for r in self.lines(out)] == ["shown"]


@pytest.mark.skipif(sys.platform == "win32", reason="fork start method")
def test_process_name_in_forked_child(keep: Keep) -> None:
    """A multiprocessing fork child is named after the fork; its records carry that name."""
    import multiprocessing as mp

    fastlog.install()
    queue: Any = mp.get_context("fork").Queue()

    def child() -> None:
        handler = Keep()
        logging.getLogger().handlers = [handler]
        logging.getLogger("c").warning("hi")
        queue.put((handler.records[0].processName, mp.current_process().name))

    process = mp.get_context("fork").Process(target=child)
    process.start()
    logged, actual = queue.get(timeout=60)
    process.join(30)
    assert logged == actual and actual.startswith("ForkProcess-")


def test_installs_on_this_python(keep: Keep) -> None:
    """The fast path is not switched off on any supported Python (3.12 added taskName, 3.13 moved the lock)."""
    assert fastlog.install() and fastlog.installed()
    fastlog.uninstall()
    assert type(logging.getLogger()) is logging.RootLogger


def in_a_named_task() -> None:
    import asyncio

    async def main() -> None:
        await asyncio.create_task(asyncio.to_thread(log.info, "from a thread"), name="worker-7")
        await asyncio.create_task(_log_async(), name="handler-task")

    asyncio.run(main())


async def _log_async() -> None:
    log.info("from a task")


def test_same_records_inside_asyncio_tasks(keep: Keep) -> None:
    """3.12+ records carry the running task's name (taskName), None off the loop: FastLogger fills it as stdlib."""
    fastlog.uninstall()
    in_a_named_task()
    fastlog.install()
    in_a_named_task()
    ours = [_attrs(r) for r in keep.records if r.name == log.name]  # not asyncio's own debug lines
    for attrs in ours:
        attrs.pop("thread")  # each asyncio.run has its own thread pool
    std_thread, std_task, fast_thread, fast_task = ours
    assert fast_thread == std_thread and fast_task == std_task
    if sys.version_info >= (3, 12):
        assert (fast_thread["taskName"], fast_task["taskName"]) == (None, "handler-task")


def test_relative_created_matches_stdlib(keep: Keep) -> None:
    """relativeCreated is milliseconds since logging was imported (3.13 keeps that start in nanoseconds)."""
    both(keep, plain)
    std, fast = keep.records[-2:]
    assert abs(fast.relativeCreated - std.relativeCreated) < 1000


def test_says_once_on_stderr_when_it_turns_itself_off(
    keep: Keep, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A Python whose LogRecord differs: install() declines and says so in one JSON line on stderr, once."""
    import orjson

    monkeypatch.setattr(fastlog, "_EXPECTED_KEYS", ("name",))
    monkeypatch.setattr(fastlog, "_said_off", False)
    assert not fastlog.install() and not fastlog.install()
    assert type(logging.getLogger()) is logging.RootLogger
    [line] = capfd.readouterr().err.splitlines()
    event = orjson.loads(line)
    assert event["level"] == "WARNING" and "fast records off" in event["message"]


def test_replaced_logger_methods_see_every_record(keep: Keep, monkeypatch: pytest.MonkeyPatch) -> None:
    """A patched Logger.callHandlers (Sentry's way in) or makeRecord gets every record, fast records on."""
    from service.logs.pipeline import setup_logging, shutdown_logging

    seen: list[str] = []
    original_call, original_make = logging.Logger.callHandlers, logging.Logger.makeRecord

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        seen.append("call:" + record.getMessage())
        original_call(self, record)

    def make_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original_make(self, *args, **kwargs)
        seen.append("make:" + record.getMessage())
        return record

    import io

    setup_logging(stream=io.BytesIO())
    try:
        logging.getLogger().handlers.remove(keep)
        monkeypatch.setattr(logging.Logger, "callHandlers", call_handlers)
        log.info("one")
        monkeypatch.setattr(logging.Logger, "callHandlers", original_call)
        monkeypatch.setattr(logging.Logger, "makeRecord", make_record)
        log.info("two")
    finally:
        shutdown_logging()
    assert seen == ["call:one", "make:two"]
