"""Render the charts with the real helm binary (no cluster) and read the result as Kubernetes objects.

Renders are cached per (chart, values, release, namespace, API versions): the suite renders each once.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
CHART = CHARTS / "tracking-service"
COLLECTOR = CHARTS / "tracking-logs-collector"
FLUENT_BIT_SOURCE = ROOT / "fluent-bit"
FLUENT_BIT_COPY = CHART / "files" / "fluent-bit"
RELEASE = "demo"
NAMESPACE = "shop"
FULLNAME = f"{RELEASE}-tracking-service"
COLLECTOR_RELEASE = "logs"
COLLECTOR_NAMESPACE = "logging"
COLLECTOR_FULLNAME = f"{COLLECTOR_RELEASE}-tracking-logs-collector"
# What `--api-versions` adds for a cluster running the Prometheus Operator.
PROMETHEUS_OPERATOR = ("monitoring.coreos.com/v1",)

Obj = dict[str, Any]
Values = Mapping[str, Any]


def helm() -> str | None:
    return shutil.which("helm")


class HelmError(AssertionError):
    """helm exited non-zero; the message is its stderr."""


def _run(args: list[str], values: Values) -> str:
    binary = helm()
    assert binary, "helm is not on PATH"
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(values, handle)  # JSON is YAML: passed as a values file, so types survive exactly
        handle.flush()
        done = subprocess.run(
            [binary, *args, "--values", handle.name], capture_output=True, text=True, timeout=60, check=False
        )
    if done.returncode != 0:
        raise HelmError(done.stderr.strip())
    return done.stdout


def _key(values: Values) -> str:
    return json.dumps(values, sort_keys=True)


def _api_args(api_versions: tuple[str, ...]) -> list[str]:
    return [arg for version in api_versions for arg in ("--api-versions", version)]


@functools.cache
def _template(chart: Path, values_json: str, release: str, namespace: str, apis: tuple[str, ...]) -> tuple[Obj, ...]:
    args = ["template", release, str(chart), "--namespace", namespace, *_api_args(apis)]
    out = _run(args, json.loads(values_json))
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render(
    values: Values | None = None,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    *,
    chart: Path = CHART,
    api_versions: tuple[str, ...] = (),
) -> list[Obj]:
    """`helm template` a chart; every rendered object, in order. Raises HelmError on failure."""
    return list(_template(chart, _key(values or {}), release, namespace, api_versions))


def render_collector(
    values: Values | None = None, release: str = COLLECTOR_RELEASE, *, api_versions: tuple[str, ...] = ()
) -> list[Obj]:
    return render(values, release, COLLECTOR_NAMESPACE, chart=COLLECTOR, api_versions=api_versions)


def render_error(values: Values, *, chart: Path = CHART) -> str:
    """`helm template` must fail; its error message."""
    try:
        render(values, chart=chart, namespace=COLLECTOR_NAMESPACE if chart == COLLECTOR else NAMESPACE)
    except HelmError as exc:
        return str(exc)
    raise AssertionError(f"helm template accepted {values!r}")


def notes(values: Values | None = None, *, chart: Path = CHART) -> str:
    """NOTES.txt as `helm install --dry-run=client` prints it (no cluster involved)."""
    release, namespace = (COLLECTOR_RELEASE, COLLECTOR_NAMESPACE) if chart == COLLECTOR else (RELEASE, NAMESPACE)
    args = ["install", release, str(chart), "--namespace", namespace, "--dry-run=client"]
    out = _run(args, dict(values or {}))
    return out.split("NOTES:", 1)[1]


def lint(values: Values | None = None, *, chart: Path = CHART) -> str:
    return _run(["lint", "--strict", str(chart)], dict(values or {}))


# -- looking things up in a render -------------------------------------------------------------
def objects(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [d for d in objects(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_spec(obj: Obj) -> Obj:
    """The pod spec of a workload object (Deployment, DaemonSet, Job, CronJob)."""
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: Obj = spec["template"]["spec"]
    return result


def containers(obj: Obj) -> Iterator[Obj]:
    """Every container of a workload, init containers (native sidecars) included."""
    spec = pod_spec(obj)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def container(obj: Obj, name: str) -> Obj:
    found = [c for c in containers(obj) if c["name"] == name]
    assert len(found) == 1, f"no single container {name!r} in {obj['kind']}/{obj['metadata']['name']}"
    return found[0]


def env(c: Obj) -> dict[str, Any]:
    """A container's env as name -> value (or the valueFrom mapping)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


WORKLOAD_KINDS = ("Deployment", "DaemonSet", "Job", "CronJob")

needs_helm = pytest.mark.skipif(
    helm() is None, reason="helm is not on PATH (scripts/tools.sh installs the pinned one into .tools/bin)"
)
