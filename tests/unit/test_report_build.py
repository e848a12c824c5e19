"""The report's builders: ROC figures and the tables (Markdown, LaTeX, HTML) from stage outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lalm_audit import io
from lalm_audit.config import parse_config
from lalm_audit.disentangle import run_disentangle
from lalm_audit.schemas import SPLIT_STATUS

N = 40
IDS = [f"i{k:02d}" for k in range(2 * N)]
Y = np.r_[np.ones(N), np.zeros(N)].astype(int)
CFG = parse_config({
    "datasets": {"d": {"loader": "table", "path": "x"}},
    "evaluation": {"bootstrap": 200},
    "analysis": {"targets": ["response/loss", "audio/zlib"]},
})  # fmt: skip


def scores(rng, strength=2.0, suffix=""):
    rows = []
    for sl, ind, k in (("response", "loss", strength), ("audio", "zlib", 0.0)):
        vals = rng.normal(size=2 * N) + k * Y
        rows += [{"item_id": f"{i}{suffix}", "label": int(y), "slice": sl, "indicator": ind, "score": float(v)}
                 for i, y, v in zip(IDS, Y, vals, strict=True)]  # fmt: skip
    return pd.DataFrame(rows)


def test_roc_figure_has_one_panel_per_split_and_a_curve_per_target(in_tmp):
    from lalm_audit.report.build import run_roc

    rng = np.random.default_rng(0)
    io.write_table(scores(rng), "s.parquet")
    agg = pd.concat([pd.DataFrame({"split": sp, "item_id": IDS, "label": Y, "score": rng.normal(size=2 * N) + Y})
                     for sp in ("full", "clean")])  # fmt: skip
    io.write_table(agg, "agg.parquet")
    pd.DataFrame({"item_id": IDS[::2]}).to_parquet("clean.parquet")
    fig = run_roc(CFG, "s.parquet", "agg.parquet", {"full": None, "clean": "clean.parquet"}, "roc.png", "roc.pdf",
                  title="m on d")  # fmt: skip
    assert Path("roc.png").stat().st_size > 1000 and Path("roc.pdf").stat().st_size > 1000
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["split full", "split clean"]
    assert axes[0].get_xscale() == "log" and axes[0].get_xlabel().startswith("False positive rate")
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels[0].startswith("response/loss (AUC 0.8") and labels[1].startswith(
        "audio/zlib (AUC 0."
    )
    assert labels[2].startswith("all/aggregate") and labels[-1] == "chance"


def test_tables_in_markdown_latex_and_html(in_tmp):
    from lalm_audit.report.build import run_report_tables

    rng = np.random.default_rng(1)
    run = {"model": "m", "dataset": "d", "response": "transcript"}
    io.write_table(scores(rng), "orig.parquet", prov={**run, "condition": "original"})
    io.write_table(scores(rng, strength=0.0, suffix="__silence"), "sil.parquet",
                   prov={**run, "condition": "silence"})  # fmt: skip
    run_disentangle(CFG, "orig.parquet", {"silence": "sil.parquet"}, {"full": None},
                    "results/disentangle/m/d/transcript.parquet")  # fmt: skip
    status = pd.DataFrame([
        {"split": "full", "at_chance": False, "state": "shifted", "n_members": 40, "n_nonmembers": 40,
         "blind_auc": 0.97, "blind_lo": 0.93, "blind_hi": 0.99, "p_value": 0.05, "auc_ucb": 1.0,
         "detectable_auc": 0.71, "verdict": "confounded: shifted: ..."},
        {"split": "filter", "at_chance": True, "state": "inconclusive", "n_members": 30, "n_nonmembers": 30,
         "blind_auc": 0.52, "blind_lo": 0.40, "blind_hi": 0.63, "p_value": 0.6, "auc_ucb": 0.7,
         "detectable_auc": 0.74, "verdict": "inconclusive: no shift detected ..."},
    ])  # fmt: skip
    io.write_table(
        status, "results/splits/d/status.parquet", schema=SPLIT_STATUS, prov={"dataset": "d"}
    )
    frames = run_report_tables(
        "out", split_status=["results/splits/d/status.parquet"],
        disentangle=["results/disentangle/m/d/transcript.parquet"],
    )  # fmt: skip
    d = frames["disentangle"].set_index(["target", "condition"])
    assert d.loc[("response/loss", "silence"), "significant"] == "*"
    assert d.loc[("response/loss", "original"), "vs original [95% CI]"] == "-"
    assert set(frames["disentangle"][["model", "dataset", "response"]].drop_duplicates().itertuples(index=False, name=None)) == {("m", "d", "transcript")}  # fmt: skip
    assert list(frames["splits"]["blind verdict"]) == ["SHIFTED", "inconclusive"]
    assert list(frames["splits"]["p (permutation)"]) == ["0.05", "0.6"]
    md = Path("out/splits.md").read_text()
    assert "0.970 [0.930, 0.990]" in md and "inconclusive: no shift detected" in md
    assert "\\begin{tabular}" in Path("out/disentangle.tex").read_text()
    page = Path("out/tables.html").read_text()
    assert page.count("<table") == 2 and "no rows: this stage is not configured" in page
    assert "(no rows" in Path("out/mia.md").read_text()


def test_tables_name_each_run_from_its_provenance_not_its_folder(in_tmp):
    """A table stored under any folder name reports the run its provenance records; one that
    records none is refused with the file named."""
    import pytest

    from lalm_audit.errors import LalmAuditError
    from lalm_audit.report.build import disentangle_table

    rng = np.random.default_rng(2)
    run = {"model": "target", "dataset": "corpus", "response": "generated"}
    io.write_table(scores(rng), "a.parquet", prov={**run, "condition": "original"})
    io.write_table(scores(rng, 0.0, "__noise"), "b.parquet", prov={**run, "condition": "noise"})
    run_disentangle(CFG, "a.parquet", {"noise": "b.parquet"}, {"full": None}, "x/y/z.parquet")
    t = disentangle_table(["x/y/z.parquet"])
    assert set(t[["model", "dataset", "response"]].itertuples(index=False, name=None)) == {
        ("target", "corpus", "generated")
    }
    io.write_table(scores(rng), "bare.parquet")
    run_disentangle(
        CFG, "bare.parquet", {"noise": "bare.parquet"}, {"full": None}, "bare_d.parquet"
    )
    with pytest.raises(LalmAuditError, match=r"bare_d.parquet: its provenance names no model"):
        disentangle_table(["bare_d.parquet"])


def test_disentanglement_and_before_after_figures_carry_their_axes():
    from lalm_audit.render.mia_figures import before_after_figure, disentanglement_figure

    d = pd.DataFrame({
        "condition": ["original", "silence", "noise"], "auc": [0.97, 0.5, 0.96],
        "auc_lo": [0.93, 0.39, 0.92], "auc_hi": [1.0, 0.6, 0.99], "significant": [False, True, False],
    })  # fmt: skip
    fig = disentanglement_figure(d, title="m on d")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "silence", "noise"]
    assert ax.get_ylabel() == "MIA AUC (95% CI)" and ax.get_title() == "m on d"
    stars = [t for t in ax.texts if t.get_text() == "*"]
    assert len(stars) == 1 and stars[0].xy[0] == 1  # the significant condition, and only it
    # the point estimate is drawn even where the bar has no height (AUC exactly 0.5)
    assert any(np.allclose(line.get_ydata(), d["auc"]) for line in ax.lines)
    rows = pd.DataFrame({
        "group": ["text", "metadata"] * 2, "when": ["before"] * 2 + ["after"] * 2,
        "auc": [0.6, 0.99, 0.5, 0.52], "auc_lo": [0.5, 0.98, 0.4, 0.41], "auc_hi": [0.7, 1.0, 0.6, 0.63],
    })  # fmt: skip
    ax = before_after_figure(rows).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["text", "metadata"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "after"]
    assert ax.get_ylabel() == "Blind AUC (95% CI)"
