"""Names never collide: two releases in one namespace (the canary case), the longest release names Helm
accepts, and long names that share a prefix; and nothing of one release selects another's pods."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.combos import COLLECTOR_COMBOS, COMBOS
from tests.chart.helm import (
    COLLECTOR,
    NAMESPACE,
    PROMETHEUS_OPERATOR,
    needs_helm,
    objects,
    render,
)
from tests.chart.test_render import _validate_all

pytestmark = needs_helm

Obj = dict[str, Any]
# Helm refuses release names longer than 53 characters; these two share their first 50.
LONG = "a-release-name-that-is-as-long-as-helm-allows-it-x1"
LONG_TWIN = "a-release-name-that-is-as-long-as-helm-allows-it-x2"
# Name limits: DNS labels for most objects, 52 for CronJobs (the controller appends 11 characters).
LIMITS = {"CronJob": 52}
EVERYTHING = COMBOS["sidecar-everything"]


def names(docs: list[Obj]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def pod_labels(docs: list[Obj]) -> list[dict[str, str]]:
    return [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] == "Deployment"]


def selectors(docs: list[Obj]) -> list[dict[str, str]]:
    found = []
    for d in docs:
        if d["kind"] in ("Deployment", "PodDisruptionBudget"):
            found.append(d["spec"]["selector"]["matchLabels"])
        elif d["kind"] == "Service":
            found.append(d["spec"]["selector"])
        elif d["kind"] == "ServiceMonitor":
            found.append(d["spec"]["selector"]["matchLabels"])
    return found


@pytest.mark.parametrize(("first", "second"), [("shop", "shop-canary"), (LONG, LONG_TWIN), ("a-b", "a")])
def test_two_releases_in_one_namespace_share_nothing(first: str, second: str) -> None:
    one_docs = render(EVERYTHING, release=first, api_versions=PROMETHEUS_OPERATOR)
    two_docs = render(EVERYTHING, release=second, api_versions=PROMETHEUS_OPERATOR)
    assert not names(one_docs) & names(two_docs)
    for selector in selectors(one_docs):
        assert not [labels for labels in pod_labels(two_docs) if selects(selector, labels)], selector
    for selector in selectors(two_docs):
        assert not [labels for labels in pod_labels(one_docs) if selects(selector, labels)], selector
    # and each release's own objects select its own pods
    for selector in selectors(one_docs):
        assert [labels for labels in pod_labels(one_docs) if selects(selector, labels)], selector


@pytest.mark.parametrize("release", [LONG, "x"])
def test_the_longest_release_name_renders_valid_names(release: str) -> None:
    docs = render(EVERYTHING, release=release, api_versions=PROMETHEUS_OPERATOR)
    for obj in docs:
        name = obj["metadata"]["name"]
        assert len(name) <= LIMITS.get(obj["kind"], 63), (obj["kind"], name)
        for value in obj["metadata"].get("labels", {}).values():
            assert len(value) <= 63
    _validate_all(docs)


def test_two_collectors_in_two_namespaces_share_no_cluster_object() -> None:
    values = COLLECTOR_COMBOS["collector-stdout"]
    first = render(values, release="logs", namespace="a-b", chart=COLLECTOR)
    second = render(values, release="logs", namespace="a", chart=COLLECTOR)
    cluster_scoped = ("ClusterRole", "ClusterRoleBinding", "PriorityClass")
    assert not {n for n in names(first) if n[0] in cluster_scoped} & {
        n for n in names(second) if n[0] in cluster_scoped
    }
    state = [
        next(v["hostPath"]["path"] for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "state")
        for docs in (first, second)
        for d in objects(docs, "DaemonSet")
    ]
    assert len(set(state)) == 2


def test_the_canary_pods_are_not_the_releases() -> None:
    """The release's Service, PDB and ServiceMonitor select by the instance label, never a name prefix."""
    docs = render({"podDisruptionBudget": {"enabled": True}}, release="svc", namespace=NAMESPACE)
    canary = render({}, release="svc-canary", namespace=NAMESPACE)
    for selector in selectors(docs):
        assert selector["app.kubernetes.io/instance"] == "svc"
        assert not [labels for labels in pod_labels(canary) if selects(selector, labels)]
