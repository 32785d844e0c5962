"""Each network output file, selected beside sidecar.yaml and configured only through its FLB_* variables,
delivers the app's records to a stand-in backend in the shape that backend expects."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fluent_bit.support import (
    FluentBit,
    ForwardReceiver,
    RecordingHTTPServer,
    arrived_enough,
    assert_exactly_once,
    poll,
    requires_fluent_bit,
    stage_config,
    top_includes,
)
from tests.support import ServiceProcess, parse_json_lines

pytestmark = requires_fluent_bit

BULK_OK = b'{"took":1,"errors":false,"items":[]}'


@pytest.fixture(scope="module")
def app_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """One real run of the service: a request, a traceback."""
    tmp_path = tmp_path_factory.mktemp("service")
    with ServiceProcess(tmp_path) as service:
        for path in ("/demo/dependency", "/demo/error"):
            httpx.get(service.base_url + path, timeout=10)
        service.stop()
    return service.stdout_bytes().splitlines(keepends=True)


@pytest.fixture
def sidecar(tmp_path: Path, app_lines: list[bytes]) -> Iterator[tuple[Path, dict[str, str]]]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "app.log").write_bytes(b"".join(app_lines))
    state = tmp_path / "state"
    state.mkdir()
    yield log_dir, {"FLB_APP_LOGS": f"{log_dir}/*.log", "FLB_STATE_DIR": str(state)}


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys in a document: {keys}"
    return dict(pairs)


def ms(stamp: str) -> int:
    return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 it signed (openssl CLI): (ca.crt, server.crt, server.key)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(crt),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca_crt, crt, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_es_output_trusts_a_private_ca_and_sends_an_api_key(
    tmp_path: Path, sidecar: tuple[Path, dict[str, str]], app_lines: list[bytes]
) -> None:
    """TLS with verification on against a server whose certificate a private CA signed: delivered with
    FLB_ES_TLS_CA_FILE, refused without it; FLB_ES_API_KEY is sent as `Authorization: ApiKey ...`."""
    sent = parse_json_lines(b"".join(app_lines))
    ca, crt, key = make_ca_and_server_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    top = stage_config(tmp_path / "etc", top_includes("sidecar", ["es"]))
    base = {
        "FLB_ES_HOST": "127.0.0.1",
        "FLB_ES_TLS": "on",
        "FLB_ES_TLS_VERIFY": "on",
        "FLB_ES_API_KEY": "a2V5OnNlY3JldA==",
    }
    with RecordingHTTPServer(body=BULK_OK, tls=context) as backend:
        env = sidecar[1] | base | {"FLB_ES_PORT": str(backend.port)}
        with FluentBit(top, tmp_path, env) as fluent_bit:  # system CAs only: the handshake fails
            time.sleep(4)
            assert backend.snapshot() == []
            assert "certificate verify failed" in fluent_bit.stderr_tail(20_000).lower()
        (tmp_path / "state2").mkdir()
        env |= {"FLB_ES_TLS_CA_FILE": str(ca), "FLB_STATE_DIR": str(tmp_path / "state2")}
        with FluentBit(top, tmp_path, env) as fluent_bit:
            requests = poll(
                lambda: backend.snapshot() or None,
                timeout=60,
                what=lambda: f"a bulk request\n{fluent_bit.stderr_tail()}",
            )
    path, headers, body = requests[0]
    assert path == "/_bulk"
    assert headers["Authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert len(body.decode().splitlines()) >= 2 and len(sent) > 0


@pytest.mark.parametrize("output", ["es", "opensearch"])
def test_search_outputs_bulk_index_daily_indices_with_one_timestamp(
    tmp_path: Path, sidecar: tuple[Path, dict[str, str]], app_lines: list[bytes], output: str
) -> None:
    """Bulk requests to <prefix>-YYYY.MM.DD (the day of the app's @timestamp); each document holds the app's
    keys once, @timestamp in the app's format, basic auth from the environment."""
    sent = parse_json_lines(b"".join(app_lines))
    prefix = "FLB_ES" if output == "es" else "FLB_OS"
    top = stage_config(tmp_path / "etc", top_includes("sidecar", [output]))
    with RecordingHTTPServer(body=BULK_OK) as backend:
        env = sidecar[1] | {
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(backend.port),
            f"{prefix}_USER": "shipper",
            f"{prefix}_PASSWORD": "s3cret",
            f"{prefix}_INDEX_PREFIX": "tracking",
        }

        def documents() -> list[tuple[dict[str, Any], dict[str, Any], dict[str, str]]]:
            found = []
            for path, headers, body in backend.snapshot():
                assert path == "/_bulk", path
                lines = body.decode().splitlines()
                for action, source in zip(lines[::2], lines[1::2], strict=True):
                    found.append((json.loads(action), json.loads(source, object_pairs_hook=no_duplicate_keys), headers))
            return found

        with FluentBit(top, tmp_path, env) as fluent_bit:
            docs = poll(
                arrived_enough(documents, len(sent)),
                timeout=60,
                what=lambda: f"bulk documents\n{fluent_bit.stderr_tail()}",
            )

    assert_exactly_once(sent, [doc for _, doc, _ in docs], "sidecar")
    for action, doc, headers in docs:
        (meta,) = action.values()
        day = datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00")).astimezone(UTC)
        assert meta["_index"] == f"tracking-{day:%Y.%m.%d}"
        assert "_type" not in meta
        assert headers["Authorization"] == "Basic " + base64.b64encode(b"shipper:s3cret").decode()


def test_loki_output_pushes_json_lines_at_the_app_timestamp(
    tmp_path: Path, sidecar: tuple[Path, dict[str, str]], app_lines: list[bytes]
) -> None:
    """Loki streams labelled job and level; each entry's timestamp is the app's @timestamp and its line is the
    record as JSON (level moved to the label); the tenant header from the environment."""
    sent = parse_json_lines(b"".join(app_lines))
    top = stage_config(tmp_path / "etc", top_includes("sidecar", ["loki"]))
    with RecordingHTTPServer(status=204) as backend:
        env = sidecar[1] | {
            "FLB_LOKI_HOST": "127.0.0.1",
            "FLB_LOKI_PORT": str(backend.port),
            "FLB_LOKI_TENANT_ID": "team-a",
        }

        def entries() -> list[tuple[dict[str, str], int, dict[str, Any], dict[str, str]]]:
            found = []
            for path, headers, body in backend.snapshot():
                assert path == "/loki/api/v1/push", path
                for stream in json.loads(body)["streams"]:
                    for stamp, line in stream["values"]:
                        found.append((stream["stream"], int(stamp), json.loads(line), headers))
            return found

        with FluentBit(top, tmp_path, env) as fluent_bit:
            got = poll(
                arrived_enough(entries, len(sent)), timeout=60, what=lambda: f"Loki entries\n{fluent_bit.stderr_tail()}"
            )

    assert_exactly_once(sent, [line | {"level": labels["level"]} for labels, _, line, _ in got], "sidecar")
    for labels, stamp, line, headers in got:
        assert labels["job"] == "fastapi-tracking"
        assert "level" not in line
        assert stamp // 1_000_000 == ms(line["@timestamp"])
        assert headers["X-Scope-OrgID"] == "team-a"
        assert "Authorization" not in headers


def test_forward_output_sends_records_at_the_app_timestamp(
    tmp_path: Path, sidecar: tuple[Path, dict[str, str]], app_lines: list[bytes]
) -> None:
    sent = parse_json_lines(b"".join(app_lines))
    top = stage_config(tmp_path / "etc", top_includes("sidecar", ["forward"]))
    with ForwardReceiver() as receiver:
        env = sidecar[1] | {"FLB_FORWARD_HOST": "127.0.0.1", "FLB_FORWARD_PORT": str(receiver.port)}
        with FluentBit(top, tmp_path, env) as fluent_bit:
            events = poll(
                arrived_enough(receiver.snapshot, len(sent)),
                timeout=60,
                what=lambda: f"events\n{fluent_bit.stderr_tail()}",
            )
    assert_exactly_once(sent, [record for _, _, record in events], "sidecar")
    for tag, stamp, record in events:
        assert tag == "app.app.log"
        assert round(stamp * 1000) == ms(record["@timestamp"])
