"""The app's Deployment, ConfigMap, Service and PDB: the user's service, with nothing node-wide."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from tests.chart.combos import COMBOS
from tests.chart.helm import (
    FULLNAME,
    PROMETHEUS_OPERATOR,
    container,
    needs_helm,
    objects,
    one,
    pod_spec,
    render,
    render_error,
)

pytestmark = needs_helm

Obj = dict[str, Any]


def app_config(values: dict[str, Any] | None = None) -> dict[str, str]:
    data: dict[str, str] = one(render(values), "ConfigMap", FULLNAME)["data"]
    return data


def checksums(values: dict[str, Any] | None = None) -> dict[str, str]:
    annotations = one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


def test_probes_hit_the_health_routes() -> None:
    app = container(one(render(), "Deployment"), "app")
    assert app["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert app["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert app["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_command_and_settings_from_the_configmap() -> None:
    docs = render({"app": {"gracefulTimeoutSeconds": 25, "terminationGracePeriodSeconds": 40, "port": 9000}})
    app = container(one(docs, "Deployment"), "app")
    assert app["command"] == [
        "python",
        "-m",
        "service",
        "serve",
        "--app=service.app:app",
        "--host=0.0.0.0",
        "--port=9000",
        "--graceful-timeout=25",
    ]
    assert "args" not in app
    assert app["envFrom"] == [{"configMapRef": {"name": FULLNAME}}]
    assert {"name": "tmp", "mountPath": "/tmp"} in app["volumeMounts"]  # writable /tmp on a read-only root


def test_the_users_app_module_is_served() -> None:
    values = {"app": {"module": "shop.api:app", "args": ["--proxy-headers"]}}
    app = container(one(render(values), "Deployment"), "app")
    assert app["command"][:5] == ["python", "-m", "service", "serve", "--app=shop.api:app"]
    assert app["command"][-1] == "--proxy-headers"


def test_a_full_command_override_replaces_the_default() -> None:
    values = {"app": {"command": ["gunicorn", "-k", "uvicorn.workers.UvicornWorker"], "args": ["shop.api:app"]}}
    app = container(one(render(values), "Deployment"), "app")
    assert app["command"] == ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "shop.api:app"]


def test_the_cli_accepts_the_rendered_arguments() -> None:
    """The default command's flags are ones `python -m service serve` really has (its --help lists them)."""
    app = container(one(render({"app": {"module": "service.app:app"}}), "Deployment"), "app")
    done = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for arg in app["command"][4:]:
        assert arg.split("=", 1)[0] in done.stdout, arg


def test_extra_volumes_mounts_and_env_from() -> None:
    values = {
        "app": {
            "envFrom": [{"secretRef": {"name": "app-secrets"}}],
            "extraVolumes": [{"name": "ca", "secret": {"secretName": "corp-ca"}}],
            "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
        }
    }
    deployment = one(render(values), "Deployment")
    app = container(deployment, "app")
    assert app["envFrom"] == [{"configMapRef": {"name": FULLNAME}}, {"secretRef": {"name": "app-secrets"}}]
    assert {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True} in app["volumeMounts"]
    assert {"name": "ca", "secret": {"secretName": "corp-ca"}} in pod_spec(deployment)["volumes"]


def test_external_mode_settings() -> None:
    assert app_config() == {
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "INFO",
        "LOG_MODE": "stdout",
        "LOG_QUEUE_SIZE": "10000",
        "LOG_OVERFLOW": "block",
        "LOG_DROP_REPORT_INTERVAL": "10",
        "LOG_ID_HEADERS": "X-Tracking-ID,X-Request-ID",
        "LOG_RESPONSE_HEADER": "X-Tracking-ID",
        "LOG_ACCESS": "true",
        "LOG_HEALTH_PATHS": "/healthz,/readyz",
        "LOG_ACCESS_HEALTH": "false",
        "LOG_METRICS": "true",
    }


def test_config_values_reach_the_environment() -> None:
    data = app_config(
        {
            "app": {"workers": 3},
            "config": {
                "level": "DEBUG",
                "queueSize": 500,
                "overflow": "drop",
                "idHeaders": ["X-Req"],
                "responseHeader": "X-Trace",
                "access": False,
                "healthPaths": ["/live"],
                "accessHealth": True,
            },
        }
    )
    assert data["WEB_CONCURRENCY"] == "3"
    assert data["LOG_LEVEL"] == "DEBUG"
    assert data["LOG_QUEUE_SIZE"] == "500"
    assert data["LOG_OVERFLOW"] == "drop"
    assert data["LOG_ID_HEADERS"] == "X-Req"
    assert data["LOG_RESPONSE_HEADER"] == "X-Trace"
    assert data["LOG_ACCESS"] == "false"
    assert data["LOG_HEALTH_PATHS"] == "/live"
    assert data["LOG_ACCESS_HEALTH"] == "true"


def test_sidecar_mode_writes_per_worker_files_on_a_bounded_emptydir() -> None:
    docs = render({"collection": {"mode": "sidecar"}, "logging": {"file": {"sizeLimit": "2Gi", "retentionDays": 3}}})
    data = one(docs, "ConfigMap", FULLNAME)["data"]
    assert data["LOG_MODE"] == "file"
    assert data["LOG_DIR"] == "/var/log/app"
    assert data["LOG_FILE_NAME"] == "app"
    assert data["LOG_RETENTION_DAYS"] == "3"
    assert data["LOG_ROTATE_UTC"] == "true"
    assert data["LOG_GZIP"] == "false"
    spec = pod_spec(one(docs, "Deployment"))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["app-logs"] == {"name": "app-logs", "emptyDir": {"sizeLimit": "2Gi"}}
    assert {"name": "app-logs", "mountPath": "/var/log/app"} in container(one(docs, "Deployment"), "app")[
        "volumeMounts"
    ]
    assert spec["securityContext"]["fsGroup"] == 10001  # app and sidecar share the files through the group


