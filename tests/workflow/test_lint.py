"""Static checks of the workflow and the code: lint, formatting, a dry run."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BIN = [sys.executable, "-m"]


def run(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_snakemake_lint_is_clean():
    res = run(*BIN, "snakemake", "--lint")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Congratulations" in res.stdout + res.stderr


def test_snakefmt_is_clean():
    res = run(*BIN, "snakefmt", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_is_clean():
    res = run(*BIN, "ruff", "check", ".")
    assert res.returncode == 0, res.stdout + res.stderr
    res = run(*BIN, "ruff", "format", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_import_contract_holds():
    """Layers (entry points > report > studies > stages > render > verdicts > core) and no cycle
    between siblings, read from [tool.importlinter] in pyproject.toml. import-linter's graph
    includes imports inside functions, so none can hide a cycle."""
    lint = Path(sys.executable).with_name("lint-imports")
    res = run(str(lint), "--no-cache")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "2 kept, 0 broken" in out, out


def test_demo_dry_run_plans_every_stage(tmp_path):
    res = run(
        *BIN,
        "snakemake",
        "-n",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--quiet",
        "rules",
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    for rule in (
        "demo_data",
        "manifest",
        "manifest_summary",
        "features_shard",
        "features_merge",
        "blind",
        "blind_heatmap",
        "perturb",
        "demo_model",
        "generate",
        "score",
        "indicators",
        "mia",
        "disentangle",
        "splits",
        "correlation",
        "roc",
        "report_tables",
    ):
        assert rule in out


@pytest.mark.parametrize(
    ("patch", "needle"),
    [("sed: 1\n", "unknown key 'sed'"), ("audio: {long_clip_policy: drop}\n", "long_clip_policy")],
)
def test_bad_config_stops_the_workflow_with_the_key_named(tmp_path, patch, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text((REPO / "config" / "demo.yaml").read_text() + patch)
    res = run(
        *BIN,
        "snakemake",
        "-n",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(cfg),
    )
    assert res.returncode != 0
    assert needle in res.stdout + res.stderr


def test_cli_help_lists_the_stages():
    res = run(sys.executable, "-m", "lalm_audit.cli", "--help")
    assert res.returncode == 0
    for cmd in (
        "demo-data",
        "manifest",
        "config-schema",
        "check-config",
        "demo-model",
        "generate",
        "score",
        "features",
        "blind",
        "heatmap",
        "splits",
        "indicators",
        "mia",
        "perturb",
        "correlation",
        "report",
    ):
        assert cmd in res.stdout
