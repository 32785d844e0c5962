"""The collector chart's DaemonSet: once per cluster, label selection, bounded disk, priority, tolerations,
probes, hot reload and `helm test`."""

from __future__ import annotations

from typing import Any

from tests.chart.helm import (
    COLLECTOR_FULLNAME,
    COLLECTOR_NAMESPACE,
    container,
    env,
    needs_helm,
    objects,
    one,
    pod_spec,
    render_collector,
)

pytestmark = needs_helm

Obj = dict[str, Any]


def daemonset(values: dict[str, Any] | None = None) -> Obj:
    return one(render_collector(values), "DaemonSet")


def test_what_it_renders() -> None:
    kinds = sorted(d["kind"] for d in render_collector())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "Pod",  # helm test
        "PriorityClass",
        "Service",
        "ServiceAccount",
    ]


def test_runs_above_ordinary_pods() -> None:
    docs = render_collector()
    (priority,) = objects(docs, "PriorityClass")
    assert priority["value"] == 1_000_000 and priority["globalDefault"] is False
    assert pod_spec(one(docs, "DaemonSet"))["priorityClassName"] == priority["metadata"]["name"]
    existing = render_collector({"priorityClass": {"name": "system-node-critical"}})
    assert not objects(existing, "PriorityClass")
    assert pod_spec(one(existing, "DaemonSet"))["priorityClassName"] == "system-node-critical"
    none = render_collector({"priorityClass": {"create": False}})
    assert "priorityClassName" not in pod_spec(one(none, "DaemonSet"))


def test_does_not_tolerate_every_taint_by_default() -> None:
    spec = pod_spec(daemonset())
    assert "tolerations" not in spec  # untainted nodes only; no control plane, no `operator: Exists`
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    dedicated = [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}]
    assert pod_spec(daemonset({"tolerations": dedicated}))["tolerations"] == dedicated


def test_probes() -> None:
    c = container(daemonset(), "fluent-bit")
    assert c["livenessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/api/v2/health", "port": "http"}
    assert {"name": "http", "containerPort": 2020, "protocol": "TCP"} in c["ports"]


def test_hot_reload_applies_config_changes_without_a_restart() -> None:
    ds = daemonset()
    c = container(ds, "fluent-bit")
    assert "--enable-hot-reload" in c["args"]
    reloader = container(ds, "config-reloader")
    config_mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    assert f"-volume-dir={config_mount['mountPath']}" in reloader["args"]
    assert "-webhook-url=http://127.0.0.1:2020/api/v2/reload" in reloader["args"]
    assert "-webhook-method=POST" in reloader["args"]
    annotations = ds["spec"]["template"]["metadata"]["annotations"]
    assert not [k for k in annotations if k.startswith("checksum/")]  # a change must not roll the pods
    assert daemonset({"outputs": ["es"]})["spec"]["template"]["metadata"]["annotations"] == annotations
    # without hot reload, a config change rolls the DaemonSet instead
    off = daemonset({"hotReload": {"enabled": False}})
    assert [c["name"] for c in pod_spec(off)["containers"]] == ["fluent-bit"]
    assert "--enable-hot-reload" not in container(off, "fluent-bit")["args"]
    checksum = off["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    other = daemonset({"hotReload": {"enabled": False}, "outputs": ["es"]})
    assert other["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != checksum


def test_helm_test_checks_health_and_metrics_through_the_service() -> None:
    docs = render_collector()
    (pod,) = objects(docs, "Pod")
    service = one(docs, "Service")
    script = pod["spec"]["containers"][0]["args"][0]
    base = f"http://{service['metadata']['name']}.{COLLECTOR_NAMESPACE}.svc:{service['spec']['ports'][0]['port']}"
    assert f"base={base}" in script
    assert '"$base/api/v2/health"' in script and '"$base/api/v2/metrics/prometheus"' in script
    assert pod["spec"]["restartPolicy"] == "Never"
    # neither an endpoint of the Service nor found by the NOTES' `kubectl logs -l app.kubernetes.io/instance=...`
    assert not service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert "app.kubernetes.io/instance" not in pod["metadata"]["labels"]


def test_state_lives_in_one_host_directory_per_install() -> None:
    volumes = {v["name"]: v for v in pod_spec(daemonset())["volumes"]}
    assert volumes["state"]["hostPath"] == {
        "path": f"/var/lib/tracking-logs-collector/{COLLECTOR_NAMESPACE}/logs",
        "type": "DirectoryOrCreate",
    }
    assert env(container(daemonset(), "fluent-bit"))["FLB_STATE_DIR"] == "/fluent-bit/state"


def test_tls_and_extra_volumes() -> None:
    values = {
        "outputs": ["es"],
        "es": {"tls": {"enabled": True, "ca": {"existingSecret": "corp-ca", "key": "ca.crt"}}},
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "envFrom": [{"secretRef": {"name": "fb-env"}}],
    }
    ds = daemonset(values)
    c = container(ds, "fluent-bit")
    volumes = {v["name"]: v for v in pod_spec(ds)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert volumes[mounts["/fluent-bit/tls/es/ca"]]["secret"]["secretName"] == "corp-ca"
    assert env(c)["FLB_ES_TLS_CA_FILE"] == "/fluent-bit/tls/es/ca/ca.crt"
    assert mounts["/extra"] == "extra" and "extra" in volumes
    assert c["envFrom"] == [{"secretRef": {"name": "fb-env"}}]


def test_names() -> None:
    docs = render_collector()
    assert one(docs, "DaemonSet")["metadata"]["name"] == COLLECTOR_FULLNAME
    assert one(docs, "ClusterRole")["metadata"]["name"] == f"{COLLECTOR_NAMESPACE}.{COLLECTOR_FULLNAME}"