def test_sidecar_mode_also_stdout_means_both() -> None:
    values = {"collection": {"mode": "sidecar"}, "logging": {"file": {"alsoStdout": True}}}
    assert app_config(values)["LOG_MODE"] == "both"


def test_termination_grace_exceeds_the_drain_time() -> None:
    spec = pod_spec(one(render(), "Deployment"))
    assert spec["terminationGracePeriodSeconds"] > 20  # uvicorn --graceful-timeout, then the log queue drains
    message = render_error({"app": {"gracefulTimeoutSeconds": 30, "terminationGracePeriodSeconds": 30}})
    assert "app.terminationGracePeriodSeconds (30) must be greater than" in message
    message = render_error({"app": {"preStopSleepSeconds": 10, "terminationGracePeriodSeconds": 30}})
    assert "app.preStopSleepSeconds + app.gracefulTimeoutSeconds (30)" in message


def test_prestop_sleep_is_on_by_default_and_needs_no_shell() -> None:
    """A non-zero default, as an exec hook running python (the image has no shell; the native sleep action
    needs Kubernetes 1.30 and the chart allows 1.29)."""
    app = container(one(render(), "Deployment"), "app")
    (command,) = app["lifecycle"]["preStop"]["exec"].values()
    assert command[:2] == ["python", "-c"]
    assert command[2] == "import time; time.sleep(5)"
    assert "lifecycle" not in container(one(render({"app": {"preStopSleepSeconds": 0}}), "Deployment"), "app")


def test_prestop_hook_really_sleeps_the_configured_seconds() -> None:
    app = container(one(render({"app": {"preStopSleepSeconds": 1}}), "Deployment"), "app")
    command = app["lifecycle"]["preStop"]["exec"]["command"]
    started = time.monotonic()
    subprocess.run([sys.executable, *command[1:]], check=True, timeout=30)
    assert time.monotonic() - started >= 1


def test_checksum_annotation_follows_the_config() -> None:
    base = checksums()
    assert set(base) == {"checksum/config"}
    assert checksums({"config": {"level": "DEBUG"}})["checksum/config"] != base["checksum/config"]
    assert checksums({"app": {"workers": 2}})["checksum/config"] != base["checksum/config"]
    assert checksums({"replicaCount": 4}) == base  # not a config change: no roll


def test_sidecar_mode_checksum_covers_the_sidecar_config() -> None:
    file_mode = {"collection": {"mode": "sidecar"}}
    base = checksums(file_mode)
    assert set(base) == {"checksum/config", "checksum/fluent-bit"}
    other = checksums({**file_mode, "fluentBit": {"outputs": ["loki"]}})
    assert other["checksum/fluent-bit"] != base["checksum/fluent-bit"]
    assert other["checksum/config"] == base["checksum/config"]


def test_service_and_service_account() -> None:
    docs = render()
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    deployment = one(docs, "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert pod_spec(deployment)["serviceAccountName"] == FULLNAME
    no_sa = render({"serviceAccount": {"create": False}})
    assert pod_spec(one(no_sa, "Deployment"))["serviceAccountName"] == "default"
    assert not [sa for sa in objects(no_sa, "ServiceAccount") if sa["metadata"]["name"] == FULLNAME]


def test_pod_disruption_budget_is_optional() -> None:
    assert not objects(render(), "PodDisruptionBudget")
    pdb = one(render({"podDisruptionBudget": {"enabled": True}}), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == one(render(), "Deployment")["spec"]["selector"]["matchLabels"]
    pdb = one(render(COMBOS["external-everything"]), "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": "25%", "selector": pdb["spec"]["selector"]}
    message = render_error({"podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}})
    assert "set only one of minAvailable and maxUnavailable" in message


NODE_WIDE = {"DaemonSet", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "Namespace", "PersistentVolume"}


@pytest.mark.parametrize("combo", list(COMBOS))
def test_nothing_node_wide_in_any_mode(combo: str) -> None:
    """No DaemonSet, no cluster-scoped object, no hostPath, no host namespaces, whatever the values."""
    docs = render(COMBOS[combo], api_versions=PROMETHEUS_OPERATOR)
    assert not [d["kind"] for d in docs if d["kind"] in NODE_WIDE]
    for obj in docs:
        if obj["kind"] in ("Deployment", "Job", "CronJob"):
            spec = pod_spec(obj)
            assert all("hostPath" not in v for v in spec.get("volumes", [])), obj["metadata"]["name"]
            assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"))


@pytest.mark.parametrize("mode", ["external", "none"])
def test_without_the_sidecar_only_the_app_is_rendered(mode: str) -> None:
    values = {"collection": {"mode": mode}, "fluentBit": {"outputs": ["es", "file"]}}
    assert sorted(d["kind"] for d in render(values)) == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]
    assert app_config(values)["LOG_MODE"] == "stdout"


def test_external_mode_labels_pods_for_a_label_selecting_collector() -> None:
    labels = one(render(), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels["tracking-logs.io/collect"] == "true"
    no_label = one(render({"collection": {"optInLabel": False}}), "Deployment")
    assert "tracking-logs.io/collect" not in no_label["spec"]["template"]["metadata"]["labels"]
    for mode in ("sidecar", "none"):  # a sidecar ships the files; none means nobody collects
        labels = one(render({"collection": {"mode": mode}}), "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert "tracking-logs.io/collect" not in labels, mode
