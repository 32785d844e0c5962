"""Per-release retention where the sidecar's logs land: the file output's CronJob really deletes old files; the
opt-in Elasticsearch / OpenSearch hook Jobs really PUT a policy with the configured age, with their own
credentials, and never fail a release (run here against a recording HTTP server)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chart.combos import COMBOS
from tests.chart.helm import FULLNAME, container, env, needs_helm, objects, one, pod_spec, render

pytestmark = needs_helm

Obj = dict[str, Any]
DAY = 86_400
SIDECAR = {"collection": {"mode": "sidecar"}}


def cronjob(values: dict[str, Any]) -> Obj:
    return one(render(values), "CronJob")


@pytest.mark.parametrize("combo", list(COMBOS))
def test_cronjob_exactly_when_the_file_output_is_on(combo: str) -> None:
    values = COMBOS[combo]
    sidecar = values.get("collection", {}).get("mode") == "sidecar"
    wanted = sidecar and "file" in values.get("fluentBit", {}).get("outputs", ["stdout"])
    assert len(objects(render(values), "CronJob")) == (1 if wanted else 0)


def test_cronjob_deletes_after_the_configured_days_on_the_output_claim() -> None:
    docs = render({**SIDECAR, "fluentBit": {"outputs": ["file"]}, "retention": {"days": 3}})
    job = one(docs, "CronJob")
    assert job["spec"]["schedule"] == "17 * * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    c = container(job, "delete-old-files")
    assert env(c) == {"LOG_ROOT": "/data", "RETENTION_DAYS": "3"}
    claim = one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    assert claim == f"{FULLNAME}-logs"
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim
    # ... the same claim the sidecars write to, which every pod on any node can mount
    app_volumes = {v["name"]: v for v in pod_spec(one(docs, "Deployment"))["volumes"]}
    assert app_volumes["fluent-bit-output"]["persistentVolumeClaim"]["claimName"] == claim
    assert one(docs, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]
    # non-root, yet allowed to delete Fluent Bit's files: the kubelet gives the claim to this group
    assert pod_spec(job)["securityContext"]["fsGroup"] == c["securityContext"]["runAsGroup"]


def test_cronjob_uses_an_existing_claim_and_can_be_disabled() -> None:
    values = {**SIDECAR, "fluentBit": {"outputs": ["file"], "file": {"persistence": {"existingClaim": "archive"}}}}
    docs = render(values)
    assert not objects(docs, "PersistentVolumeClaim")
    assert pod_spec(one(docs, "CronJob"))["volumes"][0]["persistentVolumeClaim"]["claimName"] == "archive"
    disabled = render({**SIDECAR, "fluentBit": {"outputs": ["file"]}, "retention": {"fileCleanup": {"enabled": False}}})
    assert not objects(disabled, "CronJob")


def _age(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def _tool_path(tools: str, tmp_path: Path) -> str:
    """PATH for the script: this machine's tools, or busybox's (the CronJob's image) when installed."""
    if tools == "system":
        return os.environ["PATH"]
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not on PATH (the system sh and find run the script instead)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for applet in ("sh", "find", "rm", "rmdir"):
        (bin_dir / applet).symlink_to(busybox)
    return str(bin_dir)


@pytest.mark.parametrize("tools", ["system", "busybox"])
def test_cronjob_script_really_deletes_files_older_than_the_days(tools: str, tmp_path: Path) -> None:
    """Run the CronJob's own script (as rendered) with sh and find on a scratch tree."""
    path = _tool_path(tools, tmp_path)
    c = container(
        cronjob({**SIDECAR, "fluentBit": {"outputs": ["file"]}, "retention": {"days": 7}}), "delete-old-files"
    )
    assert c["command"] == ["/bin/sh", "-c"]
    (script,) = c["args"]
    root = tmp_path / "data"
    (root / "node-a").mkdir(parents=True)
    (root / "stale-empty").mkdir()
    (root / "lost+found").mkdir()
    files = {
        "old.log": 8 * DAY,
        "node-a/old.log": 7 * DAY + 3600,
        "node-a/recent.log": 7 * DAY - 3600,
        "today.log": 60,
        "lost+found/#1234": 30 * DAY,
    }
    for name, age in files.items():
        (root / name).write_text("{}\n")
        _age(root / name, age)
    _age(root / "stale-empty", 9 * DAY)
    _age(root / "node-a", 60)
    _age(root / "lost+found", 30 * DAY)

    done = subprocess.run(
        ["sh", "-c", script],
        env={"PATH": path, **env(c), "LOG_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == ["lost+found", "lost+found/#1234", "node-a", "node-a/recent.log", "today.log"]
    assert "retention: done" in done.stdout


# -- Elasticsearch / OpenSearch --------------------------------------------------------------------
class Recorder(BaseHTTPRequestHandler):
    """A stand-in for the backend: records every request; knows an existing ISM policy when told to."""

    requests: list[tuple[str, str, dict[str, str], Any]] = []
    existing_policy: dict[str, Any] | None = None
    fail_puts = False

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        type(self).requests.append((self.command, self.path, dict(self.headers), body))
        status: int = 200
        payload: object = {"acknowledged": True}
        if self.command == "PUT" and self.fail_puts:
            status, payload = 403, {"error": "security_exception"}
        elif self.command == "GET" and self.path.startswith("/_plugins/_ism/policies/"):
            if self.existing_policy:
                payload = self.existing_policy
            else:
                status, payload = 404, {"status": 404}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[ThreadingHTTPServer]:
    Recorder.requests = []
    Recorder.existing_policy = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def policy_job(backend_name: str, days: int = 3, auth: dict[str, Any] | None = None, **extra: Any) -> Obj:
    values: dict[str, Any] = {
        **SIDECAR,
        "fluentBit": {"outputs": [backend_name], **extra},
        "retention": {"days": days, "indexPolicy": {"enabled": True, "auth": auth or {}}},
    }
    (job,) = [
        j for j in objects(render(values), "Job") if j["metadata"]["name"].startswith(f"{FULLNAME}-{backend_name}-")
    ]
    return job


def run_policy_script(job: Obj, port: int, **overrides: str) -> subprocess.CompletedProcess[str]:
    """Run the Job's own script (as rendered) with this machine's sh and curl against 127.0.0.1:port."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not on PATH: the hook script needs it")
    c = container(job, "put-index-policy")
    assert c["command"] == ["/bin/sh", "-c"]
    variables = {k: v for k, v in env(c).items() if isinstance(v, str)}
    variables |= {"HOST": "127.0.0.1", "PORT": str(port), "WAIT_SECONDS": "5", **overrides}
    return subprocess.run(
        ["sh", "-c", c["args"][0]],
        env={"PATH": os.environ["PATH"], **variables},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_hook(job: Obj, server: ThreadingHTTPServer, **overrides: str) -> list[tuple[str, str, dict[str, str], Any]]:
    """The requests the hook script made to the recorder (besides its reachability check)."""
    done = run_policy_script(job, server.server_address[1], **overrides)
    assert done.returncode == 0, done.stdout + done.stderr
    return [r for r in Recorder.requests if r[1] != "/"]


POLICY = f"{FULLNAME}-retention"  # indexPrefix defaults to the release's fullname: one policy per release
PATTERN = f"{FULLNAME}-*"


def test_index_policy_jobs_are_opt_in_and_cannot_fail_a_release() -> None:
    for name in ("es", "opensearch"):
        job = policy_job(name)
        # an ordinary Job, not a hook: Helm does not wait for it, so nothing it meets fails a release
        assert "helm.sh/hook" not in job["metadata"].get("annotations", {})
        assert job["spec"]["backoffLimit"] == 0
        variables = env(container(job, "put-index-policy"))
        assert variables["RETENTION_DAYS"] == "3"
        # the deadline is longer than the script can run, so the Job ends by the script's exit 0
        assert job["spec"]["activeDeadlineSeconds"] > int(variables["WAIT_SECONDS"]) + 3 * 30
    sidecar_es = {**SIDECAR, "fluentBit": {"outputs": ["es"]}}
    assert not objects(render(sidecar_es), "Job")  # opt-in
    enabled = {"retention": {"indexPolicy": {"enabled": True}}}
    assert not objects(render({**SIDECAR, "fluentBit": {"outputs": ["loki", "forward", "stdout"]}, **enabled}), "Job")
    assert not objects(render({"fluentBit": {"outputs": ["es"]}, **enabled}), "Job")  # external mode ships nothing


def test_a_changed_policy_is_a_new_job_and_an_unchanged_one_is_kept() -> None:
    """A Job's pod template is immutable: the name carries a hash of what it applies."""
    first = policy_job("es", days=3)["metadata"]["name"]
    assert policy_job("es", days=3)["metadata"]["name"] == first
    assert policy_job("es", days=4)["metadata"]["name"] != first
    assert policy_job("es", days=3, auth={"existingSecret": "admin"})["metadata"]["name"] != first
    assert re.fullmatch(rf"{FULLNAME}-es-retention-[0-9a-f]{{6}}", first)


def test_two_releases_get_two_policies() -> None:
    values = {**SIDECAR, "fluentBit": {"outputs": ["es"]}, "retention": {"indexPolicy": {"enabled": True}}}
    prefixes = {
        release: env(container(one(render(values, release=release), "Job"), "put-index-policy"))["INDEX_PREFIX"]
        for release in ("shop", "shop-canary")
    }
    assert prefixes == {"shop": "shop-tracking-service", "shop-canary": "shop-canary-tracking-service"}


def test_elasticsearch_ilm_policy_deletes_after_the_days(backend: ThreadingHTTPServer) -> None:
    requests = run_hook(policy_job("es", days=3), backend)
    calls = {(method, path): body for method, path, _, body in requests}
    policy = calls["PUT", f"/_ilm/policy/{POLICY}"]
    assert policy["policy"]["phases"] == {"delete": {"min_age": "3d", "actions": {"delete": {}}}}
    template = calls["PUT", f"/_index_template/{POLICY}"]
    assert template["index_patterns"] == [PATTERN]
    assert template["template"]["settings"] == {"index.lifecycle.name": POLICY}
    existing = calls["PUT", f"/{PATTERN}/_settings?allow_no_indices=true"]
    assert existing == {"index.lifecycle.name": POLICY}


def test_the_hook_is_idempotent(backend: ThreadingHTTPServer) -> None:
    """Run twice, it sends the same requests: PUTs of the same documents."""
    job = policy_job("es", days=5)
    first = [(m, p, b) for m, p, _, b in run_hook(job, backend)]
    Recorder.requests = []
    second = [(m, p, b) for m, p, _, b in run_hook(job, backend)]
    assert first == second and first


def test_opensearch_ism_policy_deletes_after_the_days(backend: ThreadingHTTPServer) -> None:
    requests = run_hook(policy_job("opensearch", days=14), backend, TLS="off")
    calls = {(method, path): body for method, path, _, body in requests}
    policy = calls["PUT", f"/_plugins/_ism/policies/{POLICY}"]["policy"]
    hot, delete = policy["states"]
    assert hot["transitions"] == [{"state_name": "delete", "conditions": {"min_index_age": "14d"}}]
    assert delete["actions"] == [{"delete": {}}]
    assert policy["ism_template"] == [{"index_patterns": [PATTERN], "priority": 100}]
    assert calls["POST", f"/_plugins/_ism/add/{PATTERN}"] == {"policy_id": POLICY}


def test_opensearch_policy_update_uses_the_sequence_number(backend: ThreadingHTTPServer) -> None:
    Recorder.existing_policy = {"_id": POLICY, "_seq_no": 12, "_primary_term": 3, "policy": {}}
    requests = run_hook(policy_job("opensearch"), backend, TLS="off")
    puts = [path for method, path, _, _ in requests if method == "PUT"]
    assert puts == [f"/_plugins/_ism/policies/{POLICY}?if_seq_no=12&if_primary_term=3"]


def test_hook_uses_its_own_credentials_not_the_writers(backend: ThreadingHTTPServer) -> None:
    job = policy_job("es", auth={"existingSecret": "es-admin"}, es={"auth": {"existingSecret": "es-writer"}})
    variables = env(container(job, "put-index-policy"))
    assert variables["USERNAME"] == {"secretKeyRef": {"name": "es-admin", "key": "username"}}
    assert variables["PASSWORD"] == {"secretKeyRef": {"name": "es-admin", "key": "password"}}
    assert "es-writer" not in json.dumps(job)
    requests = run_hook(job, backend, USERNAME="elastic", PASSWORD="s3cret: with space")
    expected = "Basic " + base64.b64encode(b"elastic:s3cret: with space").decode()
    assert all(headers.get("Authorization") == expected for _, _, headers, _ in requests)


def test_hook_sends_an_api_key(backend: ThreadingHTTPServer) -> None:
    job = policy_job("es", auth={"existingSecret": "es-admin", "apiKeyKey": "api_key"})
    assert env(container(job, "put-index-policy"))["API_KEY"] == {
        "secretKeyRef": {"name": "es-admin", "key": "api_key"}
    }
    requests = run_hook(job, backend, API_KEY="a2V5OnNlY3JldA==")
    assert all(headers.get("Authorization") == "ApiKey a2V5OnNlY3JldA==" for _, _, headers, _ in requests)


def test_hook_trusts_the_backends_ca() -> None:
    tls = {
        "enabled": True,
        "ca": {"existingSecret": "corp-ca", "key": "ca.pem"},
        "clientCert": {"existingSecret": "cl"},
    }
    job = policy_job("es", es={"tls": tls})
    c = container(job, "put-index-policy")
    variables = env(c)
    assert variables["TLS"] == "on"
    assert variables["CA_FILE"] == "/tls/es/ca/ca.pem"
    assert (variables["CERT_FILE"], variables["KEY_FILE"]) == ("/tls/es/client/tls.crt", "/tls/es/client/tls.key")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod_spec(job)["volumes"]}
    assert volumes[mounts["/tls/es/ca"]] == "corp-ca" and volumes[mounts["/tls/es/client"]] == "cl"
    assert '--cacert "$CA_FILE"' in c["args"][0]


def test_hook_gives_up_without_failing_the_release() -> None:
    done = run_policy_script(policy_job("es"), 9, WAIT_SECONDS="0")
    assert done.returncode == 0
    assert "not reachable after 0s; policy " in done.stderr and "the release is unaffected" in done.stderr
    strict = run_policy_script(policy_job("es"), 9, WAIT_SECONDS="0", STRICT="1")  # for a manual run
    assert strict.returncode == 1


def test_hook_reports_a_refused_request_without_failing(backend: ThreadingHTTPServer) -> None:
    Recorder.fail_puts = True
    try:
        done = run_policy_script(policy_job("es"), backend.server_address[1])
    finally:
        Recorder.fail_puts = False
    assert done.returncode == 0
    assert f"PUT _ilm/policy/{POLICY} failed" in done.stderr
