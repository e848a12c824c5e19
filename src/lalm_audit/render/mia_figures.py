"""Figures of the MIA, correlation, disentanglement and clean-split analyses."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from lalm_audit.evaluation import auc
from lalm_audit.render.style import COLORS, new_figure


def draw_roc(
    ax,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    log_fpr: bool = True,
    legend_size: float = 7,
) -> None:
    """ROC curves on ``ax`` (members positive), one per name -> (labels, scores), with the chance line.

    A log-scaled FPR axis (from 1e-3) shows the low-FPR regime that membership claims rest on.
    """
    floor = 1e-3
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(np.maximum(fpr, floor) if log_fpr else fpr, tpr, drawstyle="steps-post",
                label=f"{name} (AUC {auc(y, s):.3f})")  # fmt: skip
    grid = np.logspace(np.log10(floor), 0, 60) if log_fpr else np.linspace(0, 1, 60)
    ax.plot(grid, grid, ls="--", color=COLORS["chance"], lw=1, label="chance")
    if log_fpr:
        ax.set_xscale("log")
        ax.set_xlim(floor, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate (non-members flagged)")
    ax.set_ylabel("True positive rate (members found)")
    ax.legend(loc="lower right", fontsize=legend_size)


def roc_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "ROC", log_fpr: bool = True
) -> Figure:
    """One panel of ROC curves (see :func:`draw_roc`)."""
    fig, ax = new_figure(5.2, 4.4)
    draw_roc(ax, curves, log_fpr=log_fpr)
    ax.set_title(title)
    return fig


def disentanglement_figure(df: pd.DataFrame, title: str = "Modality disentanglement") -> Figure:
    """AUC per condition with its CI; '*' marks a significant difference from the original (Holm)."""
    d = df.reset_index(drop=True)
    fig, ax = new_figure(max(5.0, 0.65 * len(d) + 2), 4.0)
    x = np.arange(len(d))
    colors = [
        COLORS["highlight"] if c == "original" else COLORS["nonmember"] for c in d["condition"]
    ]
    ax.bar(x, d["auc"] - 0.5, bottom=0.5, color=colors, alpha=0.85)
    ax.errorbar(
        x,
        d["auc"],
        yerr=[d["auc"] - d["auc_lo"], d["auc_hi"] - d["auc"]],
        fmt="o",  # the point estimate stays visible where the bar has no height (AUC 0.5)
        color="black",
        ms=3,
        ecolor="black",
        capsize=3,
        lw=1,
    )
    for xi, (_, r) in zip(x, d.iterrows(), strict=True):
        if bool(r.get("significant", False)):
            ax.annotate("*", (xi, r["auc_hi"] + 0.01), ha="center", fontsize=14)
    ax.axhline(0.5, color=COLORS["chance"], ls="--", lw=1)
    ax.set_xticks(x, d["condition"], rotation=30, ha="right")
    ax.set_ylabel("MIA AUC (95% CI)")
    ax.set_xlabel("Audio condition")
    ax.set_ylim(
        min(0.3, float(d["auc_lo"].min()) - 0.05), max(1.0, float(d["auc_hi"].max()) + 0.06)
    )
    ax.set_title(title)
    return fig


def before_after_figure(
    rows: pd.DataFrame, title: str = "Blind AUC before and after the clean split"
) -> Figure:
    """Blind AUC (with CI) per feature group on the full dataset and on the retained items."""
    groups = list(dict.fromkeys(rows["group"]))
    fig, ax = new_figure(max(5.0, 0.9 * len(groups) + 2), 4.0)
    x = np.arange(len(groups))
    for k, (when, color) in enumerate(
        (("before", COLORS["member"]), ("after", COLORS["nonmember"]))
    ):
        sub = rows[rows["when"] == when].set_index("group").reindex(groups)
        xs = x + (k - 0.5) * 0.35
        ax.bar(xs, sub["auc"] - 0.5, bottom=0.5, width=0.35, color=color, alpha=0.85, label=when)
        ax.errorbar(
            xs,
            sub["auc"],
            yerr=[sub["auc"] - sub["auc_lo"], sub["auc_hi"] - sub["auc"]],
            fmt="none",
            ecolor="black",
            capsize=3,
            lw=1,
        )
    ax.axhline(0.5, color=COLORS["chance"], ls="--", lw=1)
    ax.set_xticks(x, groups)
    ax.set_xlabel("Blind feature group")
    ax.set_ylabel("Blind AUC (95% CI)")
    ax.set_ylim(0.3, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def correlation_grid_figure(panels: list[dict], title: str = "", split: str = "full") -> Figure:
    """One scatter per target: indicator score vs the combined blind logit, with r and the adjusted AUC.

    ``panels``: dicts with ``name``, ``x`` (blind logit), ``y`` (score),
    ``labels`` and ``row`` (the confound-adjusted table's row, may be empty).
    """
    import matplotlib.pyplot as plt

    n = max(1, len(panels))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, p in zip(axes.flat, panels, strict=False):
        for lab, name in ((1, "member"), (0, "nonmember")):
            m = p["labels"] == lab
            ax.scatter(p["x"][m], p["y"][m], s=10, alpha=0.7, color=COLORS[name],
                       label=name.replace("nonmember", "non-member"))  # fmt: skip
        r = p.get("row") or {}
        lines = [p["name"]]
        if r:
            rv = r.get("pearson_r", float("nan"))
            rtxt = "n/a (constant score)" if pd.isna(rv) else f"{rv:+.2f}"
            lines.append(f"r = {rtxt}, AUC {r['auc']:.2f}")
            if not pd.isna(r.get("adjusted_auc")):
                lines.append(
                    f"adjusted AUC {r['adjusted_auc']:.2f} [{r['adjusted_lo']:.2f}, {r['adjusted_hi']:.2f}]"
                )
        ax.set_title("\n".join(lines), fontsize=8)
        ax.set_xlabel("Blind out-of-fold logit (no model)", fontsize=8)
        ax.set_ylabel("MIA score (higher = member)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{title}: indicator vs blind logit (split {split})", fontsize=10)
    fig.tight_layout()
    return fig
