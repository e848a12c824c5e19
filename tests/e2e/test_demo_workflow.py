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
        "--profile", str(REPO / "profiles" / "local"),
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
    verdict = io.read_json(workdir / "results" / "blind" / "demo-shifted" / "verdict.json")
    # the family-wise permutation test: the observed max beats all 19 shuffles (smallest p)
    assert verdict["state"] == "shifted" and verdict["p_value"] == pytest.approx(1 / 20), verdict


def test_blind_baseline_finds_no_shift_in_the_matched_dataset(demo_run):
    workdir, _ = demo_run
    m = _metrics(workdir, "demo-matched")
    checks = m[m["control"] == "blind"]
    assert (
        len(checks) == 6
    )  # text, spectral, prosodic, metadata, combined (logistic) + combined (trees)
    verdict = io.read_json(workdir / "results" / "blind" / "demo-matched" / "verdict.json")
    # no shift detected; at 60 items per class the margin cannot be certified: inconclusive
    assert verdict["state"] == "inconclusive" and verdict["p_value"] >= 0.15, verdict
    assert verdict["items_to_certify"] > 60
    # the demo's speakers are known: folds keep each speaker's items together
    assert checks["fold_grouping"].str.contains("speaker").all()


def test_permutation_control_contains_chance_everywhere(demo_run):
    workdir, _ = demo_run
    for ds in AUDITED:
        ctl = _metrics(workdir, ds).query("control == 'permutation'")
        assert len(ctl) == 6 and (ctl["shuffles"] == 19).all()
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
        assert control.auc_lo < 0.45, (response, control)  # no evidence of a signal above chance


def _mia(workdir: Path, model: str, ds: str, response: str) -> pd.DataFrame:
    return io.read_table(workdir / "results" / "mia" / model / ds / response / "metrics.parquet")


def test_the_control_shows_a_spurious_signal_on_the_shifted_dataset(demo_run):
    workdir, _ = demo_run
    # the control never saw a member: a signal on demo-shifted is distribution shift.
    # The indicators that read the audio slice and the aggregated attack separate the sides
    # almost perfectly (the loss alone sits near chance and is not asserted on).
    for response in ("generated", "transcript"):
        m = _mia(workdir, "demo-control", "demo-shifted", response).set_index(
            ["split", "slice", "indicator"]
        )
        agg = m.loc[("full", "all", "aggregate")]
        assert agg["auc_lo"] > 0.9, (response, agg)
        # the audio slice's entropies separate the noisy 8 kHz non-members from the members, in
        # whichever direction this model's entropies happen to run (a shift, not memorization)
        audio = m.xs(("full", "audio"), level=("split", "slice"))
        assert (audio["auc"] - 0.5).abs().max() > 0.3, (response, audio["auc"].describe())


# --------------------------------------------------------------------------- clean splits (issue 4)


def _split(workdir: Path, ds: str, method: str = "filter") -> tuple[set[str], dict]:
    base = workdir / "results" / "splits" / ds
    kept = set(io.read_table(base / f"{method}.parquet")["item_id"])
    return kept, io.read_json(base / f"{method}.json")


def test_partial_clean_split_keeps_the_core_and_drops_the_replaced_items(demo_run):
    workdir, _ = demo_run
    man = io.read_table(workdir / "results" / "manifests" / "demo-partial.parquet")
    role = man.set_index("item_id")["meta_role"]
    for method in ("filter", "match"):
        kept, summary = _split(workdir, "demo-partial", method)
        core = role[role == "core"].index
        replaced = role[role == "replaced"].index
        core_kept = core.isin(list(kept)).mean()
        replaced_removed = 1 - replaced.isin(list(kept)).mean()
        assert core_kept >= 0.7 and replaced_removed >= 0.9, (method, core_kept, replaced_removed)
        # not detectably shifted once the replaced items are gone (41 / 41 items cannot certify
        # the margin: inconclusive, with the size that would)
        assert summary["at_chance"] and summary["state"] != "shifted", summary
        assert summary["verdict_rule"]["p_value"] >= 0.15, summary


def test_matched_keeps_most_items_and_shifted_is_not_auditable(demo_run):
    workdir, _ = demo_run
    n = len(io.read_table(workdir / "results" / "manifests" / "demo-matched.parquet"))
    kept, summary = _split(workdir, "demo-matched")
    assert len(kept) >= 0.9 * n and summary["at_chance"], (len(kept), n)
    status = io.read_table(workdir / "results" / "splits" / "demo-shifted" / "status.parquet")
    st = status.set_index("split")
    for method in ("filter", "match"):
        assert not st.loc[method, "at_chance"]
        assert st.loc[method, "verdict"].startswith("not auditable free of distribution shift"), st
    # and every later result on demo-shifted says so
    m = _mia(workdir, "demo-target", "demo-shifted", "transcript")
    assert m["confounded"].all()
    assert "CONFOUNDED" in (workdir / "results" / "mia" / "summary.md").read_text()


