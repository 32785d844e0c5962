"""Pod security: everything the app chart runs (the app, the sidecar, the retention jobs) passes the "restricted"
Pod Security Standard; the collector's DaemonSet drops every capability and mounts the host's logs read-only,
its helpers are restricted, and its RBAC is get/list/watch only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.combos import COLLECTOR_COMBOS, COMBOS
from tests.chart.helm import (
    COLLECTOR_NAMESPACE,
    COLLECTOR_RELEASE,
    FULLNAME,
    WORKLOAD_KINDS,
    containers,
    needs_helm,
    objects,
    one,
    pod_spec,
    render,
    render_collector,
)

pytestmark = needs_helm

Obj = dict[str, Any]


def assert_restricted(c: Obj, where: str) -> None:
    sc = c.get("securityContext", {})
    assert sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
    assert isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] > 0, f"{where}: runAsUser must be non-zero"
    assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
    assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
    assert sc.get("privileged") is not True, f"{where}: privileged"
    assert sc.get("capabilities") == {"drop": ["ALL"]}, f"{where}: capabilities must drop ALL and add nothing"
    assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{where}: seccomp RuntimeDefault"


def assert_restricted_pod(obj: Obj) -> None:
    spec = pod_spec(obj)
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True, where
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
    assert all("hostPath" not in v for v in spec.get("volumes", [])), f"{where}: hostPath is not allowed"
    for c in containers(obj):
        assert_restricted(c, f"{where} container {c['name']}")


@pytest.mark.parametrize("combo", list(COMBOS))
def test_app_pods_and_jobs_are_restricted(combo: str) -> None:
    """Every workload of the app chart: the app, its sidecar, the CronJob, the hook Jobs."""
    docs = render(COMBOS[combo])
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    assert any(d["kind"] == "Deployment" for d in workloads)
    for obj in workloads:
        assert_restricted_pod(obj)


def test_sidecar_is_restricted_and_reads_the_logs_read_only() -> None:
    for combo in ("sidecar-stdout", "sidecar-everything"):
        deployment = one(render(COMBOS[combo]), "Deployment")
        sidecar = [c for c in containers(deployment) if c["name"] == "fluent-bit"]
        assert len(sidecar) == 1, combo
        assert_restricted(sidecar[0], f"{combo} sidecar")
        mounts = {m["name"]: m for m in sidecar[0]["volumeMounts"]}
        assert mounts["app-logs"].get("readOnly") is True
        assert mounts["fluent-bit-config"].get("readOnly") is True


def test_app_does_not_mount_a_service_account_token() -> None:
    docs = render()
    assert pod_spec(one(docs, "Deployment"))["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount", FULLNAME)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("combo", list(COLLECTOR_COMBOS))
def test_collector_daemonset_is_hardened_and_host_mounts_are_read_only(combo: str) -> None:
    ds = one(render_collector(COLLECTOR_COMBOS[combo]), "DaemonSet")
    spec = pod_spec(ds)
    assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"))
    c = next(c for c in spec["containers"] if c["name"] == "fluent-bit")
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc.get("privileged") is False
    for other in spec["containers"]:
        if other is not c:  # the config reloader needs nothing of the host
            assert_restricted(other, f"{combo} {other['name']}")
    host_volumes = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    for name, path in host_volumes.items():
        if path.startswith(("/var/log", "/var/lib/docker")):
            assert mounts[name].get("readOnly") is True, f"{combo}: {path} must be mounted read-only"
        else:  # the only writable host path: this release's offsets DB, buffer and rejected chunks
            assert path == f"/var/lib/tracking-logs-collector/{COLLECTOR_NAMESPACE}/{COLLECTOR_RELEASE}", path
    assert {"/var/log/containers", "/var/log/pods"} <= set(host_volumes.values())


def test_collector_helm_test_pod_is_restricted() -> None:
    (pod,) = objects(render_collector(), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    for c in spec["containers"]:
        assert_restricted(c, "helm test pod")


def test_collector_rbac_is_get_list_watch_on_pods_and_namespaces_only() -> None:
    docs = render_collector()
    (role,) = objects(docs, "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]}
    ]
    (binding,) = objects(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    ds = one(docs, "DaemonSet")
    sa = pod_spec(ds)["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": COLLECTOR_NAMESPACE}]
    assert one(docs, "ServiceAccount", sa)
    assert not objects(docs, "Role") and not objects(docs, "RoleBinding")
    without = render_collector({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "fb"}})
    assert not objects(without, "ClusterRole") and not objects(without, "ServiceAccount")
    assert pod_spec(one(without, "DaemonSet"))["serviceAccountName"] == "fb"


@pytest.mark.parametrize("combo", list(COMBOS))
def test_no_rbac_in_the_app_chart(combo: str) -> None:
    docs = render(COMBOS[combo])
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
