"""helm lint --strict, and every mode x output combination rendered and validated strictly, offline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_validate import utils as kv

from tests.chart.combos import COMBOS
from tests.chart.helm import lint, needs_helm, render

pytestmark = needs_helm

# The chart's minimum (Chart.yaml kubeVersion), two current releases, and the newest schema shipped.
KUBE_VERSIONS = ("1.29", "1.32", "1.34", "1.37")


def test_kube_versions_are_shipped() -> None:
    shipped = {kv.major_minor(v) for v in kv.all_versions()}
    assert set(KUBE_VERSIONS) <= shipped, f"kubernetes-validate ships {sorted(shipped)}"


@pytest.mark.parametrize("combo", list(COMBOS))
def test_lint_strict(combo: str) -> None:
    assert "0 chart(s) failed" in lint(COMBOS[combo])


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


@pytest.mark.parametrize("combo", list(COMBOS))
def test_every_object_validates_strictly(combo: str) -> None:
    docs = render(COMBOS[combo])
    assert docs, "nothing rendered"
    for version in KUBE_VERSIONS:
        for obj in docs:
            _validate(obj, version)