def test_the_mia_summary_counts_the_audit_wide_tests(demo_run):
    """The headline says how many aggregate tests fired out of how many, what chance would give,
    and that 19 shuffles cannot support a family-wise reading of the demo's 48 tests."""
    workdir, _ = demo_run
    table = io.read_table(workdir / "results" / "mia" / "summary.parquet")
    n, fired = table["p_perm"].notna().sum(), (table["agg_verdict"] == "signal").sum()
    text = (workdir / "results" / "mia" / "summary.md").read_text()
    assert f"Audit-wide: {fired} of {n} aggregate tests read 'signal' at alpha = 0.05" in text
    assert f"about {n * 0.05:.1f} would by chance" in text
    assert "Holm over the audit's" in text and "aggregate_shuffles >= " in text


# --------------------------------------------------------------------------- correlation, disentanglement, report


def _adjusted(workdir: Path, model: str, ds: str, response: str) -> pd.DataFrame:
    p = workdir / "results" / "correlation" / model / ds / response / "adjusted.parquet"
    return io.read_table(p).set_index(["split", "slice", "indicator"])


def test_the_control_signal_on_shifted_data_is_never_called_membership(demo_run):
    from lalm_audit.mia import headline
    from lalm_audit.verdicts import is_membership_signal

    workdir, _ = demo_run
    a = _adjusted(workdir, "demo-control", "demo-shifted", "transcript").loc[
        ("full", "all", "aggregate")
    ]
    assert a["auc_lo"] > 0.9 and abs(a["pearson_r"]) >= 0.7, a
    # explained by the artifacts, or at least not attributable: never a membership signal
    assert a["verdict"].startswith(("SPURIOUS", "NOT IDENTIFIABLE")), a["verdict"]
    for response in ("transcript", "generated"):
        adj = _adjusted(workdir, "demo-control", "demo-shifted", response)
        called = [v for v in adj["verdict"] if is_membership_signal(v)]
        assert not called, (response, called)
        m = _mia(workdir, "demo-control", "demo-shifted", response)
        assert m["confounded"].all()  # every split of demo-shifted is shifted
        words = set(headline(m)["agg_verdict"])
        assert words <= {"NOT IDENTIFIABLE (shifted split)", "no signal"}, words
    table = (
        workdir
        / "results"
        / "correlation"
        / "demo-control"
        / "demo-shifted"
        / "transcript"
        / "adjusted.md"
    )
    assert "SPURIOUS" in table.read_text() or "NOT IDENTIFIABLE" in table.read_text()


def test_real_memorization_on_matched_data_survives_the_adjustment(demo_run):
    workdir, _ = demo_run
    a = _adjusted(workdir, "demo-target", "demo-matched", "transcript").loc[
        ("full", "response", "loss")
    ]
    assert a["auc"] >= 0.9 and abs(a["pearson_r"]) < 0.4, a
    assert a["adjusted_lo"] > 0.8, a
    assert a["verdict"].startswith("membership signal beyond"), a["verdict"]


def test_binding_disentanglement(demo_run):
    workdir, _ = demo_run
    d = io.read_table(
        workdir / "results" / "disentangle" / "demo-target" / "demo-binding" / "transcript.parquet"
    )
    full = d[
        (d["split"] == "full") & (d["slice"] == "response") & (d["indicator"] == "loss")
    ].set_index("condition")
    assert full.loc["original", "auc_lo"] > 0.5
    # fixed-length silence + the transcript: member and non-member inputs are identical
    assert full.loc["silence", "auc"] == 0.5
    assert full.loc["silence", "significant"]
    res = full.loc["resynthesis"]
    assert np.isfinite([res["auc_lo"], res["auc_hi"], res["p_holm"]]).all()
    assert (
        workdir / "results" / "disentangle" / "demo-target" / "demo-binding" / "transcript.png"
    ).stat().st_size > 5000


