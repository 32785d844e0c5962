"""NOTES.txt of both charts: commands that work on real output, and where the logs go."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.chart.helm import (
    COLLECTOR,
    COLLECTOR_FULLNAME,
    COLLECTOR_NAMESPACE,
    FULLNAME,
    NAMESPACE,
    needs_helm,
    notes,
)

pytestmark = needs_helm

# Non-JSON lines (a crash before logging starts, Fluent Bit's own text) must not abort jq.
JQ = """jq -R -c --arg id "$ID" 'fromjson? | select(.tracking_id==$id)'"""


def test_external_mode_prints_the_kubectl_logs_jq_command_and_what_the_collector_needs() -> None:
    text = notes()
    assert f"kubectl -n {NAMESPACE} logs deploy/{FULLNAME} -c app | {JQ}" in text
    assert "--tail=-1 --max-log-requests=20 | " + JQ in text
    assert "runs nothing node-wide" in text
    assert "Merge_Log On and\n      Keep_Log Off" in text
    assert "charts/examples/official-fluent-bit-values.yaml" in text
    assert "labelled tracking-logs.io/collect=true" in text
    assert "/demo/dependency" in text


def test_a_users_app_gets_no_demo_route() -> None:
    assert "/demo/dependency" not in notes({"app": {"module": "shop.api:app"}})


def test_sidecar_mode_points_at_the_files_and_the_sidecar() -> None:
    text = notes({"collection": {"mode": "sidecar"}})
    assert f'exec deploy/{FULLNAME} -c app -- python -m service logs "$ID"' in text
    assert f"logs deploy/{FULLNAME} -c fluent-bit | {JQ}" in text
    assert "-c app | jq" not in text  # the app's stdout is empty in sidecar mode
    also = notes({"collection": {"mode": "sidecar"}, "logging": {"file": {"alsoStdout": True}}})
    assert f"logs deploy/{FULLNAME} -c app | {JQ}" in also


def test_where_the_sidecar_ships_and_the_per_release_retention() -> None:
    outputs = ["es", "opensearch", "loki", "forward", "file"]
    text = notes({"collection": {"mode": "sidecar"}, "fluentBit": {"outputs": outputs}, "retention": {"days": 3}})
    assert f"daily indices {FULLNAME}-YYYY.MM.DD (this release's own prefix)" in text
    assert "Retention: not applied (retention.indexPolicy.enabled=false)" in text
    assert f"[{{selector: '{{job=\"{FULLNAME}\"}}', period: 72h, priority: 1}}]" in text
    assert f'{{job="{FULLNAME}"}} | json | tracking_id="<ID>"' in text
    assert "Retention is the receiver's business" in text
    assert f"the CronJob {FULLNAME}-retention deletes files older than 3 days" in text
    hook = notes(
        {
            "collection": {"mode": "sidecar"},
            "fluentBit": {"outputs": ["es"]},
            "retention": {"indexPolicy": {"enabled": True}},
        }
    )
    assert f"kubectl -n {NAMESPACE} logs job/{FULLNAME}-es-retention-" in hook
    assert "it never fails the release" in hook


def test_none_mode() -> None:
    text = notes({"collection": {"mode": "none"}})
    assert "nothing collects them" in text
    assert f"logs deploy/{FULLNAME} -c app | {JQ}" in text


def test_collector_notes() -> None:
    text = notes(chart=COLLECTOR)
    assert f"kubectl label namespace {COLLECTOR_NAMESPACE} pod-security.kubernetes.io/enforce=privileged" in text
    assert f"helm test logs -n {COLLECTOR_NAMESPACE}" in text
    assert f"rollout status ds/{COLLECTOR_FULLNAME}" in text
    assert JQ in text
    assert "No Prometheus Operator API" in text


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_jq_filter_survives_non_json_lines() -> None:
    """The NOTES' jq program on mixed output: JSON lines of two requests, a traceback, Fluent Bit's own text."""
    lines = [
        '{"tracking_id": "a", "message": "one"}',
        "Traceback (most recent call last):",
        "[2026/11/28 02:00:00] [ info] [fluent bit] version=5.1.1",
        '{"tracking_id": "b", "message": "other"}',
        '{"tracking_id": "a", "message": "two"}',
    ]
    done = subprocess.run(
        ["sh", "-c", f"ID=a; {JQ}"], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['{"tracking_id":"a","message":"one"}', '{"tracking_id":"a","message":"two"}']
    # the same program without -R and fromjson? aborts at the first text line:
    plain = subprocess.run(
        ["sh", "-c", """ID=a; jq -c --arg id "$ID" 'select(.tracking_id==$id)'"""],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode != 0
