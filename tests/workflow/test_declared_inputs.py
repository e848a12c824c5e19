"""Declared inputs equal reads, and declared config equals reads, for the model-free workflow stages.

A tiny two-dataset audit without models (manifest, features, blind, heatmap, splits, report)
runs with the config guard on (``LALM_AUDIT_CONFIG_GUARD=1``: a stage that reads a config key
its contract does not declare fails its job). Then one job of every rule is rebuilt in an empty
working directory that holds only that job's declared inputs, as a cluster that stages in
declared inputs would see it: a job that reads an undeclared file fails there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lalm_audit import stages
from tests.conftest import REPO, sine, write

ENV = {**os.environ, "LALM_AUDIT_CONFIG_GUARD": "1"}


def _dataset(root: Path, name: str, freq_nonmember: float) -> str:
    rows = []
    for k in range(20):
        label = k % 2
        path = write(root / name / f"{k}.wav", sine((220.0 if label else freq_nonmember) + k, 0.3))
        rows.append({"item_id": f"{name}-{k}", "audio_path": str(path), "text": f"word{k % 5} and more",
                     "speaker_id": "s", "label": label, "source_split": "x"})  # fmt: skip
    table = root / f"{name}.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return str(table)


def snakemake(workdir: Path, cfg: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(cfg), "--directory", str(workdir), "--cores", "1", *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)


def _jobs(log: str) -> list[dict]:
    """rule, inputs and outputs of every job a dry-run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \S+:\n)", log):
        m = re.match(r"(?:local)?rule (\S+):\n", block)
        if not m:
            continue
        files = {}
        for key in ("input", "output"):
            line = re.search(rf"^\s+{key}: (.*)$", block, re.MULTILINE)
            files[key] = line.group(1).split(", ") if line else []
        jobs.append({"rule": m.group(1), **files})
    return jobs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("declared")
    data = root / "data"
    cfg = {
        "datasets": {
            "alpha": {"loader": "table", "path": _dataset(data, "alpha", 880.0)},
            "beta": {"loader": "table", "path": _dataset(data, "beta", 225.0)},
        },
        "evaluation": {"bootstrap": 100},
        "features": {"groups": ["text"], "shards": 2},
        "blind": {"folds": 3, "gbt": {"max_iter": 5, "max_bins": 16},
                  "permutation_control": {"shuffles": 2}, "heatmap": {"folds": 3}},
    }  # fmt: skip
    cfg_path = root / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    full = root / "full"
    res = snakemake(full, cfg_path)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    return root, cfg_path, full


def test_every_stage_runs_under_the_config_guard(world):
    _, _, full = world
    for p in ("manifests/summary.tsv", "blind/heatmap.parquet", "splits/alpha/status.parquet",
              "report/tables/tables.html"):  # fmt: skip
        assert (full / "results" / p).is_file(), p


def test_every_job_succeeds_with_only_its_declared_inputs(world):
    root, cfg, full = world
    res = snakemake(full, cfg, "-n", "--forceall")
    assert res.returncode == 0, res.stderr[-3000:]
    first: dict[str, dict] = {}
    for job in _jobs(res.stdout + res.stderr):
        first.setdefault(job["rule"], job)
    first.pop("all")
    assert set(first) == {
        "manifest", "manifest_summary", "features_shard", "features_merge", "blind",
        "blind_heatmap", "splits", "report_tables",
    }  # fmt: skip
    assert set(first) <= set(stages.RULE_STAGE)
    for rule, job in first.items():
        iso = root / f"only-{rule}"
        for inp in job["input"]:
            if Path(inp).is_absolute():  # the dataset's own source files, outside the results
                continue
            (iso / inp).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(full / inp, iso / inp)
        res = snakemake(iso, cfg, *job["output"], "--allowed-rules", rule)
        assert res.returncode == 0, (
            f"{rule} with only its declared inputs:\n" + (res.stdout + res.stderr)[-4000:]
        )
        for out in job["output"]:
            assert (iso / out).exists(), (rule, out)
