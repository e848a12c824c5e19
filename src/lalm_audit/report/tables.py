"""Tables as Markdown and LaTeX from the same frame."""

from __future__ import annotations

import pandas as pd


def fmt_ci(est: float, lo: float, hi: float, digits: int = 3) -> str:
    if pd.isna(est):
        return "-"
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


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
    from lalm_audit.mia import status_word

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
