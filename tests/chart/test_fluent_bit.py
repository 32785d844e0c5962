"""The Fluent Bit configuration both charts ship is fluent-bit/, verbatim; a chart only adds the top-level
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

from tests.chart.combos import COLLECTOR_COMBOS, COMBOS, OUTPUTS
from tests.chart.helm import (
    CHARTS,
    COLLECTOR,
    COLLECTOR_FULLNAME,
    FLUENT_BIT_SOURCE,
    FULLNAME,
    container,
    env,
    needs_helm,
    one,
    render,
    render_collector,
)

Obj = dict[str, Any]
SIDECAR = [name for name, values in COMBOS.items() if values.get("collection", {}).get("mode") == "sidecar"]
# Fluent Bit 5.1.1 reads FLB_LOG_LEVEL itself, and while it is set rejects any `log_level` in a config file.
READ_BY_FLUENT_BIT = {"FLB_LOG_LEVEL"}
# ${NAME} or ${NAME:-default}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
ENTRY = {"tracking-service": "sidecar.yaml", "tracking-logs-collector": "node.yaml"}


def shipped_files(chart: str) -> dict[str, str]:
    """The files of fluent-bit/ a chart ships: its entry config, the shared filters, every output."""
    names = {ENTRY[chart], "filters.yaml", *(p.name for p in FLUENT_BIT_SOURCE.glob("output-*.yaml"))}
    return {name: (FLUENT_BIT_SOURCE / name).read_text() for name in sorted(names)}


# -- one source of truth ------------------------------------------------------------------------
def test_fluent_bit_sources_exist() -> None:
    names = {p.name for p in FLUENT_BIT_SOURCE.glob("*.yaml")}
    assert {"node.yaml", "sidecar.yaml", "filters.yaml"} <= names
    assert {f"output-{o}.yaml" for o in OUTPUTS} <= names
    assert "fluent-bit.yaml" not in names  # the charts generate that key


@pytest.mark.parametrize("chart", list(ENTRY))
def test_chart_copy_has_not_drifted(chart: str) -> None:
    copy = {p.name: p.read_text() for p in sorted((CHARTS / chart / "files" / "fluent-bit").iterdir())}
    assert copy == shipped_files(chart), "run charts/sync-fluent-bit.sh"


def test_sync_script_check_mode_agrees(tmp_path: Path) -> None:
    script = CHARTS / "sync-fluent-bit.sh"
    done = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and it notices a drifted copy (run on a scratch copy of the layout)
    root = tmp_path / "repo"
    shutil.copytree(FLUENT_BIT_SOURCE, root / "fluent-bit")
    for chart in ENTRY:
        shutil.copytree(CHARTS / chart / "files" / "fluent-bit", root / "charts" / chart / "files" / "fluent-bit")
    shutil.copy(script, root / "charts")
    copy = root / "charts" / "tracking-logs-collector" / "files" / "fluent-bit"
    (copy / "node.yaml").write_text("changed\n")
    (root / "charts" / "tracking-service" / "files" / "fluent-bit" / "node.yaml").write_text("not shipped\n")
    check = ["bash", str(root / "charts" / "sync-fluent-bit.sh"), "--check"]
    done = subprocess.run(check, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert "drift: tracking-logs-collector/files/fluent-bit/node.yaml differs from fluent-bit/node.yaml" in done.stdout
    assert "drift: tracking-service/files/fluent-bit/node.yaml is not one of the files it ships" in done.stdout
    subprocess.run(["bash", str(root / "charts" / "sync-fluent-bit.sh")], capture_output=True, timeout=30, check=True)
    assert (copy / "node.yaml").read_text() == (root / "fluent-bit" / "node.yaml").read_text()
    assert subprocess.run(check, capture_output=True, timeout=30, check=False).returncode == 0


# -- the rendered ConfigMaps --------------------------------------------------------------------
def app_config(values: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = one(render(values), "ConfigMap", f"{FULLNAME}-fluent-bit")["data"]
    return data


def collector_config(values: dict[str, Any] | None = None) -> dict[str, str]:
    data: dict[str, str] = one(render_collector(values), "ConfigMap", COLLECTOR_FULLNAME)["data"]
    return data


def reachable(data: dict[str, str], name: str = "fluent-bit.yaml") -> list[str]:
    """The files Fluent Bit loads from the top-level config, following `includes:`."""
    seen = [name]
    for included in yaml.safe_load(data[name]).get("includes", []):
        assert included in data, f"{name} includes {included}, which is not in the ConfigMap"
        seen += [n for n in reachable(data, included) if n not in seen]
    return seen


def sidecar_container(values: dict[str, Any]) -> Obj:
    return container(one(render(values), "Deployment"), "fluent-bit")


def collector_container(values: dict[str, Any] | None = None) -> Obj:
    return container(one(render_collector(values), "DaemonSet"), "fluent-bit")


def filters(data: dict[str, str]) -> list[Obj]:
    return [f for n in reachable(data) for f in (yaml.safe_load(data[n]).get("pipeline") or {}).get("filters", [])]


# (chart, combo name, rendered ConfigMap data, the Fluent Bit container, the values' outputs and extraEnv)
def _cases() -> list[Any]:
    cases = [pytest.param("tracking-service", c, id=c) for c in SIDECAR]
    cases += [pytest.param("tracking-logs-collector", c, id=c) for c in COLLECTOR_COMBOS]
    return cases


def case(chart: str, combo: str) -> tuple[dict[str, str], Obj, list[str], list[Obj]]:
    if chart == "tracking-service":
        values = COMBOS[combo]
        fb = values["fluentBit"]
        return app_config(values), sidecar_container(values), fb["outputs"], fb.get("extraEnv", [])
    values = COLLECTOR_COMBOS[combo]
    return collector_config(values), collector_container(values), values["outputs"], values.get("extraEnv", [])


@needs_helm
@pytest.mark.parametrize(("chart", "combo"), _cases())
def test_configmap_holds_the_source_files_verbatim(chart: str, combo: str) -> None:
    data, _, _, _ = case(chart, combo)
    assert {k: v for k, v in data.items() if k != "fluent-bit.yaml"} == shipped_files(chart)


@needs_helm
@pytest.mark.parametrize(("chart", "combo"), _cases())
def test_top_level_config_includes_the_entry_and_the_selected_outputs(chart: str, combo: str) -> None:
    data, c, outputs, _ = case(chart, combo)
    assert yaml.safe_load(data["fluent-bit.yaml"]) == {
        "includes": [ENTRY[chart], *(f"output-{o}.yaml" for o in outputs)]
    }
    assert "filters.yaml" in reachable(data)  # the shared JSON lifting, through the entry config
    mount = next(m for m in c["volumeMounts"] if m["name"].endswith("config"))
    assert c["args"][0] == f"--config={mount['mountPath']}/fluent-bit.yaml"


@needs_helm
@pytest.mark.parametrize(("chart", "combo"), _cases())
def test_every_variable_the_config_needs_is_set_and_every_one_set_is_read(chart: str, combo: str) -> None:
    data, c, _, extra_env = case(chart, combo)
    lines = (line for name in reachable(data) for line in data[name].splitlines())
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))  # comments mention them too
    read = {m.group(1) for m in VARIABLE.finditer(text)}
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) is None}
    variables = env(c)
    extra = {e["name"] for e in extra_env}
    expanded = {n for v in variables.values() if isinstance(v, str) for n in re.findall(r"\$\(([A-Za-z_0-9]+)\)", v)}
    assert required <= set(variables), f"not set: {sorted(required - set(variables))}"
    unread = set(variables) - read - extra - expanded - READ_BY_FLUENT_BIT
    assert not unread, f"set but read by no included file (contract drift?): {sorted(unread)}"


@needs_helm
def test_log_level_is_set_through_the_variable_fluent_bit_reads() -> None:
    sidecar = {"collection": {"mode": "sidecar"}, "fluentBit": {"logLevel": "debug"}}
    assert env(sidecar_container(sidecar))["FLB_LOG_LEVEL"] == "debug"
    assert env(collector_container({"logLevel": "debug"}))["FLB_LOG_LEVEL"] == "debug"
    for data in (app_config(sidecar), collector_config()):
        services = [yaml.safe_load(data[name]).get("service") or {} for name in reachable(data)]
        assert not [s for s in services if "log_level" in s], "a config log_level fails Fluent Bit with FLB_LOG_LEVEL"


@needs_helm
def test_collector_lifts_tracking_id_to_the_top_level() -> None:
    """The kubernetes filter merges the JSON line (merge_log on) and drops the raw string (keep_log off)."""
    data = collector_config()
    (kubernetes,) = [f for f in filters(data) if f["name"] == "kubernetes"]
    assert kubernetes["merge_log"] is True  # YAML `on`
    assert kubernetes["keep_log"] is False  # YAML `off`
    assert "merge_log_key" not in kubernetes  # keys land at the top level, not nested
    (tail,) = yaml.safe_load(data["node.yaml"])["pipeline"]["inputs"]
    assert re.fullmatch(kubernetes["match"].replace(".", r"\.").replace("*", ".*"), tail["tag"].split("<")[0] + "x")
    assert {"docker", "cri"} <= {p.strip() for p in tail["multiline.parser"].split(",")}
    assert tail["db"].startswith("${FLB_STATE_DIR") and tail["storage.type"] == "filesystem"


@needs_helm
def test_collector_selects_pods_by_label_and_never_collects_collectors() -> None:
    data = collector_config()
    greps = [f for f in filters(data) if f["name"] == "grep"]
    names = [f["name"] for f in filters(data)]
    assert names.index("kubernetes") < names.index("grep")  # labels exist only after the kubernetes filter
    (select,) = [f["regex"] for f in greps if "regex" in f]
    assert (
        select == "$kubernetes['labels']['${FLB_SELECT_LABEL:-tracking-logs.io/collect}'] ${FLB_SELECT_REGEX:-^true$}"
    )
    (exclude,) = [f["exclude"] for f in greps if "exclude" in f]
    assert exclude.startswith("$kubernetes['labels']['app.kubernetes.io/name'] ${FLB_EXCLUDE_NAMES:-")
    variables = env(collector_container({"collect": {"label": "team", "regex": "^(a|b)$"}}))
    assert variables["FLB_SELECT_LABEL"] == "team" and variables["FLB_SELECT_REGEX"] == "^(a|b)$"
    assert "fluent-bit" in variables["FLB_EXCLUDE_NAMES"]
    ds = one(render_collector(), "DaemonSet")
    assert ds["spec"]["template"]["metadata"]["annotations"]["fluentbit.io/exclude"] == "true"
    # no file-name glob selects anything: every container log file is read, the labels decide
    (tail,) = yaml.safe_load(data["node.yaml"])["pipeline"]["inputs"]
    assert tail["path"] == "${FLB_CONTAINER_LOGS:-/var/log/containers/*.log}"
    assert "FLB_CONTAINER_LOGS" not in variables


@needs_helm
def test_collector_disk_is_bounded_and_retries_are_finite() -> None:
    data = collector_config({"outputs": ["es", "loki"]})
    service = yaml.safe_load(data["node.yaml"])["service"]
    assert service["storage.keep.rejected"] is True
    assert service["storage.rejected.limit"] == "${FLB_REJECTED_LIMIT:-256M}"
    for name in ("output-es.yaml", "output-loki.yaml"):
        (output,) = yaml.safe_load(data[name])["pipeline"]["outputs"]
        assert output["storage.total_limit_size"] == "${FLB_STORAGE_LIMIT:-512M}"
        assert output["retry_limit"] == "${FLB_RETRY_LIMIT:-10}"
    values = {"storage": {"totalLimitSize": "2G", "rejectedLimit": "64M"}, "retryLimit": 5}
    variables = env(collector_container(values))
    assert (variables["FLB_STORAGE_LIMIT"], variables["FLB_REJECTED_LIMIT"], variables["FLB_RETRY_LIMIT"]) == (
        "2G",
        "64M",
        "5",
    )


@needs_helm
def test_sidecar_lifts_the_json_of_the_app_files() -> None:
    data = app_config({"collection": {"mode": "sidecar"}})
    parsers = {p["name"]: p for name in reachable(data) for p in yaml.safe_load(data[name]).get("parsers", [])}
    lifting = [f for f in filters(data) if f["name"] == "parser" and f["key_name"] == "log"]
    assert lifting and parsers[lifting[0]["parser"]]["format"] == "json"
    assert lifting[0]["reserve_data"] is True  # a line that is not JSON is kept


OUTPUT_VALUES: dict[str, Any] = {
    "outputs": ["stdout", "es", "opensearch", "loki", "forward"],
    "retryLimit": 4,
    "es": {
        "host": "es.example",
        "port": 9243,
        "indexPrefix": "shop",
        "tls": {"enabled": True, "ca": {"existingSecret": "corp-ca", "key": "ca.pem"}},
        "auth": {"existingSecret": "es", "apiKeyKey": "api_key"},
    },
    "opensearch": {
        "host": "os.example",
        "tls": {"verify": False, "clientCert": {"existingSecret": "os-client"}},
        "auth": {"existingSecret": "os"},
    },
    "loki": {"host": "loki.example", "port": 3100, "tenantId": "team-a", "job": "shop"},
    "forward": {"host": "agg", "sharedKey": {"existingSecret": "fwd", "key": "k"}},
}


@needs_helm
def test_output_settings_reach_the_environment() -> None:
    values = {"collection": {"mode": "sidecar"}, "fluentBit": OUTPUT_VALUES}
    c = sidecar_container(values)
    variables = env(c)
    assert variables["FLB_ES_HOST"] == "es.example" and variables["FLB_ES_PORT"] == "9243"
    assert variables["FLB_ES_TLS"] == "on" and variables["FLB_ES_INDEX_PREFIX"] == "shop"
    assert variables["FLB_ES_API_KEY"] == {"secretKeyRef": {"name": "es", "key": "api_key"}}
    assert "FLB_ES_USER" not in variables  # an API key replaces basic auth
    assert variables["FLB_ES_TLS_CA_FILE"] == "/fluent-bit/tls/es/ca/ca.pem"
    assert variables["FLB_OS_TLS_VERIFY"] == "off" and variables["FLB_OS_INDEX_PREFIX"] == FULLNAME  # per release
    assert variables["FLB_OS_USER"] == {"secretKeyRef": {"name": "os", "key": "username"}}
    assert variables["FLB_OS_TLS_CRT_FILE"] == "/fluent-bit/tls/opensearch/client/tls.crt"
    assert variables["FLB_OS_TLS_KEY_FILE"] == "/fluent-bit/tls/opensearch/client/tls.key"
    assert variables["FLB_LOKI_TENANT_ID"] == "team-a" and variables["FLB_LOKI_JOB"] == "shop"
    assert variables["FLB_FORWARD_SHARED_KEY"] == {"secretKeyRef": {"name": "fwd", "key": "k"}}
    assert variables["FLB_RETRY_LIMIT"] == "4"
    # the TLS files are mounted where the variables point, from the named Secrets
    deployment = one(render(values), "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    ca = volumes[mounts["/fluent-bit/tls/es/ca"]]["secret"]
    assert ca == {"secretName": "corp-ca", "items": [{"key": "ca.pem", "path": "ca.pem"}]}
    assert volumes[mounts["/fluent-bit/tls/opensearch/client"]]["secret"]["secretName"] == "os-client"


@needs_helm
def test_both_charts_set_the_same_output_variables() -> None:
    """The charts carry the same output templates: the same values give the same FLB_* variables (except the
    default index prefix: the release's fullname in the app chart, `tracking-logs` in the collector)."""
    backend = re.compile(r"FLB_(ES|OS|LOKI|FORWARD)_|FLB_RETRY_LIMIT")
    sidecar = env(sidecar_container({"collection": {"mode": "sidecar"}, "fluentBit": OUTPUT_VALUES}))
    node = env(collector_container(OUTPUT_VALUES))
    assert (sidecar.pop("FLB_OS_INDEX_PREFIX"), node.pop("FLB_OS_INDEX_PREFIX")) == (FULLNAME, "tracking-logs")
    assert {k: v for k, v in sidecar.items() if backend.match(k)} == {k: v for k, v in node.items() if backend.match(k)}
    app_tpl = (CHARTS / "tracking-service" / "templates" / "_outputs.tpl").read_text().splitlines()
    collector_tpl = (COLLECTOR / "templates" / "_outputs.tpl").read_text().splitlines()
    differ = [
        (a, b)
        for a, b in zip(app_tpl, collector_tpl, strict=True)
        if a != b.replace("tracking-logs-collector.", "tracking-service.")
    ]
    assert len(differ) == 1 and "chart carries the same definitions" in differ[0][0], differ


@needs_helm
def test_sidecar_file_output_writes_one_directory_per_pod() -> None:
    values = {"collection": {"mode": "sidecar"}, "fluentBit": {"outputs": ["file"], "file": {"path": "/archive"}}}
    variables = env(sidecar_container(values))
    assert variables["FLB_FILE_PATH"] == "/archive/$(FLB_WRITER)"
    assert variables["FLB_WRITER"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert variables["FLB_APP_LOGS"] == "/var/log/app/app*.log"


# -- the real binary ------------------------------------------------------------------------------
def _dry_run(data: dict[str, str], c: Obj, tmp_path: Path) -> None:
    binary = shutil.which("fluent-bit")
    if binary is None:
        pytest.skip("fluent-bit is not on PATH")
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    variables = {k: v for k, v in env(c).items() if isinstance(v, str)}
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
@pytest.mark.fluentbit
@pytest.mark.parametrize("combo", ["sidecar-everything", "sidecar-stdout", "sidecar-file"])
def test_fluent_bit_dry_run_accepts_the_rendered_sidecar_config(combo: str, tmp_path: Path) -> None:
    """`fluent-bit --dry-run` on the ConfigMap as rendered, with the container's environment."""
    _dry_run(app_config(COMBOS[combo]), sidecar_container(COMBOS[combo]), tmp_path)


@needs_helm
@pytest.mark.fluentbit
@pytest.mark.parametrize("combo", ["collector-everything", "collector-stdout"])
def test_fluent_bit_dry_run_accepts_the_rendered_collector_config(combo: str, tmp_path: Path) -> None:
    _dry_run(collector_config(COLLECTOR_COMBOS[combo]), collector_container(COLLECTOR_COMBOS[combo]), tmp_path)


@needs_helm
def test_fluent_bit_probes_never_take_the_app_out_of_its_service() -> None:
    node = collector_container()
    assert node["livenessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    assert node["readinessProbe"]["httpGet"] == {"path": "/api/v2/health", "port": "http"}
    sidecar = sidecar_container({"collection": {"mode": "sidecar"}})
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/", "port": "fb-http"}
    assert "readinessProbe" not in sidecar  # a failing backend must not make the app pod unready
    assert sidecar["restartPolicy"] == "Always"  # native sidecar: up before the app, down after it
