"""The Fluent Bit configuration the chart ships is fluent-bit/, verbatim; the chart only adds the top-level
file (one entry config + the selected outputs) and the FLB_* variables those files read."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.combos import COMBOS, OUTPUTS
from tests.chart.helm import (
    CHART,
    FLUENT_BIT_COPY,
    FLUENT_BIT_SOURCE,
    FULLNAME,
    NAMESPACE,
    container,
    env,
    needs_helm,
    one,
    render,
)

Obj = dict[str, Any]
ENABLED = [name for name, values in COMBOS.items() if values.get("fluentBit", {}).get("enabled", True)]
# Fluent Bit 5.1.1 reads FLB_LOG_LEVEL itself, and while it is set rejects any `log_level` in a config file.
READ_BY_FLUENT_BIT = {"FLB_LOG_LEVEL"}
# ${NAME} or ${NAME:-default}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def source_files() -> dict[str, str]:
    """The files of fluent-bit/ the chart ships: every config except the compose entry."""
    return {p.name: p.read_text() for p in sorted(FLUENT_BIT_SOURCE.glob("*.yaml")) if not p.name.startswith("compose")}


# -- one source of truth ------------------------------------------------------------------------
def test_fluent_bit_sources_exist() -> None:
    names = set(source_files())
    assert {"node.yaml", "sidecar.yaml", "filters.yaml"} <= names
    assert {f"output-{o}.yaml" for o in OUTPUTS} <= names
    assert "fluent-bit.yaml" not in names  # the chart generates that key


def test_chart_copy_has_not_drifted() -> None:
    copy = {p.name: p.read_text() for p in sorted(FLUENT_BIT_COPY.iterdir())}
    assert copy == source_files(), "run charts/tracking-service/sync-fluent-bit.sh"


def test_sync_script_check_mode_agrees(tmp_path: Path) -> None:
    script = CHART / "sync-fluent-bit.sh"
    done = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and it notices a drifted copy (run on a scratch copy of the layout)
    root = tmp_path / "repo"
    shutil.copytree(FLUENT_BIT_SOURCE, root / "fluent-bit")
    chart = root / "charts" / "tracking-service"
    shutil.copytree(FLUENT_BIT_COPY, chart / "files" / "fluent-bit")
    shutil.copy(script, chart)
    (chart / "files" / "fluent-bit" / "node.yaml").write_text("changed\n")
    done = subprocess.run(
        ["bash", str(chart / "sync-fluent-bit.sh"), "--check"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    assert "drift: files/fluent-bit/node.yaml differs from fluent-bit/node.yaml" in done.stdout
    subprocess.run(["bash", str(chart / "sync-fluent-bit.sh")], capture_output=True, timeout=30, check=True)
    assert (chart / "files" / "fluent-bit" / "node.yaml").read_text() == (root / "fluent-bit" / "node.yaml").read_text()


# -- the rendered ConfigMap ---------------------------------------------------------------------
def fluent_bit_config(values: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = one(render(values), "ConfigMap", f"{FULLNAME}-fluent-bit")["data"]
    return data


def reachable(data: dict[str, str], name: str = "fluent-bit.yaml") -> list[str]:
    """The files Fluent Bit loads from the top-level config, following `includes:`."""
    seen = [name]
    for included in yaml.safe_load(data[name]).get("includes", []):
        assert included in data, f"{name} includes {included}, which is not in the ConfigMap"
        seen += [n for n in reachable(data, included) if n not in seen]
    return seen


def fluent_bit_container(values: dict[str, Any]) -> Obj:
    docs = render(values)
    mode = values.get("logging", {}).get("mode", "stdout")
    return container(one(docs, "DaemonSet" if mode == "stdout" else "Deployment"), "fluent-bit")


@needs_helm
@pytest.mark.parametrize("combo", ENABLED)
def test_configmap_holds_the_source_files_verbatim(combo: str) -> None:
    data = fluent_bit_config(COMBOS[combo])
    shipped = {k: v for k, v in data.items() if k != "fluent-bit.yaml"}
    assert shipped == source_files()


@needs_helm
@pytest.mark.parametrize("combo", ENABLED)
def test_top_level_config_includes_the_entry_and_the_selected_outputs(combo: str) -> None:
    values = COMBOS[combo]
    data = fluent_bit_config(values)
    entry = "sidecar.yaml" if values.get("logging", {}).get("mode") == "file" else "node.yaml"
    outputs = values["fluentBit"]["outputs"]
    assert yaml.safe_load(data["fluent-bit.yaml"]) == {"includes": [entry, *(f"output-{o}.yaml" for o in outputs)]}
    assert "filters.yaml" in reachable(data)  # the shared JSON lifting, through the entry config
    c = fluent_bit_container(values)
    mount = next(m for m in c["volumeMounts"] if m["name"] == "fluent-bit-config")
    assert c["args"] == [f"--config={mount['mountPath']}/fluent-bit.yaml"]


@needs_helm
@pytest.mark.parametrize("combo", ENABLED)
def test_every_variable_the_config_needs_is_set_and_every_one_set_is_read(combo: str) -> None:
    values = COMBOS[combo]
    data = fluent_bit_config(values)
    lines = (line for name in reachable(data) for line in data[name].splitlines())
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))  # comments mention them too
    read = {m.group(1) for m in VARIABLE.finditer(text)}
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) is None}
    c = fluent_bit_container(values)
    variables = env(c)
    extra = {e["name"] for e in values["fluentBit"].get("extraEnv", [])}
    expanded = {n for v in variables.values() if isinstance(v, str) for n in re.findall(r"\$\(([A-Za-z_0-9]+)\)", v)}
    assert required <= set(variables), f"not set: {sorted(required - set(variables))}"
    unread = set(variables) - read - extra - expanded - READ_BY_FLUENT_BIT
    assert not unread, f"set but read by no included file (contract drift?): {sorted(unread)}"


@needs_helm
@pytest.mark.parametrize("mode", ["stdout", "file"])
def test_log_level_is_set_through_the_variable_fluent_bit_reads(mode: str) -> None:
    values = {"logging": {"mode": mode}, "fluentBit": {"logLevel": "debug"}}
    assert env(fluent_bit_container(values))["FLB_LOG_LEVEL"] == "debug"
    data = fluent_bit_config(values)
    services = [yaml.safe_load(data[name]).get("service") or {} for name in reachable(data)]
    assert not [s for s in services if "log_level" in s], (
        "a config log_level fails Fluent Bit while FLB_LOG_LEVEL is set"
    )


@needs_helm
def test_tracking_id_is_lifted_to_the_top_level() -> None:
    """On nodes the kubernetes filter merges the JSON line (merge_log on) and drops the raw string (keep_log off)."""
    data = fluent_bit_config({})
    filters = [
        f for name in reachable(data) for f in (yaml.safe_load(data[name]).get("pipeline") or {}).get("filters", [])
    ]
    (kubernetes,) = [f for f in filters if f["name"] == "kubernetes"]
    assert kubernetes["merge_log"] is True  # YAML `on`
    assert kubernetes["keep_log"] is False  # YAML `off`
    assert "merge_log_key" not in kubernetes  # keys land at the top level, not nested
    (tail,) = yaml.safe_load(data["node.yaml"])["pipeline"]["inputs"]
    assert re.fullmatch(kubernetes["match"].replace(".", r"\.").replace("*", ".*"), tail["tag"].split("<")[0] + "x")
    assert {"docker", "cri"} <= {p.strip() for p in tail["multiline.parser"].split(",")}
    assert tail["db"].startswith("${FLB_STATE_DIR") and tail["storage.type"] == "filesystem"


@needs_helm
def test_sidecar_lifts_the_json_of_the_app_files() -> None:
    data = fluent_bit_config({"logging": {"mode": "file"}})
    filters = [
        f for name in reachable(data) for f in (yaml.safe_load(data[name]).get("pipeline") or {}).get("filters", [])
    ]
    parsers = {p["name"]: p for name in reachable(data) for p in yaml.safe_load(data[name]).get("parsers", [])}
    lifting = [f for f in filters if f["name"] == "parser" and f["key_name"] == "log"]
    assert lifting and parsers[lifting[0]["parser"]]["format"] == "json"
    assert lifting[0]["reserve_data"] is True  # a line that is not JSON is kept


@needs_helm
def test_daemonset_tails_this_release_or_everything() -> None:
    release = env(fluent_bit_container({}))["FLB_CONTAINER_LOGS"]
    assert release == f"/var/log/containers/{FULLNAME}-*_{NAMESPACE}_app-*.log"
    everything = env(fluent_bit_container({"fluentBit": {"daemonset": {"scope": "all"}}}))["FLB_CONTAINER_LOGS"]
    assert everything == "/var/log/containers/*.log"
    # Fluent Bit's own containers stay excluded (node.yaml's default exclude_path, which the chart keeps).
    (tail,) = yaml.safe_load(fluent_bit_config({})["node.yaml"])["pipeline"]["inputs"]
    assert tail["exclude_path"].startswith("${FLB_EXCLUDE_PATH:-") and "_fluent-bit-" in tail["exclude_path"]
    assert "FLB_EXCLUDE_PATH" not in env(fluent_bit_container({"fluentBit": {"daemonset": {"scope": "all"}}}))


@needs_helm
def test_output_settings_reach_the_environment() -> None:
    values: dict[str, Any] = {
        "fluentBit": {
            "outputs": list(OUTPUTS),
            "es": {
                "host": "es.example",
                "port": 9243,
                "tls": True,
                "indexPrefix": "shop",
                "auth": {"existingSecret": "es"},
            },
            "opensearch": {"host": "os.example", "tlsVerify": False, "indexPrefix": "shop-os"},
            "loki": {"host": "loki.example", "port": 3100, "tenantId": "team-a", "job": "shop"},
            "forward": {"host": "agg", "sharedKey": {"existingSecret": "fwd", "key": "k"}},
            "file": {"path": "/archive", "rotateSize": "50M", "rotateFiles": 3},
        }
    }
    variables = env(fluent_bit_container(values))
    assert variables["FLB_ES_HOST"] == "es.example" and variables["FLB_ES_PORT"] == "9243"
    assert variables["FLB_ES_TLS"] == "on" and variables["FLB_ES_INDEX_PREFIX"] == "shop"
    assert variables["FLB_ES_USER"] == {"secretKeyRef": {"name": "es", "key": "username"}}
    assert variables["FLB_OS_TLS_VERIFY"] == "off" and variables["FLB_OS_INDEX_PREFIX"] == "shop-os"
    assert "FLB_OS_USER" not in variables
    assert variables["FLB_LOKI_TENANT_ID"] == "team-a" and variables["FLB_LOKI_JOB"] == "shop"
    assert variables["FLB_FORWARD_SHARED_KEY"] == {"secretKeyRef": {"name": "fwd", "key": "k"}}
    assert variables["FLB_FILE_PATH"] == "/archive/$(FLB_WRITER)"  # one directory per node
    assert variables["FLB_WRITER"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert variables["FLB_FILE_ROTATE_SIZE"] == "50M" and variables["FLB_FILE_ROTATE_FILES"] == "3"
    sidecar = env(fluent_bit_container({**values, "logging": {"mode": "file"}}))
    assert sidecar["FLB_WRITER"] == {"fieldRef": {"fieldPath": "metadata.name"}}  # one directory per pod
    assert sidecar["FLB_APP_LOGS"] == "/var/log/app/app*.log"


# -- the real binary ------------------------------------------------------------------------------
@needs_helm
@pytest.mark.fluentbit
@pytest.mark.parametrize("combo", ["stdout-everything", "file-everything", "stdout-stdout", "file-file"])
def test_fluent_bit_dry_run_accepts_the_rendered_config(combo: str, tmp_path: Path) -> None:
    """`fluent-bit --dry-run` on the ConfigMap as rendered, with the container's environment."""
    binary = shutil.which("fluent-bit")
    if binary is None:
        pytest.skip("fluent-bit is not on PATH")
    values = COMBOS[combo]
    for name, text in fluent_bit_config(values).items():
        (tmp_path / name).write_text(text)
    variables = {k: v for k, v in env(fluent_bit_container(values)).items() if isinstance(v, str)}
    variables = {k: v.replace("$(FLB_WRITER)", "node-1") for k, v in variables.items()}
    variables |= {"FLB_STATE_DIR": str(tmp_path / "state"), "FLB_FILE_PATH": str(tmp_path / "out")}
    done = subprocess.run(
        [binary, "--dry-run", "-c", str(tmp_path / "fluent-bit.yaml")],
        env={"PATH": os.environ["PATH"], **variables},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "configuration test is successful" in done.stdout + done.stderr


@needs_helm
def test_fluent_bit_probes_never_take_the_app_out_of_its_service() -> None:
    node = fluent_bit_container({})
    assert node["livenessProbe"]["httpGet"] == {"path": "/", "port": "fb-http"}
    assert node["readinessProbe"]["httpGet"] == {"path": "/api/v2/health", "port": "fb-http"}
    sidecar = fluent_bit_container({"logging": {"mode": "file"}})
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/", "port": "fb-http"}
    assert "readinessProbe" not in sidecar  # a failing backend must not make the app pod unready
    assert sidecar["restartPolicy"] == "Always"  # native sidecar: up before the app, down after it
