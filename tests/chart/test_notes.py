"""NOTES.txt: the command that finds a request by tracking ID, and where the logs go."""

from __future__ import annotations

from tests.chart.helm import FULLNAME, NAMESPACE, needs_helm, notes

pytestmark = needs_helm

JQ = """jq -c --arg id "$ID" 'select(.tracking_id==$id)'"""


def test_stdout_mode_prints_the_kubectl_logs_jq_command() -> None:
    text = notes()
    assert f"kubectl -n {NAMESPACE} logs deploy/{FULLNAME} -c app | {JQ}" in text
    assert "app.kubernetes.io/component=fluent-bit --tail=-1 | " + JQ in text
    assert "stdout of the Fluent Bit containers" in text
    assert 'Pod Security "privileged"' in text


def test_file_mode_points_at_the_files_and_the_sidecar() -> None:
    text = notes({"logging": {"mode": "file"}})
    assert f'exec deploy/{FULLNAME} -c app -- python -m service logs "$ID"' in text
    assert f"logs deploy/{FULLNAME} -c fluent-bit | {JQ}" in text
    assert "-c app | jq" not in text  # the app's stdout is empty in file mode
    assert f"logs deploy/{FULLNAME} -c app | {JQ}" in notes({"logging": {"mode": "file", "file": {"alsoStdout": True}}})


def test_where_the_logs_go_and_their_retention() -> None:
    text = notes({"fluentBit": {"outputs": ["es", "opensearch", "loki", "forward", "file"]}, "retention": {"days": 3}})
    assert "ILM policy tracking-service-retention deletes them after 3 days (PUT by the post-install hook Job)" in text
    assert "ISM policy tracking-service-retention deletes them after 3 days" in text
    assert "limits_config.retention_period: 72h" in text
    assert f'{{job="{FULLNAME}"}} | json | tracking_id="<ID>"' in text
    assert "Retention is the receiver's business" in text
    assert f"the CronJob {FULLNAME}-retention deletes files older than 3 days" in text
    assert "needs ReadWriteMany" in text


def test_without_fluent_bit() -> None:
    text = notes({"fluentBit": {"enabled": False}})
    assert "Fluent Bit is disabled" in text
    assert f"logs deploy/{FULLNAME} -c app | {JQ}" in text
