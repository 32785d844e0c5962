"""The fluent-bit/ files keep the contract the chart and compose rely on; the real binary accepts every
combination of one entry config and any outputs (`--dry-run` also rejects unknown property names)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fluent_bit.support import (
    ENTRY_CONFIGS,
    FLUENT_BIT_DIR,
    FLUENT_BIT_VERSION,
    OUTPUTS,
    dry_run,
    skip_without_fluent_bit,
    stage_config,
    top_includes,
)

CONFIG_FILES = sorted(FLUENT_BIT_DIR.glob("*.yaml"))
TOP_LEVEL_KEYS = {"service", "pipeline", "parsers", "multiline_parsers", "includes", "env"}
VARIABLE = re.compile(r"\$\{([^}:]+)(:-[^}]*)?\}")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


def test_the_directory_is_flat_yaml_plus_readme() -> None:
    """ConfigMap keys cannot contain '/': no subdirectories, only the YAML files and the README."""
    entries = sorted(p.name for p in FLUENT_BIT_DIR.iterdir())
    assert all((FLUENT_BIT_DIR / name).is_file() for name in entries), entries
    assert {name for name in entries if not name.endswith(".yaml")} == {"README.md"}
    expected = {f"{e}.yaml" for e in ENTRY_CONFIGS} | {f"output-{o}.yaml" for o in OUTPUTS} | {"filters.yaml"}
    assert {p.name for p in CONFIG_FILES} == expected


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_file_parses_as_fluent_bit_yaml(path: Path) -> None:
    """Each file is YAML whose top-level sections are Fluent Bit's YAML sections."""
    data = load(path)
    assert set(data) <= TOP_LEVEL_KEYS, set(data) - TOP_LEVEL_KEYS


@pytest.mark.parametrize("entry", ENTRY_CONFIGS)
def test_entry_configs_include_the_shared_filters_after_their_own(entry: str) -> None:
    """Included sections are read where the include stands: `includes` comes last, so an entry's own
    filters (kubernetes, partial-message join) run before the shared ones."""
    data = load(FLUENT_BIT_DIR / f"{entry}.yaml")
    assert list(data)[-1] == "includes"
    assert data["includes"] == ["filters.yaml"]
    assert data["service"]["http_server"] is True and data["service"]["health_check"] is True
    (source,) = data["pipeline"]["inputs"]
    assert "outputs" not in data["pipeline"], "outputs live in output-*.yaml"
    if entry == "node":
        assert source["multiline.parser"] == "docker, cri"
        (kube,) = [f for f in data["pipeline"]["filters"] if f["name"] == "kubernetes"]
        assert kube["merge_log"] is True and kube["keep_log"] is False
        assert source["storage.type"] == "filesystem" and "storage.path" in data["service"]
    if entry in {"node", "sidecar"}:
        assert source["name"] == "tail" and source["db"].startswith("${FLB_STATE_DIR:-")
    if entry == "compose":
        assert source["name"] == "forward"


def test_shared_filters_lift_json_and_take_the_app_timestamp() -> None:
    data = load(FLUENT_BIT_DIR / "filters.yaml")
    filters = data["pipeline"]["filters"]
    assert [(f["name"], f["key_name"]) for f in filters] == [("parser", "log"), ("parser", "@timestamp")]
    assert all(f["match"] == "*" and f["reserve_data"] is True for f in filters)
    parsers = {p["name"]: p for p in data["parsers"]}
    assert parsers[filters[0]["parser"]]["format"] == "json"
    assert parsers[filters[1]["parser"]]["time_key"] == "time"


@pytest.mark.parametrize("output", OUTPUTS)
def test_output_files_hold_one_output_for_every_record(output: str) -> None:
    """An output file is only `pipeline.outputs` with one output matching everything: any set of them can be
    included beside any entry config."""
    data = load(FLUENT_BIT_DIR / f"output-{output}.yaml")
    assert list(data) == ["pipeline"] and list(data["pipeline"]) == ["outputs"]
    (plugin,) = data["pipeline"]["outputs"]
    assert plugin["match"] == "*"


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def variables() -> dict[str, set[str]]:
    """Every ${VAR} in a value (not in comments) of the config files."""
    found: dict[str, set[str]] = {}
    for path in CONFIG_FILES:
        for name, default in VARIABLE.findall("\n".join(strings(load(path)))):
            assert default, f"${{{name}}} in {path.name} has no default (write ${{{name}:-...}})"
            found.setdefault(name, set()).add(path.name)
    return found


def test_every_variable_has_a_default_and_is_documented() -> None:
    """Production defaults are in the files; every knob is named FLB_* (no clash with Kubernetes service-link
    variables such as LOKI_PORT) and documented in fluent-bit/README.md."""
    readme = (FLUENT_BIT_DIR / "README.md").read_text()
    for name, files in variables().items():
        assert name.startswith("FLB_"), (name, files)
        assert f"`{name}`" in readme, f"{name} (used in {sorted(files)}) is not documented in the README"


def test_the_pinned_version_is_the_same_everywhere() -> None:
    readme = (FLUENT_BIT_DIR / "README.md").read_text()
    assert f"Fluent Bit {FLUENT_BIT_VERSION}" in readme
    compose = yaml.safe_load((FLUENT_BIT_DIR.parent / "compose.yaml").read_text())
    assert compose["services"]["fluent-bit"]["image"] == f"fluent/fluent-bit:{FLUENT_BIT_VERSION}"
    for entry in ENTRY_CONFIGS:
        assert f"Fluent Bit {FLUENT_BIT_VERSION}" in (FLUENT_BIT_DIR / f"{entry}.yaml").read_text()


COMBINATIONS = [(entry, (output,)) for entry in ENTRY_CONFIGS for output in OUTPUTS] + [
    (entry, OUTPUTS) for entry in ENTRY_CONFIGS
]


@pytest.mark.parametrize(
    ("entry", "outputs"), COMBINATIONS, ids=[f"{e}+{'+'.join(o) if len(o) < 3 else 'all'}" for e, o in COMBINATIONS]
)
@pytest.mark.fluentbit
@skip_without_fluent_bit
def test_dry_run_accepts_every_combination(tmp_path: Path, entry: str, outputs: tuple[str, ...]) -> None:
    """`fluent-bit --dry-run -c` on the top-level file the chart generates, with the production defaults."""
    top = stage_config(tmp_path, top_includes(entry, outputs))
    result = dry_run(top)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "configuration test is successful" in result.stdout + result.stderr


@pytest.mark.fluentbit
@skip_without_fluent_bit
def test_dry_run_rejects_an_unknown_property(tmp_path: Path) -> None:
    """The dry run above means something: a misspelt property fails it."""
    top = stage_config(tmp_path, top_includes("node", ["es"]))
    es = tmp_path / "output-es.yaml"
    es.write_text(es.read_text().replace("replace_dots:", "replace_dotz:"))
    result = dry_run(top)
    assert result.returncode != 0
    assert "replace_dotz" in result.stderr


@pytest.mark.fluentbit
@skip_without_fluent_bit
@pytest.mark.parametrize("entry", ENTRY_CONFIGS)
def test_fluent_bit_log_level_variable_is_honoured_not_fatal(tmp_path: Path, entry: str) -> None:
    """Fluent Bit 5.1.1 reads FLB_LOG_LEVEL itself and then rejects any `log_level` in the file, so the
    entry configs leave it out and the variable works."""
    assert "log_level" not in load(FLUENT_BIT_DIR / f"{entry}.yaml")["service"]
    top = stage_config(tmp_path, top_includes(entry, ["stdout"]))
    result = dry_run(top, {"FLB_LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stderr[-3000:]
