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
