"""charts/examples/official-fluent-bit-values.yaml, the values NOTES give for the official fluent/helm-charts
`fluent-bit` chart: rendered with that chart (or the stand-in below) and run by the real Fluent Bit over CRI
lines from two pods, the app's `tracking_id` arrives top-level and its `@timestamp` is the record time.

The official chart is not vendored: set FLUENT_BIT_OFFICIAL_CHART to its directory (or .tgz), or let the test
`helm pull` it (needs network). Without it (CI is offline) the same run uses a stand-in: the config built the way
the chart's ConfigMap template builds it, from the snippet's values and a copy of the chart defaults the snippet
leaves alone; when the chart is available, a test checks that the stand-in renders exactly what the chart does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.chart.helm import CHARTS, ROOT, needs_helm
from tests.fluent_bit.support import (
    FakeKubeAPI,
    FluentBit,
    arrived_enough,
    container_log_name,
    poll,
    requires_fluent_bit,
    runtime_lines,
)

SNIPPET = CHARTS / "examples" / "official-fluent-bit-values.yaml"
OFFICIAL_VERSION = "0.58.1"
OFFICIAL_REPO = "https://fluent.github.io/helm-charts"
CACHE = ROOT / ".cache" / "charts"

# The stand-in: `config.service`, `config.inputs` and `config.outputs` (the values the snippet leaves to the chart),
# copied verbatim from fluent/helm-charts charts/fluent-bit/values.yaml at chart 0.58.1 (app 5.1.1) and loaded as
# YAML as helm loads them, and the defaults of the values they template in.
# test_stand_in_renders_what_the_official_chart_renders holds it to the real chart.
CHART_DEFAULTS: dict[str, str] = yaml.safe_load(
    """
