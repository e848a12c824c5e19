"""The README's demo command, end to end, on a fresh working directory.

One run of the whole demo workflow (session-scoped); every test below reads
its outputs. This is the slowest test of the suite by design.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lalm_audit import io
from lalm_audit.demo import DATASETS
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--profile", str(REPO / "profiles" / "default"),
        "--configfile", str(REPO / "config" / "demo.yaml"),
        "--directory", str(workdir),
        "--cores", "2",
        *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=3600)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("demo")
    res = snakemake(workdir)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-8000:]
    return workdir, log


def test_manifests_exist_for_all_five_demo_datasets(demo_run):
    workdir, _ = demo_run
    for ds in DATASETS:
        df = io.read_table(workdir / "results" / "manifests" / f"{ds}.parquet")
        assert len(df) > 0 and set(df["dataset"]) == {ds}
        prov = io.read_provenance(workdir / "results" / "manifests" / f"{ds}.parquet")
        assert prov["stage"] == "manifest" and prov["lalm_audit_version"]


def test_counts_reconcile_and_are_printed(demo_run):
    workdir, log = demo_run
    summary = pd.read_csv(workdir / "results" / "manifests" / "summary.tsv", sep="\t")
    assert list(summary["dataset"]) == list(DATASETS)
    assert (summary["items_in"] == summary["kept"] + summary["rejected"]).all()
    for ds in DATASETS:
        assert re.search(rf"{ds}: \d+ items in = \d+ kept \+ \d+ rejected", log), (
            f"no reconciliation line for {ds}"
        )


def test_every_job_has_a_log(demo_run):
    workdir, _ = demo_run
    logs = {
        p.relative_to(workdir / "results" / "logs").as_posix()
        for p in (workdir / "results" / "logs").rglob("*.log")
    }
    assert {"demo_data.log", "manifest/summary.log"} | {
        f"manifest/{d}.log" for d in DATASETS
    } <= logs


def test_rerun_is_a_no_op(demo_run):
    workdir, _ = demo_run
    res = snakemake(workdir, "-n")
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr
