"""The render matrices: the app chart in every collection mode (sidecar x every output), the collector with
every output, and everything-on variants of both."""

from __future__ import annotations

from typing import Any

OUTPUTS = ("stdout", "es", "opensearch", "loki", "forward", "file")
COLLECTOR_OUTPUTS = ("stdout", "es", "opensearch", "loki", "forward")

_TLS_ALL = {
    "enabled": True,
    "ca": {"existingSecret": "backend-ca", "key": "ca.pem"},
    "clientCert": {"existingSecret": "backend-client"},
}

# Optional branches switched on, so strict validation sees them too.
_EXTRAS: dict[str, Any] = {
    "replicaCount": 3,
    "imagePullSecrets": [{"name": "regcred"}],
    "app": {
        "workers": 4,
        "preStopSleepSeconds": 5,
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
        "envFrom": [{"secretRef": {"name": "app-secrets"}}],
        "extraVolumes": [{"name": "certs", "secret": {"secretName": "app-certs"}}],
        "extraVolumeMounts": [{"name": "certs", "mountPath": "/etc/app/certs", "readOnly": True}],
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
        "native": False,
        "extraEnv": [{"name": "FLUENT_EXTRA", "value": "x"}],
        "envFrom": [{"configMapRef": {"name": "fb-extra"}}],
        "extraVolumeMounts": [{"name": "certs", "mountPath": "/etc/extra", "readOnly": True}],
        "es": {"auth": {"existingSecret": "es-creds", "apiKeyKey": "api_key"}, "tls": _TLS_ALL},
        "opensearch": {"auth": {"existingSecret": "os-creds"}, "tls": _TLS_ALL},
        "loki": {"auth": {"existingSecret": "loki-creds"}, "tenantId": "team-a", "tls": _TLS_ALL},
        "forward": {"sharedKey": {"existingSecret": "fwd"}, "tls": _TLS_ALL},
        "file": {"persistence": {"existingClaim": "shared-logs"}},
    },
    "retention": {"indexPolicy": {"enabled": True, "auth": {"existingSecret": "es-admin"}}},
}


def _combos() -> dict[str, dict[str, Any]]:
    combos: dict[str, dict[str, Any]] = {"external": {}, "none": {"collection": {"mode": "none"}}}
    for output in OUTPUTS:
        combos[f"sidecar-{output}"] = {"collection": {"mode": "sidecar"}, "fluentBit": {"outputs": [output]}}
    combos["sidecar-everything"] = {
        **_EXTRAS,
        "collection": {"mode": "sidecar"},
        "logging": {"file": {"alsoStdout": True, "gzip": True}},
    }
    combos["external-everything"] = {
        **_EXTRAS,
        "app": {**_EXTRAS["app"], "command": ["gunicorn", "my.app:app"]},
        "metrics": {"port": 9100, "serviceMonitor": {"labels": {"release": "kps"}}},
    }
    return combos


def _collector_combos() -> dict[str, dict[str, Any]]:
    combos: dict[str, dict[str, Any]] = {f"collector-{o}": {"outputs": [o]} for o in COLLECTOR_OUTPUTS}
    combos["collector-everything"] = {
        "outputs": list(COLLECTOR_OUTPUTS),
        "imagePullSecrets": [{"name": "regcred"}],
        "es": {"auth": {"existingSecret": "es-creds"}, "tls": _TLS_ALL},
        "opensearch": {"auth": {"existingSecret": "os-creds"}, "tls": _TLS_ALL},
        "loki": {"auth": {"existingSecret": "loki-creds"}, "tenantId": "team-a", "tls": _TLS_ALL},
        "forward": {"sharedKey": {"existingSecret": "fwd"}, "tls": _TLS_ALL},
        "hotReload": {"enabled": False},
        "extraEnv": [{"name": "FLUENT_EXTRA", "value": "x"}],
        "envFrom": [{"secretRef": {"name": "fb-extra"}}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "mountDockerContainers": True,
        "priorityClass": {"create": False, "name": "system-node-critical"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
                    ]
                }
            }
        },
        "podAnnotations": {"x": "y"},
        "podLabels": {"team": "platform"},
        "serviceAccount": {"annotations": {"a": "b"}},
    }
    return combos


COMBOS = _combos()
COLLECTOR_COMBOS = _collector_combos()
