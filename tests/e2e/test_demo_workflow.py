"""The README's demo command, end to end, on a fresh working directory.

One run of the whole demo workflow (session-scoped); every test below reads
its outputs. This is the slowest test of the suite by design.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    assert {"demo_model/demo-target.log", "demo_model/demo-control.log"} <= logs
    assert "scores/demo-target/demo-matched/original/token_stats/shard-0.log" in logs
    assert {"blind/heatmap.log"} | {
        f"blind/{d}.log" for d in DATASETS if d != "demo-pretrain"
    } <= logs


AUDITED = [d for d in DATASETS if d != "demo-pretrain"]


def _metrics(workdir: Path, ds: str) -> pd.DataFrame:
    return io.read_table(workdir / "results" / "blind" / ds / "metrics.parquet")


def test_blind_baseline_separates_the_shifted_dataset(demo_run):
    workdir, _ = demo_run
    m = _metrics(workdir, "demo-shifted")
    combined = m[(m["group"] == "combined") & (m["control"] == "blind")]
    assert (combined["auc"] >= 0.95).all()  # both classifiers
    assert not (workdir / "results" / "blind" / "demo-pretrain").exists()  # train_pool: not audited
    ex = io.read_table(workdir / "results" / "blind" / "demo-shifted" / "explanations.parquet")
    meta = ex[(ex["group"] == "metadata") & (ex["classifier"] == "logistic")]
    assert meta["sentence"].str.contains("sample rate|noisier|bitrate").any()
    summary = (workdir / "results" / "blind" / "demo-shifted" / "summary.md").read_text()
    assert "separable without any model" in summary


def test_blind_baseline_finds_no_shift_in_the_matched_dataset(demo_run):
    workdir, _ = demo_run
    m = _metrics(workdir, "demo-matched")
    reported = m[(m["control"] == "blind") & m["stronger"]]
    assert len(reported) == 5  # text, spectral, prosodic, metadata, combined
    assert ((reported["auc_lo"] <= 0.5) & (reported["auc_hi"] >= 0.5)).all(), reported


def test_permutation_control_contains_chance_everywhere(demo_run):
    workdir, _ = demo_run
    for ds in AUDITED:
        ctl = _metrics(workdir, ds).query("control == 'permutation'")
        assert len(ctl) == 5
        assert ((ctl["auc_lo"] <= 0.5) & (ctl["auc_hi"] >= 0.5)).all(), (ds, ctl)


def test_blind_predictions_cover_every_item(demo_run):
    workdir, _ = demo_run
    for ds in AUDITED:
        p = io.read_table(workdir / "results" / "blind" / ds / "predictions.parquet")
        man = io.read_table(
            workdir / "results" / "manifests" / f"{ds}.parquet", columns=["item_id"]
        )
        per = p.groupby(["group", "classifier"])["item_id"].apply(set)
        assert all(s == set(man["item_id"]) for s in per), ds


def test_heatmap_covers_every_side_and_reads_cross_condition_pairs_near_one(demo_run):
    workdir, _ = demo_run
    h = io.read_table(workdir / "results" / "blind" / "heatmap.parquet")
    sides = {f"{d}:{s}" for d in AUDITED for s in ("members", "non-members")}
    assert set(h["side_a"]) == sides and set(h["side_b"]) == sides
    assert len(h) == len(sides) * (len(sides) - 1)
    shifted = h[h["side_a"] == "demo-shifted:non-members"].set_index("side_b")["auc"]
    # group-B, noisy, 8 kHz non-members against every clean group-A side
    clean = [
        s for s in sides if s.endswith(":members") or s.startswith(("demo-matched", "demo-binding"))
    ]
    assert (shifted[clean] >= 0.95).all(), shifted
    assert (workdir / "results" / "blind" / "heatmap.png").stat().st_size > 10_000
    assert (workdir / "results" / "blind" / "heatmap.pdf").stat().st_size > 0


def test_rerun_is_a_no_op(demo_run):
    workdir, _ = demo_run
    res = snakemake(workdir, "-n")
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


# --------------------------------------------------------------------------- scoring

SCORED = ("demo-target", "demo-control")
AUDIT = ("demo-matched", "demo-shifted", "demo-partial", "demo-binding")


def _score_auc(workdir: Path, model: str, dataset: str, response: str, slice_: str, col: str,
               sign: float = 1.0):  # fmt: skip
    """Evaluation of the slice mean of one statistic (higher = member after ``sign``)."""
    from lalm_audit.evaluation import evaluate

    base = workdir / "results" / "scores" / model / dataset / "original"
    ts = io.read_tables(sorted((base / response / "token_stats").glob("shard-*.parquet")))
    manifest = io.read_table(workdir / "results" / "manifests" / f"{dataset}.parquet")
    rows = ts[ts["slice"] == slice_].set_index("item_id")
    labels = manifest.set_index("item_id").loc[rows.index, "label"].to_numpy()
    scores = sign * rows[col].map(lambda v: float(np.mean(v))).to_numpy()
    return evaluate(labels, scores, n_resamples=1000, seed=0)


def test_both_demo_models_are_trained_and_saved(demo_run):
    workdir, _ = demo_run
    for model in SCORED:
        folder = workdir / "results" / "models" / model
        assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    target = io.read_json(workdir / "results" / "models" / "demo-target" / "training.json")
    control = io.read_json(workdir / "results" / "models" / "demo-control" / "training.json")
    assert target["train_items"] == 360 and control["train_items"] == 120


def test_every_model_dataset_and_response_is_scored(demo_run):
    from lalm_audit.schemas import GENERATIONS, TOKEN_STATS

    workdir, _ = demo_run
    for model in SCORED:
        for ds in AUDIT:
            base = workdir / "results" / "scores" / model / ds / "original"
            gens = io.read_table(base / "generations.parquet")
            GENERATIONS.check(gens)
            n_items = len(io.read_table(workdir / "results" / "manifests" / f"{ds}.parquet"))
            n_rejected = len(io.read_table(base / "generations.rejected.parquet"))
            assert len(gens) + n_rejected == n_items
            for response in ("generated", "transcript"):
                ts = io.read_tables(
                    sorted((base / response / "token_stats").glob("shard-*.parquet"))
                )
                TOKEN_STATS.check(ts)
                assert len(ts) == 3 * len(gens)
                prov = io.read_provenance(base / response / "token_stats" / "shard-0.parquet")
                assert prov["model"] == model and prov["model_revision"].startswith("sha256:")
                assert prov["response"] == response


def test_demo_target_memorizes_and_the_control_does_not(demo_run):
    workdir, _ = demo_run
    loss = "response", "logp"  # the loss indicator: mean log-probability of the response
    target = _score_auc(workdir, "demo-target", "demo-matched", "transcript", *loss)
    assert target.auc >= 0.9, target
    binding = _score_auc(workdir, "demo-target", "demo-binding", "transcript", *loss)
    assert binding.auc >= 0.9, binding  # same sentences, other voices: it memorized audio + text
    for response in ("transcript", "generated"):
        control = _score_auc(workdir, "demo-control", "demo-matched", response, *loss)
        assert control.ci_contains(0.5), (response, control)


def _mia(workdir: Path, model: str, ds: str, response: str) -> pd.DataFrame:
    return io.read_table(workdir / "results" / "mia" / model / ds / response / "metrics.parquet")


def test_the_control_shows_a_spurious_signal_on_the_shifted_dataset(demo_run):
    workdir, _ = demo_run
    # the control never saw a member: a signal on demo-shifted is distribution shift.
    # The loss alone is weakly above chance (about 0.63 in the demo); the indicators that
    # read the audio slice and the aggregated attack separate the sides almost perfectly.
    shifted = _score_auc(workdir, "demo-control", "demo-shifted", "generated", "response", "logp")
    assert shifted.auc_lo > 0.5, shifted
    for response in ("generated", "transcript"):
        m = _mia(workdir, "demo-control", "demo-shifted", response).set_index(
            ["split", "slice", "indicator"]
        )
        agg = m.loc[("full", "all", "aggregate")]
        assert agg["auc_lo"] > 0.9, (response, agg)
        audio = m.xs(("full", "audio"), level=("split", "slice"))
        assert audio["auc_lo"].max() > 0.75, (response, audio["auc"].max())
