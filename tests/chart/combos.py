"""The render matrix: every logging mode x every output, Fluent Bit off, and two everything-on variants."""

from __future__ import annotations

from typing import Any

MODES = ("stdout", "file")
OUTPUTS = ("stdout", "es", "opensearch", "loki", "forward", "file")

# Optional branches switched on, so strict validation sees them too.
_EXTRAS: dict[str, Any] = {
    "replicaCount": 3,
    "imagePullSecrets": [{"name": "regcred"}],
    "app": {
        "workers": 4,
        "preStopSleepSeconds": 5,
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "podAnnotations": {"team": "platform"},
        "podLabels": {"tier": "web"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        "priorityClassName": "high",
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "demo"}},
            }
        ],
    },
    "podDisruptionBudget": {"enabled": True, "minAvailable": None, "maxUnavailable": "25%"},
    "service": {"type": "NodePort", "annotations": {"a": "b"}},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}},
    "fluentBit": {
        "outputs": list(OUTPUTS),
        "extraEnv": [{"name": "FLUENT_EXTRA", "value": "x"}],
        "es": {"auth": {"existingSecret": "es-creds"}, "tls": True},
        "opensearch": {"auth": {"existingSecret": "os-creds"}},
        "loki": {"auth": {"existingSecret": "loki-creds"}, "tenantId": "team-a"},
        "daemonset": {
            "scope": "all",
            "mountDockerContainers": False,
            "priorityClassName": "system-node-critical",
            "podAnnotations": {"x": "y"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccount": {"annotations": {"a": "b"}},
        },
        "file": {"persistence": {"storageClassName": "nfs", "accessModes": ["ReadWriteMany"]}},
    },
}


def _combos() -> dict[str, dict[str, Any]]:
    combos: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        for output in OUTPUTS:
            combos[f"{mode}-{output}"] = {"logging": {"mode": mode}, "fluentBit": {"outputs": [output]}}
    combos["fluent-bit-disabled"] = {"fluentBit": {"enabled": False}}
    combos["stdout-everything"] = {**_EXTRAS, "logging": {"mode": "stdout"}}
    combos["file-everything"] = {
        **_EXTRAS,
        "logging": {"mode": "file", "file": {"alsoStdout": True, "gzip": True}},
        "fluentBit": {
            **_EXTRAS["fluentBit"],
            "sidecar": {"native": False},
            "file": {"persistence": {"existingClaim": "shared-logs"}},
        },
    }
    return combos


COMBOS = _combos()
