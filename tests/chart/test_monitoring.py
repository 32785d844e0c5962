"""ServiceMonitor and PrometheusRule of both charts (issue #14): rendered only where the Prometheus Operator
API exists; every rule parses, and selects only metrics the app exports (the names of the metrics contract)
or that Fluent Bit 5.1.1 really exports (checked against a running fluent-bit when it is on PATH)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chart.helm import (
    COLLECTOR_FULLNAME,
    COLLECTOR_NAMESPACE,
    FULLNAME,
    NAMESPACE,
    PROMETHEUS_OPERATOR,
    needs_helm,
    one,
    render,
    render_collector,
)
from tests.chart.promql import PromQLError, parse
from tests.fluent_bit.support import (
    FluentBit,
    poll,
    skip_without_fluent_bit,
    stage_config,
    top_includes,
)

Obj = dict[str, Any]

# The app's metrics and their labels (the contract the metrics code implements; histogram series included).
APP_METRICS: dict[str, set[str]] = {
    "tracking_logs_lines_written_total": {"level"},
    "tracking_logs_lines_dropped_total": {"reason"},
    "tracking_logs_write_errors_total": {"sink"},
    "tracking_logs_queue_depth": set(),
    "tracking_logs_queue_capacity": set(),
    "tracking_logs_write_batch_duration_seconds_bucket": {"le"},
    "tracking_logs_write_batch_duration_seconds_sum": set(),
    "tracking_logs_write_batch_duration_seconds_count": set(),
    "tracking_logs_build_info": {"version", "python"},
}
# Fluent Bit 5.1.1 metrics the collector's rules use; every one carries the plugin instance as `name`.
# test_fluent_bit_really_exports_them holds this list against a running fluent-bit.
FLUENT_BIT_METRICS: dict[str, set[str]] = {
    "fluentbit_output_errors_total": {"name"},
    "fluentbit_output_retries_failed_total": {"name"},
    "fluentbit_output_dropped_records_total": {"name"},
    "fluentbit_output_chunk_available_capacity_percent": {"name"},
    "fluentbit_input_storage_overlimit": {"name"},
}
# Labels Prometheus adds to every series scraped through a ServiceMonitor.
TARGET_LABELS = {"namespace", "pod", "service", "job", "instance", "container", "endpoint"}


def rules(docs: list[Obj]) -> list[Obj]:
    return [rule for group in one(docs, "PrometheusRule")["spec"]["groups"] for rule in group["rules"]]


def check_rules(docs: list[Obj], known: dict[str, set[str]], namespace: str, service: str) -> list[str]:
    alerts = []
    for rule in rules(docs):
        expression = parse(rule["expr"])
        for metric, matchers in expression.metrics.items():
            assert metric in known, f"{rule['alert']}: {metric} is not an exported metric"
            assert matchers == {"namespace", "service"}, f"{rule['alert']}: {metric} is not scoped to the release"
        labels = set().union(*(known[m] for m in expression.metrics)) | TARGET_LABELS
        assert expression.grouping <= labels, f"{rule['alert']}: groups by {expression.grouping - labels}"
        assert f'namespace="{namespace}", service="{service}"' in rule["expr"]
        for text in rule["annotations"].values():  # Prometheus templates survive Helm's
            assert re.fullmatch(r"(?:[^{}]|\{\{ \$(?:labels\.[a-z]+|value \| humanize) \}\})*", text), text
        assert rule["labels"]["severity"]
        alerts.append(rule["alert"])
    return alerts


# -- the parser itself ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        "sum by (pod) (rate(x_total[5m])",  # unbalanced
        "sum by pod (x)",
        "x{namespace=shop}",  # unquoted matcher value
        "rat(x_total[5m])",  # unknown function
        "max by (pod) ()",
    ],
)
def test_the_reader_rejects_broken_expressions(bad: str) -> None:
    with pytest.raises(PromQLError):
        parse(bad)


def test_the_reader_finds_metrics_matchers_and_grouping() -> None:
    expression = parse('max by (namespace, pod) (a{x="1"} / b{y=~"z.*"}) > 0.8')
    assert expression.metrics == {"a": {"x"}, "b": {"y"}}
    assert expression.grouping == {"namespace", "pod"}


# -- only where the API exists ---------------------------------------------------------------------
@needs_helm
def test_monitoring_objects_only_with_the_prometheus_operator_api() -> None:
    kinds = {"ServiceMonitor", "PrometheusRule"}
    assert not [d for d in render() if d["kind"] in kinds]
    assert not [d for d in render_collector() if d["kind"] in kinds]
    assert {d["kind"] for d in render(api_versions=PROMETHEUS_OPERATOR)} >= kinds
    assert {d["kind"] for d in render_collector(api_versions=PROMETHEUS_OPERATOR)} >= kinds
    off: dict[str, Any] = {"serviceMonitor": {"enabled": False}, "prometheusRule": {"enabled": False}}
    assert not [d for d in render({"metrics": off}, api_versions=PROMETHEUS_OPERATOR) if d["kind"] in kinds]
    assert not [d for d in render_collector(off, api_versions=PROMETHEUS_OPERATOR) if d["kind"] in kinds]


@needs_helm
def test_app_service_monitor_scrapes_the_app_service() -> None:
    docs = render({"metrics": {"serviceMonitor": {"labels": {"release": "kps"}}}}, api_versions=PROMETHEUS_OPERATOR)
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert any(p["name"] == "http" for p in service["spec"]["ports"])


@needs_helm
def test_metrics_on_a_port_of_their_own() -> None:
    docs = render({"metrics": {"port": 9100}}, api_versions=PROMETHEUS_OPERATOR)
    assert one(docs, "ConfigMap", FULLNAME)["data"]["LOG_METRICS_PORT"] == "9100"
    service = one(docs, "Service")
    assert {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"} in service["spec"]["ports"]
    app = next(c for c in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"] if c["name"] == "app")
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in app["ports"]
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    off = render({"metrics": {"enabled": False}}, api_versions=PROMETHEUS_OPERATOR)
    assert one(off, "ConfigMap", FULLNAME)["data"]["LOG_METRICS"] == "false"
    assert not [d for d in off if d["kind"] in ("ServiceMonitor", "PrometheusRule")]


@needs_helm
def test_collector_service_monitor_scrapes_fluent_bit() -> None:
    docs = render_collector(api_versions=PROMETHEUS_OPERATOR)
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {**endpoint, "port": "http-metrics", "path": "/api/v2/metrics/prometheus"}
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http-metrics" and port["targetPort"] == "http"
    ds = one(docs, "DaemonSet")
    assert service["spec"]["selector"] == ds["spec"]["selector"]["matchLabels"]


@needs_helm
def test_app_rules_use_only_the_apps_metrics() -> None:
    docs = render(
        {"metrics": {"prometheusRule": {"queueFullRatio": 0.9, "queueFullFor": "15m"}}},
        api_versions=PROMETHEUS_OPERATOR,
    )
    alerts = check_rules(docs, APP_METRICS, NAMESPACE, FULLNAME)
    assert alerts == ["TrackingLogsLinesDropped", "TrackingLogsWriteErrors", "TrackingLogsQueueNearFull"]
    by_name = {r["alert"]: r for r in rules(docs)}
    assert by_name["TrackingLogsQueueNearFull"]["for"] == "15m"
    assert by_name["TrackingLogsQueueNearFull"]["expr"].endswith("> 0.9")
    assert parse(by_name["TrackingLogsLinesDropped"]["expr"]).grouping == {"namespace", "pod", "reason"}
    assert parse(by_name["TrackingLogsWriteErrors"]["expr"]).grouping == {"namespace", "pod", "sink"}


@needs_helm
def test_collector_rules_cover_output_errors_retries_and_storage() -> None:
    docs = render_collector(api_versions=PROMETHEUS_OPERATOR)
    alerts = check_rules(docs, FLUENT_BIT_METRICS, COLLECTOR_NAMESPACE, COLLECTOR_FULLNAME)
    used = {m for rule in rules(docs) for m in parse(rule["expr"]).metrics}
    assert used == set(FLUENT_BIT_METRICS)  # output errors, retries failed, drops, storage over limit
    assert len(alerts) == len(set(alerts)) == 5


@needs_helm
def test_two_releases_alert_on_their_own_series() -> None:
    first = {r["expr"] for r in rules(render(api_versions=PROMETHEUS_OPERATOR))}
    canary = {r["expr"] for r in rules(render(release="demo-canary", api_versions=PROMETHEUS_OPERATOR))}
    assert not first & canary


# -- the real Fluent Bit ------------------------------------------------------------------------------
@pytest.mark.fluentbit
@skip_without_fluent_bit
def test_fluent_bit_really_exports_them(tmp_path: Path) -> None:
    """node.yaml (filesystem storage, storage.metrics on) with a forward output: its own scrape lists every
    metric the collector's rules use, with the `name` label."""
    (tmp_path / "containers").mkdir()
    top = stage_config(tmp_path / "etc", top_includes("node", ["forward"]))
    env = {
        "FLB_CONTAINER_LOGS": f"{tmp_path}/containers/*.log",
        "FLB_STATE_DIR": str(tmp_path / "state"),
        "FLB_KUBE_URL": "http://127.0.0.1:9",
        "FLB_FORWARD_HOST": "127.0.0.1",
        "FLB_FORWARD_PORT": "9",
    }
    with FluentBit(top, tmp_path, env) as fluent_bit:
        url = f"http://127.0.0.1:{fluent_bit.http_port}/api/v2/metrics/prometheus"
        # the first metrics snapshot is taken a moment after start
        text = poll(
            lambda: t if "fluentbit_output_" in (t := httpx.get(url, timeout=5).text) else None,
            timeout=30,
            what="metrics",
        )
    exported: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ", line)
        if match:
            labels = {pair.split("=", 1)[0] for pair in (match.group(2) or "").split(",") if pair}
            exported.setdefault(match.group(1), set()).update(labels)
    for metric, labels in FLUENT_BIT_METRICS.items():
        assert metric in exported, f"{metric} not exported by this fluent-bit"
        assert labels <= exported[metric], (metric, exported[metric])
