"""Pod security: the app, the sidecar and the retention jobs pass the "restricted" Pod Security Standard;
the DaemonSet drops every capability and mounts the host's logs read-only; RBAC is get/list/watch only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.combos import COMBOS
from tests.chart.helm import FULLNAME, NAMESPACE, WORKLOAD_KINDS, containers, needs_helm, objects, one, pod_spec, render

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
    """Every workload except the Fluent Bit DaemonSet: the app, its sidecar, the CronJob, the hook Jobs."""
    docs = render(COMBOS[combo])
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS and d["kind"] != "DaemonSet"]
    assert any(d["kind"] == "Deployment" for d in workloads)
    for obj in workloads:
        assert_restricted_pod(obj)


def test_file_mode_sidecar_is_restricted_and_reads_the_logs_read_only() -> None:
    for combo in ("file-stdout", "file-everything"):
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


def test_daemonset_is_hardened_and_host_mounts_are_read_only() -> None:
    for combo in ("stdout-stdout", "stdout-everything"):
        ds = one(render(COMBOS[combo]), "DaemonSet")
        spec = pod_spec(ds)
        (c,) = spec["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc.get("privileged") is False
        host_volumes = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        for name, path in host_volumes.items():
            if path.startswith(("/var/log", "/var/lib/docker")):
                assert mounts[name].get("readOnly") is True, f"{combo}: {path} must be mounted read-only"
            else:  # the only writable host path: this release's offsets DB and buffers
                assert path == f"/var/lib/fluent-bit/{NAMESPACE}-demo", path
        assert {"/var/log/containers", "/var/log/pods"} <= set(host_volumes.values())


def test_rbac_is_get_list_watch_on_pods_and_namespaces_only() -> None:
    docs = render()
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
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert one(docs, "ServiceAccount", sa)
    assert not objects(docs, "Role") and not objects(docs, "RoleBinding")


@pytest.mark.parametrize("combo", ["file-stdout", "fluent-bit-disabled"])
def test_no_cluster_rbac_without_the_daemonset(combo: str) -> None:
    docs = render(COMBOS[combo])
    assert not objects(docs, "ClusterRole") and not objects(docs, "ClusterRoleBinding")
    assert not objects(docs, "DaemonSet")
