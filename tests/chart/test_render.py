"""helm lint --strict, and every mode x output combination of both charts rendered and validated strictly,
offline, on four Kubernetes versions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_validate import utils as kv

from tests.chart.combos import COLLECTOR_COMBOS, COMBOS
from tests.chart.helm import (
    CHART,
    COLLECTOR,
    PROMETHEUS_OPERATOR,
    lint,
    needs_helm,
    render,
    render_collector,
)

pytestmark = needs_helm

# The charts' minimum (Chart.yaml kubeVersion), two current releases, and the newest schema shipped.
KUBE_VERSIONS = ("1.29", "1.32", "1.34", "1.37")
# Prometheus Operator CRDs: kubernetes-validate has no schema for them; test_monitoring.py checks them.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def test_kube_versions_are_shipped() -> None:
    shipped = {kv.major_minor(v) for v in kv.all_versions()}
    assert set(KUBE_VERSIONS) <= shipped, f"kubernetes-validate ships {sorted(shipped)}"


@pytest.mark.parametrize("combo", list(COMBOS))
def test_lint_strict(combo: str) -> None:
    assert "0 chart(s) failed" in lint(COMBOS[combo])


@pytest.mark.parametrize("combo", list(COLLECTOR_COMBOS))
def test_collector_lint_strict(combo: str) -> None:
    assert "0 chart(s) failed" in lint(COLLECTOR_COMBOS[combo], chart=COLLECTOR)


_validated: set[tuple[str, str]] = set()


def _validate(obj: dict[str, Any], version: str) -> None:
    key = (json.dumps(obj, sort_keys=True), version)
    if key in _validated:  # the same object in several combinations is validated once
        return
    try:
        kv.validate(obj, version, strict=True)
    except kv.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        raise AssertionError(f"{name} invalid for {version}: {where}: {exc.message}") from None
    except kv.SchemaNotFoundError as exc:
        raise AssertionError(exc.message) from None
    _validated.add(key)


def _validate_all(docs: list[dict[str, Any]]) -> None:
    assert docs, "nothing rendered"
    for version in KUBE_VERSIONS:
        for obj in docs:
            if obj["kind"] not in CUSTOM_KINDS:
                _validate(obj, version)


@pytest.mark.parametrize("combo", list(COMBOS))
def test_every_object_validates_strictly(combo: str) -> None:
    _validate_all(render(COMBOS[combo], api_versions=PROMETHEUS_OPERATOR))


@pytest.mark.parametrize("combo", list(COLLECTOR_COMBOS))
def test_every_collector_object_validates_strictly(combo: str) -> None:
    _validate_all(render_collector(COLLECTOR_COMBOS[combo], api_versions=PROMETHEUS_OPERATOR))


def test_both_charts_accept_helm_globals() -> None:
    """Helm passes `global` to every chart (and a parent chart sets it): a closed schema must allow it."""
    values = {"global": {"imageRegistry": "registry.example", "storageClass": "fast"}}
    assert render(values)
    assert render_collector(values)
    assert CHART != COLLECTOR
