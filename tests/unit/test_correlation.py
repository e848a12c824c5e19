"""The correlation stage: indicators against blind artifacts, with a known spurious and a known real signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lalm_audit import io
from lalm_audit.blind import run_blind
from lalm_audit.config import parse_config

N = 60


def cfg(ds: str):
    return parse_config({
        "datasets": {ds: {"loader": "table", "path": "x"}},
        "features": {"groups": ["metadata", "spectral"]},
        "evaluation": {"bootstrap": 300},
        "blind": {"folds": 5, "classifiers": ["logistic"], "permutation_control": {"shuffles": 3},
                  "top_features": 1},
        "analysis": {"targets": ["response/spurious", "response/real"]},
    })  # fmt: skip


def write_world(ds: str, shifted: bool, seed: int) -> pd.DataFrame:
    """Items whose non-members are noisier (``shifted``) or not; two indicators: one reads the noise, one the label."""
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], N)
    ids = [f"{ds}-{k:03d}" for k in rng.permutation(2 * N)]
    snr = rng.normal(30, 3, size=2 * N) - (6.0 * (y == 0) if shifted else 0.0)
    io.write_table(pd.DataFrame({"item_id": ids, "label": y}), f"results/manifests/{ds}.parquet")
    io.write_table(
        pd.DataFrame({"item_id": ids, "feature_error": None, "snr": snr, "dur": rng.normal(size=2 * N)}),
        f"results/features/{ds}/metadata.parquet",
    )  # fmt: skip
    io.write_table(
        pd.DataFrame({"item_id": ids, "feature_error": None, **{f"n{k}": rng.normal(size=2 * N) for k in range(3)}}),
        f"results/features/{ds}/spectral.parquet",
    )  # fmt: skip
    # a model that never saw a member but dislikes noise (spurious), and one that memorized (real)
    spurious = 0.1 * snr + rng.normal(0, 0.1, size=2 * N)
    real = 2.0 * y + rng.normal(size=2 * N)
    rows = [
        {"item_id": i, "label": int(lab), "slice": "response", "indicator": name, "score": float(v)}
        for name, vals in (("spurious", spurious), ("real", real))
        for i, lab, v in zip(ids, y, vals, strict=True)
    ]
    scores = pd.DataFrame(rows)
    io.write_table(scores, f"scores/{ds}.parquet")
    agg = pd.DataFrame(
        {"split": "full", "item_id": ids, "label": y, "score": spurious if shifted else real}
    )
    io.write_table(agg, f"scores/{ds}.aggregate.parquet")
    return scores


def run(ds: str, shifted: bool, seed: int):
    from lalm_audit.correlation import run_correlation

    write_world(ds, shifted, seed)
    c = cfg(ds)
    run_blind(c, ds)
    out = Path("out") / ds
    corr, adj = run_correlation(
        c, ds, f"scores/{ds}.parquet", f"scores/{ds}.aggregate.parquet", {"full": None},
        correlation_out=str(out / "correlation.parquet"), adjusted_out=str(out / "adjusted.parquet"),
        markdown_out=str(out / "adjusted.md"), latex_out=str(out / "adjusted.tex"),
        figure_png=str(out / "scatter.png"), figure_pdf=str(out / "scatter.pdf"),
    )  # fmt: skip
    return corr, adj.set_index("indicator"), out


def test_a_spurious_signal_is_explained_by_the_blind_artifacts(in_tmp):
    corr, adj, out = run("shifted", shifted=True, seed=0)
    s = adj.loc["spurious"]
    assert s["auc_lo"] > 0.75  # looks like an attack ...
    assert abs(s["pearson_r"]) >= 0.7  # ... tracks the blind logit ...
    assert s["adjusted_lo"] <= 0.5 <= s["adjusted_hi"]  # ... and is gone once the shift is removed
    assert s["verdict"].startswith("SPURIOUS")
    assert adj.loc["aggregate", "verdict"].startswith("SPURIOUS")
    # the real signal on the same shifted data: its blind-plus gain is positive
    assert adj.loc["real", "gain_lo"] > 0
    # per-group correlation: the metadata group carries the shift, the noise group does not
    c = corr.set_index(["indicator", "blind_group"])
    assert abs(c.loc[("spurious", "metadata"), "pearson_r"]) > 0.7
    assert abs(c.loc[("spurious", "spectral"), "pearson_r"]) < 0.4
    assert set(corr["blind_group"]) == {"combined", "metadata", "spectral"}
    for name in ("adjusted.md", "adjusted.tex", "scatter.png", "scatter.pdf"):
        assert (out / name).stat().st_size > 500, name
    assert "SPURIOUS" in (out / "adjusted.md").read_text()
    assert "\\begin{tabular}" in (out / "adjusted.tex").read_text()
    assert io.read_provenance(out / "adjusted.parquet")["stage"] == "correlation"


def test_real_memorization_survives_the_adjustment(in_tmp):
    _, adj, _ = run("matched", shifted=False, seed=1)
    r = adj.loc["real"]
    assert r["auc"] > 0.8 and abs(r["pearson_r"]) < 0.3
    assert r["adjusted_lo"] > 0.7
    assert r["verdict"].startswith("membership signal beyond")
    s = adj.loc["spurious"]  # no shift: the noise-reading indicator has nothing to read
    assert s["verdict"].startswith("no signal")


def test_the_scatter_grid_carries_its_axes_and_statistics():
    from lalm_audit.render.mia_figures import correlation_grid_figure

    rng = np.random.default_rng(0)
    y = np.repeat([1, 0], 20)
    panel = {"name": "response/loss", "x": rng.normal(size=40), "y": rng.normal(size=40), "labels": y,
             "row": {"pearson_r": 0.83, "auc": 0.9, "adjusted_auc": 0.51, "adjusted_lo": 0.4, "adjusted_hi": 0.62}}  # fmt: skip
    fig = correlation_grid_figure([panel, {**panel, "name": "all/aggregate"}], title="m on d")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    assert axes[0].get_xlabel().startswith("Blind out-of-fold logit")
    assert "r = +0.83" in axes[0].get_title() and "adjusted AUC 0.51" in axes[0].get_title()
    assert axes[1].get_title().startswith("all/aggregate")
    assert sum(len(c.get_offsets()) for c in axes[0].collections) == 40  # every item, both classes
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["member", "non-member"]


def test_an_unknown_target_names_itself(in_tmp):
    from lalm_audit.correlation import run_correlation

    write_world("d", shifted=False, seed=2)
    c = cfg("d").model_copy(
        update={"analysis": cfg("d").analysis.model_copy(update={"targets": ["response/nope"]})}
    )
    run_blind(c, "d")
    with pytest.raises(ValueError, match="response/nope"):
        run_correlation(c, "d", "scores/d.parquet", None, {"full": None},
                        correlation_out="c.parquet", adjusted_out="a.parquet")  # fmt: skip
