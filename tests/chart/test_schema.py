"""values.schema.json: it describes every value, and bad values fail `helm template` with a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, COLLECTOR, needs_helm, render_error

PREFIX = "values don't meet the specifications of the schema(s)"
# Keys Helm itself supplies, which values.yaml need not list.
HELM_KEYS = {"global"}


def _schema(chart: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((chart / "values.schema.json").read_text())
    return schema


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _walk(schema: dict[str, Any], values: dict[str, Any], node: dict[str, Any], path: str) -> list[str]:
    """Keys of values.yaml the schema does not describe, and described keys values.yaml lacks."""
    node = _resolve(schema, node)
    props = node.get("properties")
    if props is None:  # a free-form map (annotations, resources, ...): described as a whole
        return []
    missing = [f"{path}.{k} not in the schema" for k in values if k not in props]
    missing += [f"{path}.{k} not in values.yaml" for k in props if k not in values and k not in HELM_KEYS]
    for key, value in values.items():
        if isinstance(value, dict) and key in props:
            missing += _walk(schema, value, props[key], f"{path}.{key}")
    return missing


@pytest.mark.parametrize("chart", [CHART, COLLECTOR], ids=lambda c: c.name)
def test_schema_covers_every_value(chart: Path) -> None:
    schema = _schema(chart)
    assert _walk(schema, yaml.safe_load((chart / "values.yaml").read_text()), schema, "") == []


@pytest.mark.parametrize("chart", [CHART, COLLECTOR], ids=lambda c: c.name)
def test_objects_are_closed(chart: Path) -> None:
    """Every object with fixed keys rejects unknown ones (a typo fails instead of being ignored)."""

    def check(node: dict[str, Any], path: str) -> list[str]:
        bad = []
        if "properties" in node and node.get("additionalProperties") is not False:
            bad.append(path)
        for key, child in node.get("properties", {}).items():
            bad += check(child, f"{path}.{key}")
        return bad

    schema = _schema(chart)
    assert check(schema, "") == []
    for name, node in schema["definitions"].items():
        assert check(node, f"definitions.{name}") == []


@pytest.mark.parametrize("chart", [CHART, COLLECTOR], ids=lambda c: c.name)
def test_global_is_allowed_at_the_root(chart: Path) -> None:
    assert "global" in _schema(chart)["properties"]


BAD_VALUES = [
    pytest.param(
        {"collection": {"mode": "daemonset"}},
        "at '/collection/mode': value must be one of 'external', 'sidecar', 'none'",
        id="unknown collection mode",
    ),
    pytest.param(
        {"app": {"module": "myapp"}},
        "at '/app/module': 'myapp' does not match pattern",
        id="module without an attribute",
    ),
    pytest.param(
        {"app": {"command": "gunicorn app:app"}},
        "at '/app/command': got string, want array",
        id="command as a string",
    ),
    pytest.param(
        {"fluentBit": {"es": {"tls": {"enabled": True, "ca": "my-ca"}}}},
        "at '/fluentBit/es/tls/ca': got string, want object",
        id="CA as a string",
    ),
    pytest.param(
        {"metrics": {"prometheusRule": {"queueFullFor": "ten minutes"}}},
        "at '/metrics/prometheusRule/queueFullFor': 'ten minutes' does not match pattern",
        id="bad alert duration",
    ),
    pytest.param(
        {"metrics": {"prometheusRule": {"queueFullRatio": 1.5}}},
        "at '/metrics/prometheusRule/queueFullRatio': maximum: got 1.5, want 1",
        id="queue ratio above one",
    ),
    pytest.param(
        {"fluentBit": {"outputs": ["stdout", "kafka"]}},
        "at '/fluentBit/outputs/1': value must be one of 'stdout', 'es', 'opensearch', 'loki', 'forward', 'file'",
        id="unknown output",
    ),
    pytest.param(
        {"fluentBit": {"outputs": []}},
        "at '/fluentBit/outputs': minItems: got 0, want 1",
        id="no output",
    ),
    pytest.param(
        {"fluentBit": {"outputs": ["es", "es"]}},
        "at '/fluentBit/outputs': items at 0 and 1 are equal",
        id="repeated output",
    ),
    pytest.param(
        {"retention": {"days": -1}},
        "at '/retention/days': minimum: got -1, want 1",
        id="negative retention",
    ),
    pytest.param(
        {"retention": {"days": 0}},
        "at '/retention/days': minimum: got 0, want 1",
        id="zero retention",
    ),
    pytest.param(
        {"retention": {"days": "7"}},
        "at '/retention/days': got string, want integer",
        id="retention as a string",
    ),
    pytest.param(
        {"retention": {"days": 1.5}},
        "at '/retention/days': got number, want integer",
        id="fractional retention",
    ),
    pytest.param(
        {"logging": {"file": {"retentionDays": 0}}},
        "at '/logging/file/retentionDays': minimum: got 0, want 1",
        id="app retention below one day",
    ),
    pytest.param(
        {"fluentBit": {"native": "yes"}},
        "at '/fluentBit/native': got string, want boolean",
        id="boolean as a string",
    ),
    pytest.param(
        {"replicaCount": "two"},
        "at '/replicaCount': got string, want integer",
        id="replicas as a string",
    ),
    pytest.param(
        {"replicaCount": -1},
        "at '/replicaCount': minimum: got -1, want 0",
        id="negative replicas",
    ),
    pytest.param(
        {"config": {"level": "TRACE"}},
        "at '/config/level': value must be one of 'CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG'",
        id="unknown log level",
    ),
    pytest.param(
        {"config": {"queueSize": 10}},
        "at '/config/queueSize': minimum: got 10, want 100",
        id="tiny queue",
    ),
    pytest.param(
        {"config": {"overflow": "spill"}},
        "at '/config/overflow': value must be one of 'block', 'drop'",
        id="unknown overflow",
    ),
    pytest.param(
        {"config": {"responseHeader": "X Tracking"}},
        "at '/config/responseHeader': 'X Tracking' does not match pattern",
        id="bad header name",
    ),
    pytest.param(
        {"app": {"runAsUser": 0}},
        "at '/app/runAsUser': minimum: got 0, want 1",
        id="root user",
    ),
    pytest.param(
        {"app": {"port": 70000}},
        "at '/app/port': maximum: got 70,000, want 65,535",
        id="port out of range",
    ),
    pytest.param(
        {"fluentBit": {"daemonset": {"scope": "all"}}},
        "at '/fluentBit': additional properties 'daemonset' not allowed",
        id="the DaemonSet is gone from the app chart",
    ),
    pytest.param(
        {"fluentBit": {"es": {"indexPrefix": "Logs"}}},
        "at '/fluentBit/es/indexPrefix': 'Logs' does not match pattern",
        id="upper-case index",
    ),
    pytest.param(
        {"retention": {"fileCleanup": {"schedule": "hourly"}}},
        "at '/retention/fileCleanup/schedule': 'hourly' does not match pattern",
        id="bad cron schedule",
    ),
    pytest.param(
        {"app": {"resources": {"limits": {"memory": "lots"}}}},
        "at '/app/resources/limits/memory': 'lots' does not match pattern",
        id="bad quantity",
    ),
    pytest.param(
        {"fluentBit": {"file": {"persistence": {"accessModes": ["ReadWriteSometimes"]}}}},
        "at '/fluentBit/file/persistence/accessModes/0': value must be one of",
        id="unknown access mode",
    ),
    pytest.param(
        {"loging": {"file": {}}},
        "at '': additional properties 'loging' not allowed",
        id="unknown top-level key",
    ),
    pytest.param(
        {"retention": {"dayz": 3}},
        "at '/retention': additional properties 'dayz' not allowed",
        id="unknown nested key",
    ),
]


COLLECTOR_BAD_VALUES = [
    pytest.param(
        {"outputs": ["file"]},
        "at '/outputs/0': value must be one of 'stdout', 'es', 'opensearch', 'loki', 'forward'",
        id="no file output on nodes",
    ),
    pytest.param(
        {"storage": {"totalLimitSize": "lots"}},
        "at '/storage/totalLimitSize': 'lots' does not match pattern",
        id="bad storage limit",
    ),
    pytest.param({"retryLimit": 0}, "at '/retryLimit': minimum: got 0, want 1", id="no retries"),
    pytest.param({"retryLimit": "no_limits"}, "at '/retryLimit': got string, want integer", id="unlimited retries"),
    pytest.param(
        {"collect": {"label": "has space"}},
        "at '/collect/label': 'has space' does not match pattern",
        id="bad label key",
    ),
    pytest.param({"collect": {"regex": ""}}, "at '/collect/regex': minLength: got 0, want 1", id="empty regex"),
    pytest.param(
        {"tolerations": [{"operator": "Sometimes"}]},
        "at '/tolerations/0/operator': value must be one of",
        id="bad toleration",
    ),
    pytest.param({"scope": "all"}, "at '': additional properties 'scope' not allowed", id="unknown top-level key"),
]


@needs_helm
@pytest.mark.parametrize(("values", "message"), COLLECTOR_BAD_VALUES)
def test_collector_bad_values_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    error = render_error(values, chart=COLLECTOR)
    assert PREFIX in error
    assert message in error, error


@needs_helm
@pytest.mark.parametrize(("values", "message"), BAD_VALUES)
def test_bad_values_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    error = render_error(values)
    assert PREFIX in error
    assert message in error, error


@needs_helm
def test_read_write_once_file_claim_is_refused() -> None:
    values = {
        "collection": {"mode": "sidecar"},
        "fluentBit": {"outputs": ["file"], "file": {"persistence": {"accessModes": ["ReadWriteOnce"]}}},
    }
    assert "fluentBit.file.persistence.accessModes must include ReadWriteMany" in render_error(values)


@needs_helm
def test_api_key_needs_its_secret() -> None:
    values = {"collection": {"mode": "sidecar"}, "fluentBit": {"outputs": ["es"], "es": {"auth": {"apiKeyKey": "k"}}}}
    assert "fluentBit.es.auth.apiKeyKey needs fluentBit.es.auth.existingSecret" in render_error(values)
