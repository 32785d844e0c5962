"""values.schema.json: it describes every value, and bad values fail `helm template` with a clear message."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, needs_helm, render_error

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
PREFIX = "values don't meet the specifications of the schema(s)"


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _walk(values: dict[str, Any], node: dict[str, Any], path: str) -> list[str]:
    """Keys of values.yaml the schema does not describe, and described keys values.yaml lacks."""
    node = _resolve(node)
    props = node.get("properties")
    if props is None:  # a free-form map (annotations, resources, ...): described as a whole
        return []
    missing = [f"{path}.{k} not in the schema" for k in values if k not in props]
    missing += [f"{path}.{k} not in values.yaml" for k in props if k not in values]
    for key, value in values.items():
        if isinstance(value, dict) and key in props:
            missing += _walk(value, props[key], f"{path}.{key}")
    return missing


def test_schema_covers_every_value() -> None:
    assert _walk(VALUES, SCHEMA, "") == []


def test_objects_are_closed() -> None:
    """Every object with fixed keys rejects unknown ones (a typo fails instead of being ignored)."""

    def check(node: dict[str, Any], path: str) -> list[str]:
        bad = []
        if "properties" in node and node.get("additionalProperties") is not False:
            bad.append(path)
        for key, child in node.get("properties", {}).items():
            bad += check(child, f"{path}.{key}")
        return bad

    assert check(SCHEMA, "") == []
    for name, node in SCHEMA["definitions"].items():
        assert check(node, f"definitions.{name}") == []


BAD_VALUES = [
    pytest.param(
        {"logging": {"mode": "syslog"}},
        "at '/logging/mode': value must be one of 'stdout', 'file'",
        id="unknown mode",
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
        {"fluentBit": {"enabled": "yes"}},
        "at '/fluentBit/enabled': got string, want boolean",
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
        {"fluentBit": {"daemonset": {"scope": "cluster"}}},
        "at '/fluentBit/daemonset/scope': value must be one of 'release', 'all'",
        id="unknown scope",
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
        {"loging": {"mode": "file"}},
        "at '': additional properties 'loging' not allowed",
        id="unknown top-level key",
    ),
    pytest.param(
        {"retention": {"dayz": 3}},
        "at '/retention': additional properties 'dayz' not allowed",
        id="unknown nested key",
    ),
]


@needs_helm
@pytest.mark.parametrize(("values", "message"), BAD_VALUES)
def test_bad_values_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    error = render_error(values)
    assert PREFIX in error
    assert message in error, error


@needs_helm
def test_file_mode_needs_fluent_bit() -> None:
    error = render_error({"logging": {"mode": "file"}, "fluentBit": {"enabled": False}})
    assert "logging.mode=file needs fluentBit.enabled=true" in error
