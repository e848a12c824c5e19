"""Incremental re-audits, proven on the demo config by the jobs a dry-run schedules (not by timing).

A "finished" demo results tree is faked in seconds: every output of a dry-run is created empty,
then ``snakemake --touch --forceall`` stamps them in DAG order and records their metadata (the
params and code the rerun triggers compare against). Each test then changes one thing (a
``--configfile`` overlay or an edited copy of the package) and asserts on the scheduled jobs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lalm_audit import stages
from lalm_audit.config import load_config
from tests.conftest import REPO

DEMO = REPO / "config" / "demo.yaml"

#: Jobs that summarize across datasets or models (they rerun when any of their inputs does).
SUMMARIES = {"manifest_summary", "blind_heatmap", "mia_summary", "report_tables", "all"}
MODEL_PASSES = {"demo_model", "generate", "merge_generations", "score", "score_perturbed"}


def _snakemake(
    workdir: Path, *args: str, pythonpath: Path = REPO / "src", overlay: dict | None = None
):
    configs = [str(DEMO)]
    if overlay is not None:
        path = workdir / "overlay.yaml"
        path.write_text(yaml.safe_dump(overlay))
        configs.append(str(path))
    env = {**os.environ, "PYTHONPATH": f"{pythonpath}{os.pathsep}{REPO}"}
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", "1", "--configfile", *configs, *args,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return res.stdout + res.stderr


def _jobs(log: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry-run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \S+:\n)", log):
        m = re.match(r"(?:local)?rule (\S+):\n", block)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)
        pairs = (p.split("=", 1) for p in wc.group(1).split(", ")) if wc else ()
        jobs.append((m.group(1), dict(pairs)))
    return jobs


def _rules(jobs) -> set[str]:
    return {rule for rule, _ in jobs}


def dry_run(workdir: Path, **kw) -> list[tuple[str, dict[str, str]]]:
    return _jobs(_snakemake(workdir, "-n", **kw))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A demo results tree whose every job looks done (empty files, recorded metadata)."""
    root = tmp_path_factory.mktemp("incremental")
    log = _snakemake(root, "-n")
    for line in re.findall(r"^\s+output: (.*)$", log, re.MULTILINE):
        for out in line.split(", "):
            path = root / out
            if path.suffix:  # the only suffix-less outputs are directory() outputs
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)
    _snakemake(root, "--touch", "--forceall", "--quiet")
    return root


def test_a_second_run_schedules_nothing(finished):
    assert dry_run(finished) == []


def test_adding_a_model_runs_only_its_jobs_and_the_cross_model_summaries(finished):
    overlay = {"models": {"new-model": {"family": "qwen2_audio", "path_or_hub_id": "/models/new",
                                        "device": "cpu", "dtype": "float32"}}}  # fmt: skip
    jobs = dry_run(finished, overlay=overlay)
    others = {(r, w.get("model")) for r, w in jobs if w.get("model") != "new-model"}
    assert others <= {(r, None) for r in {"mia_summary", "report_tables", "all"}}
    assert {
        "generate",
        "score",
        "indicators",
        "mia",
        "correlation",
        "roc",
        "mia_summary",
    } <= _rules(jobs)


def test_changing_an_indicator_setting_runs_no_model_pass(finished):
    jobs = dry_run(finished, overlay={"indicators": {"k_grid": [0, 10, 100]}})
    assert not _rules(jobs) & (MODEL_PASSES | {"manifest", "features_shard", "blind", "splits"})
    assert {"indicators", "mia", "correlation", "disentangle", "roc", "report_tables"} <= _rules(
        jobs
    )
    # every indicator table is recomputed, each from its stored token statistics
    assert sum(r == "indicators" for r, _ in jobs) == 32


def test_changing_only_the_aggregate_attack_keeps_the_indicator_tables(finished):
    jobs = dry_run(finished, overlay={"indicators": {"aggregate": {"C": 0.5}}})
    assert "indicators" not in _rules(jobs) and "mia" in _rules(jobs)


def test_adding_a_dataset_runs_only_its_jobs_the_heatmap_and_the_report(finished):
    (finished / "extra").mkdir(exist_ok=True)
    (finished / "extra" / "items.csv").write_text("item_id\n")  # read by the manifest job only
    overlay = {"datasets": {"extra": {"loader": "table", "path": "extra/items.csv"}}}
    jobs = dry_run(finished, overlay=overlay)
    # demo-target is defined to train on every audit dataset's members (config/demo.yaml), so
    # it retrains; demo-control trains on the pool only, and none of its other jobs rerun
    others = {r for r, w in jobs if w.get("dataset") != "extra" and w.get("model") != "demo-target"}
    assert others == SUMMARIES | {"demo_model"}
    assert ("demo_model", {"demo_model": "demo-target"}) in jobs
    assert ("demo_model", {"demo_model": "demo-control"}) not in jobs
    rules = {"manifest", "features_shard", "blind", "splits", "generate", "score", "mia"}
    assert rules <= {r for r, w in jobs if w.get("dataset") == "extra"}


def test_changing_the_seed_reruns_every_seed_dependent_job_and_no_other_model_pass(finished):
    jobs = dry_run(finished, overlay={"seed": 99})
    scheduled = {(r, tuple(sorted(w.items()))) for r, w in jobs}
    everything = _jobs(_snakemake(finished, "-n", "--forceall"))
    cfg = load_config(DEMO)
    seed_readers = {
        (r, tuple(sorted(w.items())))
        for r, w in everything
        if r in stages.RULE_STAGE and "seed" in stages.get(r).declared(cfg, w)
    }
    assert {r for r, _ in seed_readers} == {
        "blind", "blind_heatmap", "splits", "perturb", "mia", "correlation", "disentangle",
        "controlled_blind",
    }  # fmt: skip
    assert seed_readers <= scheduled
    # the manifests (not subsampled), features and every model pass on the original audio stay
    assert not _rules(jobs) & {"manifest", "features_shard", "features_merge", "demo_model"}
    passes = {w["condition"] if r != "score" else "original" for r, w in jobs if r in MODEL_PASSES}
    assert passes == set(cfg.perturb.conditions)  # only the perturbed audio is new


def test_changing_a_heatmap_setting_reruns_only_the_heatmap(finished):
    # The heatmap feeds the Snakemake report (--report), not the tables: nothing else reruns.
    jobs = dry_run(finished, overlay={"blind": {"heatmap": {"folds": 3}}})
    assert _rules(jobs) == {"blind_heatmap", "all"}


def _edited_package(tmp: Path, module: str, text: str) -> Path:
    src = tmp / "src"
    shutil.copytree(REPO / "src" / "lalm_audit", src / "lalm_audit")
    path = src / "lalm_audit" / module
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return src


def test_editing_a_stage_module_reruns_that_stage_and_what_is_downstream(finished, tmp_path):
    src = _edited_package(tmp_path, "splits.py", "\n_EDITED = True\n")
    jobs = dry_run(finished, pythonpath=src)
    assert _rules(jobs) == {
        "splits", "mia", "correlation", "disentangle", "roc", "mia_summary", "report_tables", "all",
    }  # fmt: skip


def test_a_comment_or_an_unrelated_module_reruns_nothing(finished, tmp_path):
    src = _edited_package(tmp_path / "a", "blind.py", "\n# a comment only\n")
    assert dry_run(finished, pythonpath=src) == []
    src = _edited_package(tmp_path / "b", "cli.py", "\n_EDITED = True\n")
    assert dry_run(finished, pythonpath=src) == []
