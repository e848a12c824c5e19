"""Membership-inference evaluation: indicator scores -> aggregated attack, dataset test, metrics per split.

Inputs are the long indicator table of :mod:`lalm_audit.indicators` (one row
per item x slice x indicator) and the items' labels; a *split* is a named
subset of items (``full``; the clean splits of the blind-baseline stage). No
model runs here.

- Every (slice, indicator) is evaluated with :func:`lalm_audit.evaluation.evaluate`.
- The aggregated attack is a logistic regression over all indicators
  (imputation and standardization fit inside each training fold), stratified
  K-fold CV, re-run within each split; its out-of-fold membership probability
  is one more score (``aggregate`` on slice ``all``).
- The dataset-level test (Maini et al.) compares the aggregated scores of the
  members with those of the non-members: one-sided Welch t-test.
- The "best indicator" is selected after looking at all of them, so its AUC is
  optimistic; tables say so and show the cross-validated aggregate beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lalm_audit.evaluation import evaluate, tpr_column, welch_greater

log = logging.getLogger(__name__)

AGGREGATE = "aggregate"


@dataclass(frozen=True)
class EvalSettings:
    n_resamples: int = 1000
    confidence: float = 0.95
    fprs: tuple[float, ...] = (0.001, 0.01, 0.05)
    seed: int = 0
    folds: int = 10
    C: float = 1.0


def base_item_id(item_id: str) -> str:
    """``<item>__<condition>`` -> ``<item>``: derived items belong to the split of their source item."""
    return item_id.split("__", 1)[0]


def wide_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """item_id x '<slice>/<indicator>' matrix (NaN where a slice was empty)."""
    w = scores.pivot_table(
        index="item_id", columns=["slice", "indicator"], values="score", aggfunc="first"
    )
    w.columns = [f"{s}/{i}" for s, i in w.columns]
    return w.sort_index()


def aggregate_attack(
    wide: pd.DataFrame, labels: pd.Series, *, folds: int = 10, seed: int = 0, C: float = 1.0
) -> pd.Series:
    """Out-of-fold membership probability of a logistic regression over all indicator columns."""
    y = labels.loc[wide.index].to_numpy().astype(int)
    X = wide.to_numpy(dtype=float)
    keep = ~np.all(np.isnan(X), axis=0)
    X = X[:, keep]
    n_min = int(min((y == 1).sum(), (y == 0).sum()))
    k = min(folds, n_min)
    if k < 2:
        raise ValueError(f"aggregated attack needs >= 2 items per class (got {n_min})")
    model = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(C=C, max_iter=5000)
    )
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    prob = cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]
    return pd.Series(prob, index=wide.index, name=AGGREGATE)


def evaluate_split(
    scores: pd.DataFrame, labels: pd.Series, items: set[str] | None, settings: EvalSettings
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Metrics of every (slice, indicator) and of the aggregated attack on one split.

    Returns (metrics rows, aggregate scores, dataset-level test).
    """
    if items is not None:
        scores = scores[scores["item_id"].map(base_item_id).isin(items)]
    y_items = labels.loc[scores["item_id"].unique()]
    n1, n0 = int((y_items == 1).sum()), int((y_items == 0).sum())
    if min(n1, n0) < 2:
        raise ValueError(
            f"evaluation needs at least 2 items per class (got {n1} members, {n0} non-members)"
        )
    rows: list[dict[str, Any]] = []
    for (sl, ind), grp in scores.groupby(["slice", "indicator"], sort=True):
        y = labels.loc[grp["item_id"]].to_numpy()
        if len(np.unique(y)) < 2:
            continue
        e = evaluate(y, grp["score"].to_numpy(), n_resamples=settings.n_resamples, confidence=settings.confidence,
                     fprs=settings.fprs, seed=settings.seed)  # fmt: skip
        rows.append({"slice": sl, "indicator": ind, **e.as_row()})
    wide = wide_scores(scores)
    agg = aggregate_attack(wide, labels, folds=settings.folds, seed=settings.seed, C=settings.C)
    y = labels.loc[agg.index].to_numpy()
    e = evaluate(y, agg.to_numpy(), n_resamples=settings.n_resamples, confidence=settings.confidence,
                 fprs=settings.fprs, seed=settings.seed)  # fmt: skip
    rows.append({"slice": "all", "indicator": AGGREGATE, **e.as_row()})
    test = {
        "welch_p": welch_greater(agg[y == 1], agg[y == 0]),
        "mean_member": float(agg[y == 1].mean()),
        "mean_nonmember": float(agg[y == 0].mean()),
        "n_indicators": int(wide.shape[1]),
    }
    agg_df = pd.DataFrame(
        {"item_id": agg.index, "label": y.astype(np.int8), "score": agg.to_numpy()}
    )
    return pd.DataFrame(rows), agg_df, test


def evaluate_mia(
    scores: pd.DataFrame,
    labels: pd.Series,
    splits: Mapping[str, set[str] | None],
    settings: EvalSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate on every split. Returns (metrics with a ``split`` column and the dataset test, aggregate scores)."""
    metrics, aggs = [], []
    for name, items in splits.items():
        m, a, test = evaluate_split(scores, labels, items, settings)
        m.insert(0, "split", name)
        for k, v in test.items():
            m[k] = v if k != "welch_p" else np.where(m["indicator"] == AGGREGATE, v, np.nan)
        a.insert(0, "split", name)
        metrics.append(m)
        aggs.append(a)
        log.info(
            "split %s: %d items, aggregate AUC %.3f, Welch p %.2g",
            name,
            len(a),
            m["auc"].iloc[-1],
            test["welch_p"],
        )
    return pd.concat(metrics, ignore_index=True), pd.concat(aggs, ignore_index=True)


def headline(metrics: pd.DataFrame, fpr: float = 0.01) -> pd.DataFrame:
    """One row per split: loss on the response slice, the best indicator (post hoc), the aggregate."""
    tcol = tpr_column(fpr)
    out = []
    for split, m in metrics.groupby("split", sort=False):
        row: dict[str, Any] = {
            "split": split,
            "n_members": int(m["n_members"].iloc[0]),
            "n_nonmembers": int(m["n_nonmembers"].iloc[0]),
        }
        loss = m[(m["slice"] == "response") & (m["indicator"] == "loss")]
        if len(loss):
            r = loss.iloc[0]
            row.update(
                loss_auc=r["auc"], loss_lo=r["auc_lo"], loss_hi=r["auc_hi"], loss_tpr=r[tcol]
            )
        single = m[m["indicator"] != AGGREGATE]
        best = single.loc[single["auc"].idxmax()]
        row.update(best=f"{best['slice']}/{best['indicator']}", best_auc=best["auc"], best_lo=best["auc_lo"],
                   best_hi=best["auc_hi"], n_indicators=len(single))  # fmt: skip
        agg = m[m["indicator"] == AGGREGATE].iloc[0]
        row.update(
            agg_auc=agg["auc"],
            agg_lo=agg["auc_lo"],
            agg_hi=agg["auc_hi"],
            agg_tpr=agg[tcol],
            welch_p=agg["welch_p"],
        )
        out.append(row)
    return pd.DataFrame(out)
