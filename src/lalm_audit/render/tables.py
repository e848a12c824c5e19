"""Tables as Markdown and LaTeX from the same frame."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from lalm_audit.evaluation import min_nonmembers, tpr_column


def fmt_ci(est: float, lo: float, hi: float, digits: int = 3) -> str:
    if pd.isna(est):
        return "-"
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def fmt_tpr(
    tpr: float,
    fpr: float,
    n_nonmembers: float,
    *,
    lo: float = math.nan,
    hi: float = math.nan,
    tp: float = math.nan,
    fp: float = math.nan,
    n_members: float = math.nan,
    digits: int = 3,
) -> str:
    """A TPR at FPR <= ``fpr`` for a table: value [Clopper-Pearson CI] (TP/members at FP false positives).

    With fewer than 1/FPR non-members the bound admits no false positive, so
    no TPR at that FPR exists: "n/a (needs >= N non-members)", whatever value a
    (possibly older) table holds.
    """
    need = min_nonmembers(fpr)
    if pd.notna(n_nonmembers) and n_nonmembers < need:
        return f"n/a (needs >= {need:,} non-members)"
    if pd.isna(tpr):
        return "-"
    out = f"{tpr:.{digits}f}"
    if pd.notna(lo) and pd.notna(hi):
        out += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    if pd.notna(tp) and pd.notna(n_members) and pd.notna(fp):
        out += f" ({int(tp)}/{int(n_members)} at {int(fp)} FP)"
    return out


def tpr_cell(row: Mapping[str, Any], fpr: float, prefix: str | None = None, digits: int = 3) -> str:
    """:func:`fmt_tpr` of a metrics row (columns ``tpr_at_<x>pct_fpr`` and its ``_lo/_hi/_tp/_fp``).

    ``prefix``: the row's columns are ``<prefix>``, ``<prefix>_lo``, ... instead
    (e.g. ``agg_tpr`` in the MIA headline).
    """
    col = prefix or tpr_column(fpr)

    def get(suffix: str) -> float:
        v = row.get(col + suffix, math.nan)
        return math.nan if v is None else v

    return fmt_tpr(get(""), fpr, row.get("n_nonmembers", math.nan), lo=get("_lo"), hi=get("_hi"),
                   tp=get("_tp"), fp=get("_fp"), n_members=row.get("n_members", math.nan), digits=digits)  # fmt: skip


def to_markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False) + "\n"


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs table (escape-safe) for papers."""
    return df.to_latex(
        index=False,
        escape=True,
        caption=caption or None,
        label=label or None,
        column_format="l" * df.shape[1],
    )


def adjusted_table(adj: pd.DataFrame) -> pd.DataFrame:
    """The confound-adjustment table for readers: one row per split x target."""
    from lalm_audit.verdicts import status_word

    rows = []
    for _, r in adj.iterrows():
        rows.append(
            {
                "split": r["split"],
                "target": f"{r['slice']}/{r['indicator']}",
                "n (m/nm)": f"{r['n_members']}/{r['n_nonmembers']}",
                "AUC [95% CI]": fmt_ci(r["auc"], r["auc_lo"], r["auc_hi"]),
                "r (blind)": "-" if pd.isna(r["pearson_r"]) else f"{r['pearson_r']:+.2f}",
                "adjusted AUC": fmt_ci(r["adjusted_auc"], r["adjusted_lo"], r["adjusted_hi"]),
                "gain over blind": fmt_ci(r["gain"], r["gain_lo"], r["gain_hi"]),
                "blind baseline": status_word(r),
                "verdict": r["verdict"],
            }
        )
    return pd.DataFrame(rows)