config:
  service: |
    [SERVICE]
        Daemon Off
        Flush {{ .Values.flush }}
        Log_Level {{ .Values.logLevel }}
        Parsers_File /fluent-bit/etc/parsers.conf
        Parsers_File /fluent-bit/etc/conf/custom_parsers.conf
        HTTP_Server On
        HTTP_Listen 0.0.0.0
        HTTP_Port {{ .Values.metricsPort }}
        Health_Check On

  inputs: |
    [INPUT]
        Name tail
        Path /var/log/containers/*.log
        multiline.parser docker, cri
        Tag kube.*
        Mem_Buf_Limit 5MB
        Skip_Long_Lines On

    [INPUT]
        Name systemd
        Tag host.*
        Systemd_Filter _SYSTEMD_UNIT=kubelet.service
        Read_From_Tail On

  outputs: |
    [OUTPUT]
        Name es
        Match kube.*
        Host elasticsearch-master
        Logstash_Format On
        Retry_Limit False

    [OUTPUT]
        Name es
        Match host.*
        Host elasticsearch-master
        Logstash_Format On
        Logstash_Prefix node
        Retry_Limit False
"""
)["config"]
CHART_SCALARS: dict[str, object] = {"flush": 1, "logLevel": "info", "metricsPort": 2020}


def official_chart() -> Path:
    configured = os.environ.get("FLUENT_BIT_OFFICIAL_CHART")
    if configured:
        return Path(configured)
    cached = CACHE / f"fluent-bit-{OFFICIAL_VERSION}.tgz"
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        helm = shutil.which("helm")
        assert helm is not None
        pull = [helm, "pull", "fluent-bit", "--repo", OFFICIAL_REPO, "--version", OFFICIAL_VERSION, "-d", str(CACHE)]
        done = subprocess.run(pull, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 or not cached.exists():
            reason = done.stderr.strip()[:200]
            pytest.skip(f"the official fluent-bit chart is not available (set FLUENT_BIT_OFFICIAL_CHART): {reason}")
    return cached


def render_official_config() -> dict[str, str]:
    """The official chart's ConfigMap with the snippet, exactly as `helm install -f <snippet>` would make it."""
    helm = shutil.which("helm")
    assert helm is not None
    args = [
        helm,
        "template",
        "fb",
        str(official_chart()),
        "-f",
        str(SNIPPET),
        "--show-only",
        "templates/configmap.yaml",
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    data: dict[str, str] = yaml.safe_load(done.stdout)["data"]
    return data


def tpl(text: str) -> str:
    """Helm's `tpl` for the only expressions these values use; any other one is an error, not a guess."""
    return re.sub(r"\{\{ \.Values\.(\w+) \}\}", lambda m: str(CHART_SCALARS[m[1]]), text)


def nindent(text: str, width: int) -> str:
    """Helm's `nindent`: a newline, then every line (blank ones too) indented."""
    pad = " " * width
    return "\n" + pad + text.replace("\n", "\n" + pad)


def stand_in_config() -> dict[str, str]:
    """The official chart's ConfigMap `data` as templates/configmap.yaml (0.58.1) builds it from values: each value
    through `tpl` and `nindent 4` into a block scalar; the snippet's `config` over the stand-in defaults."""
    values = {**CHART_DEFAULTS, **yaml.safe_load(SNIPPET.read_text())["config"]}
    conf = "".join(nindent(tpl(values[key]), 4) for key in ("service", "inputs", "filters", "outputs"))
    template = "data:\n  custom_parsers.conf: |" + nindent(tpl(values["customParsers"]), 4)
    template += "\n  fluent-bit.conf: |" + conf + "\n"
    data: dict[str, str] = yaml.safe_load(template)["data"]
    return data


Section = tuple[str, list[tuple[str, str]]]


def sections(text: str) -> list[Section]:
    """A classic-format config as [(SECTION, [(key, value), ...]), ...]."""
    result: list[Section] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            result.append((line.strip("[]").upper(), []))
        else:
            key, _, value = line.partition(" ")
            result[-1][1].append((key, value.strip()))
    return result


def dump(parts: list[Section]) -> str:
    return "\n".join(f"[{name}]\n" + "".join(f"    {k} {v}\n" for k, v in pairs) for name, pairs in parts)


def get(pairs: list[tuple[str, str]], key: str) -> str | None:
    return next((v for k, v in pairs if k.lower() == key.lower()), None)


def adapt_for_this_machine(data: dict[str, str], workdir: Path, containers: Path, kube_url: str) -> Path:
    """Keep the chart's filters and parsers as rendered; point the node-specific parts at a scratch directory:
    the tail path, the API server, the parsers file, the HTTP port; the outputs become stdout JSON lines."""
    (workdir / "custom_parsers.conf").write_text(data["custom_parsers.conf"])
    token = workdir / "token"
    token.write_text("t\n")
    adapted: list[Section] = []
    for name, pairs in sections(data["fluent-bit.conf"]):
        if name == "SERVICE":
            # the image's stock parsers.conf is not needed by this pipeline; the chart's custom parsers are
            assert ("Parsers_File", "/fluent-bit/etc/conf/custom_parsers.conf") in pairs
            pairs = [(k, v) for k, v in pairs if k != "Parsers_File"]
            pairs = [(k, "${FLB_HTTP_PORT}" if k == "HTTP_Port" else v) for k, v in pairs]
            pairs.append(("Parsers_File", str(workdir / "custom_parsers.conf")))
        elif name == "INPUT" and get(pairs, "Name") == "systemd":
            continue  # the kubelet's journal: not part of this pipeline
        elif name == "INPUT":
            assert get(pairs, "Name") == "tail" and get(pairs, "Path") == "/var/log/containers/*.log"
            pairs = [(k, f"{containers}/*.log" if k == "Path" else v) for k, v in pairs]
            pairs.append(("Read_From_Head", "On"))
        elif name == "FILTER" and get(pairs, "Name") == "kubernetes":
            prefix = "kube." + str(containers).strip("/").replace("/", ".") + "."
            pairs = [*pairs, ("Kube_URL", kube_url), ("Kube_Token_File", str(token)), ("Kube_Tag_Prefix", prefix)]
        elif name == "OUTPUT":
            continue
        adapted.append((name, pairs))
    adapted.append(
        (
            "OUTPUT",
            [
                ("Name", "stdout"),
                ("Match", "kube.*"),
                ("Format", "json_lines"),
                ("Json_Date_Key", "record_time"),
                ("Json_Date_Format", "iso8601"),
            ],
        )
    )
    top = workdir / "fluent-bit.conf"
    top.write_text(dump(adapted))
    return top


def app_line(tracking_id: str, stamp: str, message: str) -> bytes:
    record = {"@timestamp": stamp, "level": "INFO", "name": "service", "tracking_id": tracking_id, "message": message}
    return orjson.dumps(record)


def test_the_snippet_only_touches_filters_and_parsers() -> None:
    # so the stand-in's copy of the chart defaults covers every other part of the config
    assert set(yaml.safe_load(SNIPPET.read_text())) == {"config"}
    assert set(yaml.safe_load(SNIPPET.read_text())["config"]) == {"filters", "customParsers"}


@needs_helm
def test_stand_in_renders_what_the_official_chart_renders() -> None:
    assert stand_in_config() == render_official_config()


CONFIG_SOURCES = [
    pytest.param(render_official_config, id="official-chart", marks=[needs_helm, *requires_fluent_bit]),
    pytest.param(stand_in_config, id="stand-in", marks=requires_fluent_bit),
]


@pytest.mark.parametrize("config_source", CONFIG_SOURCES)
def test_the_snippet_lifts_tracking_id(config_source: Callable[[], dict[str, str]], tmp_path: Path) -> None:
    data = config_source()
    filters = [dict(p) for n, p in sections(data["fluent-bit.conf"]) if n == "FILTER"]
    kubernetes = next(f for f in filters if f["Name"] == "kubernetes")
    assert (kubernetes["Merge_Log"], kubernetes["Keep_Log"]) == ("On", "Off")

    containers = tmp_path / "containers"
    containers.mkdir()
    pods = {"shop-7d9f8-abcde": "a" * 64, "billing-5c6b7-fghij": "b" * 64}
    stamps = ["2026-11-28T01:02:03.456Z", "2026-11-28T01:02:04.789Z"]
    sent: dict[str, tuple[str, str]] = {}
    for index, (pod, container_id) in enumerate(pods.items()):
        lines = [app_line(f"{pod}-{n}", stamps[n], f"line {n} of {pod}") for n in range(2)]
        sent |= {f"{pod}-{n}": (pod, stamps[n]) for n in range(2)}
        if index == 0:
            lines.append(b"Traceback (most recent call last): not JSON")
        name = container_log_name(pod, "shop", "app", container_id)
        (containers / name).write_bytes(runtime_lines(lines, "cri"))

    with FakeKubeAPI({"app.kubernetes.io/name": "tracking-service"}) as api:
        top = adapt_for_this_machine(data, tmp_path, containers, api.url)
        with FluentBit(top, tmp_path) as fluent_bit:
            records: list[dict[str, Any]] = poll(
                arrived_enough(fluent_bit.stdout_records, 5),
                timeout=60,
                what=f"5 records on stdout\n{fluent_bit.stderr_tail()}",
            )
            assert httpx.get(f"http://127.0.0.1:{fluent_bit.http_port}/", timeout=5).status_code == 200

    app_records = [r for r in records if "tracking_id" in r]
    assert sorted(r["tracking_id"] for r in app_records) == sorted(sent)
    for record in app_records:
        pod, stamp = sent[record["tracking_id"]]
        assert record["kubernetes"]["pod_name"] == pod
        assert record["message"].startswith("line ")  # the app's keys are top-level, not inside `log`
        assert "log" not in record
        assert "@timestamp" not in record  # moved into the record time, so ES writes it once
        record_time = datetime.fromisoformat(record["record_time"].replace("Z", "+00:00"))
        assert abs(record_time.timestamp() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()) < 0.001
    (plain,) = [r for r in records if "tracking_id" not in r]
    assert re.match(r"Traceback", plain["log"])