def test_report_tables_figures_and_html(demo_run):
    workdir, _ = demo_run
    tables = workdir / "results" / "report" / "tables"
    for name in ("blind", "splits", "mia", "adjusted", "disentangle"):
        md, tex = (tables / f"{name}.md").read_text(), (tables / f"{name}.tex").read_text()
        assert "|" in md and "\\begin{tabular}" in tex, name
    assert "not auditable free of distribution shift" in (tables / "splits.md").read_text()
    # the blind table carries each dataset's clean-split verdicts
    blind = (tables / "blind.md").read_text()
    assert "filter: NOT AUDITABLE, 40 items" in blind and "full: SHIFTED" in blind
    assert "filter: inconclusive" in blind
    figures = [
        "blind/heatmap", "splits/demo-partial/filter.before_after",
        "report/roc/demo-target/demo-matched/transcript", "correlation/demo-control/demo-shifted/transcript/scatter",
        "disentangle/demo-target/demo-binding/transcript",
    ]  # fmt: skip
    for f in figures:
        for ext in ("png", "pdf"):
            assert (workdir / "results" / f"{f}.{ext}").stat().st_size > 5000, f
    res = snakemake(workdir, "--report", "results/report.html")
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    page = (workdir / "results" / "report.html").read_text(errors="replace")
    assert len(page) > 100_000
    for needle in ("Blind baseline", "Clean splits", "Correlation with blind artifacts", "Modality disentanglement",
                   "heatmap.png", "tables.html"):  # fmt: skip
        assert needle in page, needle


def test_on_the_clean_matched_split_the_target_memorizes_and_the_control_does_not(demo_run):
    workdir, _ = demo_run
    target = _mia(workdir, "demo-target", "demo-matched", "transcript").set_index(
        ["split", "slice", "indicator"]
    )
    assert target.loc[("filter", "response", "loss"), "auc"] >= 0.9
    single = target.xs("filter", level="split").drop(index=("all", "aggregate"))
    assert single["auc"].max() >= 0.9
    assert not target.loc[("filter", "response", "loss"), "confounded"]
    control = _mia(workdir, "demo-control", "demo-matched", "transcript").set_index(
        ["split", "slice", "indicator"]
    )
    c = control.loc[("filter", "response", "loss")]
    assert c["auc_lo"] < 0.45, c  # no evidence of a signal above chance
    assert target.loc[("filter", "all", "aggregate"), "agg_signal"]


def test_the_controlled_demo(demo_run):
    """demo-control, LoRA-fine-tuned on a random draw of demo-matched: blind at chance, a moderate
    signal that rises with repetitions, the base at chance, and epsilon bounds with their delta."""
    workdir, _ = demo_run
    res = workdir / "results" / "controlled"
    verdict = io.read_json(res / "blind.verdict.json")
    assert verdict["state"] != "shifted" and verdict["p_value"] >= 0.15, verdict  # a random draw
    m = io.read_table(res / "demo-control" / "audit" / "metrics.parquet")
    m = m.set_index(["indicator", "subset"])
    ref = m.loc[("ref_loss_diff", "all")]
    assert ref["auc_lo"] > 0.5 and ref["auc"] < 0.95, ref  # above chance, far from AUC 1.0
    assert (
        m.loc[("ref_loss_diff", "repetitions=8"), "auc"]
        > m.loc[("ref_loss_diff", "repetitions=1"), "auc"] + 0.2
    )
    base = m.loc[("base_loss", "all")]
    assert base["auc_lo"] < 0.45 and base["auc_hi"] > 0.5, base  # the base never saw them
    bounds = io.read_json(res / "demo-control" / "audit" / "bounds.json")["bounds"]
    one_run = next(
        b for b in bounds if b["indicator"] == "ref_loss_diff" and b["method"] == "one_run"
    )
    assert one_run["epsilon"] > 0.2 and one_run["delta"] == 1e-5
    assert all(b["epsilon"] == 0.0 for b in bounds if b["indicator"] == "base_loss")
    assert "epsilon >=" in (res / "demo-control" / "audit" / "summary.md").read_text()
    assert (res / "demo-control" / "audit" / "repetitions.png").stat().st_size > 10_000


def test_the_readme_demo_blocks_equal_this_run(demo_run):
    """The README's demo tables are generated from a run (lalm-audit readme --write). On the
    README's kind of machine a fresh run must give the same words and numbers (within 0.05);
    on another CPU the models trained on the spot differ, and the tables must keep their shape."""
    from lalm_audit.report import readme

    workdir, _ = demo_run
    cmp = readme.compare(REPO / "README.md", workdir / "results", tol=0.05)
    assert cmp.run_machine and cmp.readme_machine, cmp
    assert not cmp.diffs, f"strict={cmp.strict} ({cmp.run_machine})\n" + "\n\n".join(cmp.diffs)
