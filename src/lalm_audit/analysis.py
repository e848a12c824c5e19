"""Phase-2/3 analyses on stored scores: how much of an MIA signal blind artifacts explain, and which
modality carries it.

- :func:`correlation_table`: each indicator against the blind classifier's
  out-of-fold logit (Pearson and Spearman with bootstrap CIs).
- :func:`compare_conditions`: each perturbation condition's AUC against the
  original condition's on the same items (paired stratified bootstrap of the
  AUC difference), Holm-corrected across conditions.

Both are pure functions of data frames; the workflow stages around them only
read and write Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lalm_audit.evaluation import correlation, evaluate, holm, paired_auc_difference
from lalm_audit.mia import base_item_id


def average_renderings(scores: pd.DataFrame) -> pd.DataFrame:
    """One score per (base item, slice, indicator): re-synthesis renderings ``__r<k>`` are averaged."""
    s = scores.assign(base=scores["item_id"].map(base_item_id))
    keys = ["base", "slice", "indicator"]
    out = (
        s.groupby(keys, sort=True)
        .agg(score=("score", "mean"), label=("label", "first"), n=("score", "size"))
        .reset_index()
    )
    return out.rename(columns={"base": "item_id"})


def select(scores: pd.DataFrame, slice_name: str, indicator: str) -> pd.Series:
    """item_id -> score of one (slice, indicator)."""
    m = scores[(scores["slice"] == slice_name) & (scores["indicator"] == indicator)]
    return m.set_index("item_id")["score"]


def compare_conditions(
    original: pd.DataFrame,
    conditions: Mapping[str, pd.DataFrame],
    targets: Iterable[tuple[str, str]],
    *,
    items: set[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """AUC per condition and its paired difference from the original, per (slice, indicator) target.

    ``original`` and each ``conditions[name]`` are indicator tables (item_id,
    label, slice, indicator, score); derived ids are mapped back to their base
    item, renderings averaged. Only items present under both conditions are
    compared (``n_members``/``n_nonmembers`` say how many). Holm's correction
    runs across the conditions of each target.
    """
    orig = average_renderings(original)
    conds = {name: average_renderings(df) for name, df in conditions.items()}
    labels = orig.drop_duplicates("item_id").set_index("item_id")["label"].astype(int)
    rows: list[dict[str, Any]] = []
    for sl, ind in targets:
        o = select(orig, sl, ind)
        if items is not None:
            o = o[o.index.isin(items)]
        if o.empty:
            continue
        y0 = labels.loc[o.index].to_numpy()
        e0 = evaluate(y0, o.to_numpy(), n_resamples=n_resamples, confidence=confidence, seed=seed)
        rows.append({"condition": "original", "slice": sl, "indicator": ind, **e0.as_row(), "diff": 0.0, "diff_lo": 0.0,
                     "diff_hi": 0.0, "p_value": np.nan, "p_holm": np.nan, "significant": False})  # fmt: skip
        block: list[dict[str, Any]] = []
        for name, df in conds.items():
            c = select(df, sl, ind)
            common = o.index.intersection(c.index)
            if len(common) == 0:
                continue
            y = labels.loc[common].to_numpy()
            e = evaluate(
                y,
                c.loc[common].to_numpy(),
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
            )
            d = paired_auc_difference(y, c.loc[common].to_numpy(), o.loc[common].to_numpy(), n_resamples=n_resamples,
                                      confidence=confidence, seed=seed)  # fmt: skip
            block.append({"condition": name, "slice": sl, "indicator": ind, **e.as_row(), "diff": d.diff,
                          "diff_lo": d.diff_lo, "diff_hi": d.diff_hi, "p_value": d.p_value})  # fmt: skip
        if block:
            adj = holm([r["p_value"] for r in block])
            for r, p in zip(block, adj, strict=True):
                r["p_holm"] = float(p)
                r["significant"] = bool(p < alpha)
            rows.extend(block)
    return pd.DataFrame(rows)


def correlation_table(
    scores: pd.DataFrame,
    blind_logits: Mapping[str, pd.Series],
    *,
    items: set[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Pearson/Spearman of every (slice, indicator) with each blind logit (e.g. 'combined', 'text', ...).

    ``blind_logits[group]`` maps base item ids to the blind classifier's
    out-of-fold logit. Only items with both values are used.
    """
    s = average_renderings(scores)
    if items is not None:
        s = s[s["item_id"].isin(items)]
    rows = []
    for (sl, ind), grp in s.groupby(["slice", "indicator"], sort=True):
        x = grp.set_index("item_id")["score"]
        for group, logit in blind_logits.items():
            common = x.index.intersection(logit.index)
            if len(common) < 3:
                continue
            c = correlation(x.loc[common].to_numpy(), logit.loc[common].to_numpy(), n_resamples=n_resamples,
                            confidence=confidence, seed=seed)  # fmt: skip
            rows.append({"slice": sl, "indicator": ind, "blind_group": group, **c.__dict__})
    return pd.DataFrame(rows)
