"""sentry-sdk's LoggingIntegration (it patches ``Logger.callHandlers``) gets its events and breadcrumbs
with fast records on, whichever of the two is set up first. Each case runs in a fresh interpreter: the
patch is process-wide and cannot be undone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

SCRIPT = """
import io, logging, sys
import orjson, sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.transport import Transport
from service.logs import fastlog
from service.logs.pipeline import current_pipeline, setup_logging

events = []

class Recording(Transport):
    def capture_envelope(self, envelope):
        events.extend(item.payload.json for item in envelope.items if item.type == "event")

def sentry():
    sentry_sdk.init(
        dsn="https://key@sentry.invalid/1", transport=Recording, default_integrations=False,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    )

out = io.BytesIO()
if sys.argv[1] == "sentry-first":
    sentry(); setup_logging(stream=out)
else:
    setup_logging(stream=out); sentry()
log = logging.getLogger("shop")
log.info("cart viewed")
log.warning("stock low")
log.error("payment failed")
current_pipeline().flush(10)
sentry_sdk.flush(5)
sys.stdout.write(orjson.dumps({"fast": fastlog.installed(), "events": events,
                               "lines": out.getvalue().decode().splitlines()}).decode())
"""


@pytest.mark.parametrize("order", ["sentry-first", "logging-first"])
def test_error_event_and_breadcrumbs_with_fast_records(order: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, order], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    got: dict[str, Any] = orjson.loads(done.stdout)
    assert got["fast"], "fast records are on"
    [event] = got["events"]
    assert event["logentry"]["message"] == "payment failed" and event["level"] == "error"
    crumbs = [(c["message"], c["level"]) for c in event["breadcrumbs"]["values"] if c.get("category") == "shop"]
    assert crumbs == [("cart viewed", "info"), ("stock low", "warning")]
    lines = [orjson.loads(line) for line in got["lines"]]
    assert [r["message"] for r in lines] == ["cart viewed", "stock low", "payment failed"], "our JSON lines too"
