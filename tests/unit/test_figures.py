"""Figures are opened and checked: files exist, are non-empty, and carry the expected axes and data."""

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from lalm_audit.render.mia_figures import (
    before_after_figure,
    disentanglement_figure,
    roc_figure,
)
from lalm_audit.render.style import save
from lalm_audit.render.tables import fmt_ci, to_latex, to_markdown

rng = np.random.default_rng(0)
Y = np.r_[np.ones(50), np.zeros(50)].astype(int)


def test_roc_figure_has_curves_labels_and_saves(tmp_path):
    fig = roc_figure(
        {"loss": (Y, rng.normal(size=100) + Y), "random": (Y, rng.normal(size=100))}, title="demo"
    )
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("False positive rate") and ax.get_ylabel().startswith(
        "True positive rate"
    )
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0].startswith("loss (AUC") and "chance" in labels
    save(fig, tmp_path / "roc.png", tmp_path / "roc.pdf")
    img = mpimg.imread(tmp_path / "roc.png")
    assert img.shape[0] > 300 and img.shape[1] > 300 and img.std() > 0
    assert (tmp_path / "roc.pdf").read_bytes().startswith(b"%PDF") and (
        tmp_path / "roc.pdf"
    ).stat().st_size > 5000


def test_disentanglement_chart_marks_significance():
    df = pd.DataFrame({"condition": ["original", "silence", "pitch"], "auc": [0.9, 0.5, 0.88], "auc_lo": [0.85, 0.45, 0.82],
                       "auc_hi": [0.95, 0.55, 0.93], "significant": [False, True, False]})  # fmt: skip
    fig = disentanglement_figure(df)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "silence", "pitch"]
    assert ax.get_ylabel() == "MIA AUC (95% CI)"
    stars = [t for t in ax.texts if t.get_text() == "*"]
    assert len(stars) == 1 and stars[0].xy[0] == 1  # only the silence bar
    heights = [p.get_height() + p.get_y() for p in ax.patches]
    np.testing.assert_allclose(heights, [0.9, 0.5, 0.88])


def test_before_after():
    rows = pd.DataFrame({"group": ["text", "text", "combined", "combined"], "when": ["before", "after"] * 2,
                         "auc": [0.9, 0.5, 0.95, 0.52], "auc_lo": [0.85, 0.4, 0.9, 0.45], "auc_hi": [0.95, 0.6, 0.99, 0.6]})  # fmt: skip
    ax = before_after_figure(rows).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["text", "combined"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"before", "after"}


def test_tables():
    df = pd.DataFrame({"dataset": ["a_b"], "AUC": [fmt_ci(0.91234, 0.8, 0.95)]})
    assert "0.912 [0.800, 0.950]" in to_markdown(df)
    tex = to_latex(df, caption="c", label="tab:x")
    assert "a\\_b" in tex and "\\caption{c}" in tex and "\\label{tab:x}" in tex
    assert fmt_ci(float("nan"), 0, 0) == "-"
