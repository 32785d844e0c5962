"""The app's Deployment, ConfigMap, Service and PDB."""

from __future__ import annotations

from typing import Any

from tests.chart.combos import COMBOS
from tests.chart.helm import FULLNAME, container, needs_helm, objects, one, pod_spec, render, render_error

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
    assert app["command"] == ["python", "-m", "service"]
    assert app["args"] == ["serve", "--host=0.0.0.0", "--port=9000", "--graceful-timeout=25"]
    assert app["envFrom"] == [{"configMapRef": {"name": FULLNAME}}]
    assert {"name": "tmp", "mountPath": "/tmp"} in app["volumeMounts"]  # writable /tmp on a read-only root


def test_stdout_mode_settings() -> None:
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


def test_file_mode_writes_per_worker_files_on_a_bounded_emptydir() -> None:
    docs = render({"logging": {"mode": "file", "file": {"sizeLimit": "2Gi", "retentionDays": 3}}})
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


def test_file_mode_also_stdout_means_both() -> None:
    assert app_config({"logging": {"mode": "file", "file": {"alsoStdout": True}}})["LOG_MODE"] == "both"


def test_termination_grace_exceeds_the_drain_time() -> None:
    spec = pod_spec(one(render(), "Deployment"))
    assert spec["terminationGracePeriodSeconds"] > 20  # uvicorn --graceful-timeout, then the log queue drains
    message = render_error({"app": {"gracefulTimeoutSeconds": 30, "terminationGracePeriodSeconds": 30}})
    assert "app.terminationGracePeriodSeconds (30) must be greater than" in message
    message = render_error({"app": {"preStopSleepSeconds": 10, "terminationGracePeriodSeconds": 30}})
    assert "app.preStopSleepSeconds + app.gracefulTimeoutSeconds (30)" in message


def test_prestop_sleep() -> None:
    app = container(one(render({"app": {"preStopSleepSeconds": 5}}), "Deployment"), "app")
    assert app["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert "lifecycle" not in container(one(render(), "Deployment"), "app")


def test_checksum_annotation_follows_the_config() -> None:
    base = checksums()
    assert set(base) == {"checksum/config"}
    assert checksums({"config": {"level": "DEBUG"}})["checksum/config"] != base["checksum/config"]
    assert checksums({"app": {"workers": 2}})["checksum/config"] != base["checksum/config"]
    assert checksums({"replicaCount": 4}) == base  # not a config change: no roll


def test_file_mode_checksum_covers_the_sidecar_config() -> None:
    file_mode = {"logging": {"mode": "file"}}
    base = checksums(file_mode)
    assert set(base) == {"checksum/config", "checksum/fluent-bit"}
    other = checksums({**file_mode, "fluentBit": {"outputs": ["loki"]}})
    assert other["checksum/fluent-bit"] != base["checksum/fluent-bit"]
    assert other["checksum/config"] == base["checksum/config"]


def test_daemonset_checksum_follows_the_fluent_bit_config() -> None:
    def ds_checksum(values: dict[str, Any]) -> str:
        ds = one(render(values), "DaemonSet")
        return str(ds["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert ds_checksum({}) != ds_checksum({"fluentBit": {"outputs": ["es"]}})


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
    pdb = one(render(COMBOS["stdout-everything"]), "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": "25%", "selector": pdb["spec"]["selector"]}
    message = render_error({"podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}})
    assert "set only one of minAvailable and maxUnavailable" in message


def test_without_fluent_bit_only_the_app_is_rendered() -> None:
    values = COMBOS["fluent-bit-disabled"]
    assert sorted(d["kind"] for d in render(values)) == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]
    assert app_config(values)["LOG_MODE"] == "stdout"
