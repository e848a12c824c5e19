"""Figures of the MIA, correlation, disentanglement and clean-split analyses."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from lalm_audit.evaluation import auc
from lalm_audit.report.style import COLORS, new_figure


def roc_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "ROC", log_fpr: bool = True
) -> Figure:
    """ROC curves (members positive), one per name -> (labels, scores); log-scaled FPR shows the low-FPR regime."""
    fig, ax = new_figure(5.2, 4.4)
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(
            np.maximum(fpr, 1e-4) if log_fpr else fpr,
            tpr,
            label=f"{name} (AUC {auc(y, s):.3f})",
            drawstyle="steps-post",
        )
    grid = np.logspace(-4, 0, 50) if log_fpr else np.linspace(0, 1, 50)
    ax.plot(grid, grid, ls="--", color=COLORS["chance"], lw=1, label="chance")
    if log_fpr:
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
    ax.set_xlabel("False positive rate (non-members flagged)")
    ax.set_ylabel("True positive rate (members found)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=7)
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
        fmt="none",
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


def correlation_figure(
    blind_logit: np.ndarray,
    score: np.ndarray,
    labels: np.ndarray,
    r: float,
    indicator: str,
    title: str = "",
) -> Figure:
    """Indicator score against the blind classifier's out-of-fold logit, coloured by membership."""
    fig, ax = new_figure(5.0, 4.2)
    for lab, name in ((1, "member"), (0, "nonmember")):
        m = labels == lab
        ax.scatter(
            blind_logit[m],
            score[m],
            s=12,
            alpha=0.7,
            color=COLORS[name],
            label=name.replace("nonmember", "non-member"),
        )
    ax.set_xlabel("Blind classifier out-of-fold logit (no model)")
    ax.set_ylabel(f"MIA score: {indicator}")
    ax.set_title(title or f"{indicator} vs blind logit (Pearson r = {r:.2f})")
    ax.legend(fontsize=8)
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
