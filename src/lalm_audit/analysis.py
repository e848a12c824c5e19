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


# --------------------------------------------------------------------------- confound-adjusted MIA


def adjusted_scores(
    score: np.ndarray,
    labels: np.ndarray,
    blind_X: pd.DataFrame,
    make_preprocessor: Any,
    *,
    folds: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """The indicator with the blind features regressed out, out of fold.

    In each training fold the blind preprocessing (``make_preprocessor()``: the
    blind pipeline without its classifier, e.g. scaling + TF-IDF) and a ridge
    regression of the score on the blind features (penalty chosen by
    efficient leave-one-out inside the fold) are fit; the held-out items get
    score - prediction. Whatever the blind artifacts explain is gone; what is
    left is membership signal the blind features cannot account for
    (conservative: signal that merely correlates with the shift goes too).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels).astype(int)
    s = np.asarray(score, dtype=float)
    resid = np.empty_like(s)
    cv = StratifiedKFold(
        n_splits=min(folds, int(np.bincount(y).min())), shuffle=True, random_state=seed
    )
    for train, test in cv.split(blind_X, y):
        pre = make_preprocessor().fit(blind_X.iloc[train], y[train])
        z_train, z_test = pre.transform(blind_X.iloc[train]), pre.transform(blind_X.iloc[test])
        reg = RidgeCV(alphas=np.logspace(-3, 4, 15)).fit(z_train, s[train])
        resid[test] = s[test] - reg.predict(z_test)
    return resid


def blind_plus_indicator(
    score: np.ndarray,
    labels: np.ndarray,
    blind_X: pd.DataFrame,
    make_preprocessor: Any,
    *,
    folds: int = 10,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold membership probabilities of blind-only and blind + indicator logistic regressions.

    Nested CV: the outer folds give the out-of-fold predictions; inside each
    outer training fold ``LogisticRegressionCV`` picks the regularization by
    an inner CV. The indicator enters as one more standardized column.
    """
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels).astype(int)
    s = np.asarray(score, dtype=float).reshape(-1, 1)
    k = min(folds, int(np.bincount(y).min()))
    outer = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    p_blind, p_both = np.empty(y.size), np.empty(y.size)
    for train, test in outer.split(blind_X, y):
        pre = make_preprocessor().fit(blind_X.iloc[train], y[train])
        z_train, z_test = (
            _dense(pre.transform(blind_X.iloc[train])),
            _dense(pre.transform(blind_X.iloc[test])),
        )
        sc = StandardScaler().fit(s[train])
        inner = dict(
            Cs=np.logspace(-2, 3, 8), cv=min(5, int(np.bincount(y[train]).min())), scoring="neg_log_loss",
            l1_ratios=(0.0,), use_legacy_attributes=False, max_iter=5000, random_state=seed,
        )  # fmt: skip
        blind = LogisticRegressionCV(**inner).fit(z_train, y[train])
        both = LogisticRegressionCV(**inner).fit(
            np.hstack([z_train, sc.transform(s[train])]), y[train]
        )
        p_blind[test] = blind.predict_proba(z_test)[:, 1]
        p_both[test] = both.predict_proba(np.hstack([z_test, sc.transform(s[test])]))[:, 1]
    return p_blind, p_both


def _dense(z: Any) -> np.ndarray:
    return z.toarray() if hasattr(z, "toarray") else np.asarray(z)


def confound_adjusted(
    score: np.ndarray,
    labels: np.ndarray,
    blind_X: pd.DataFrame,
    make_preprocessor: Any,
    *,
    folds: int = 10,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Raw AUC, AUC after regressing out the blind features, and the gain of blind + indicator over blind alone."""
    y = np.asarray(labels).astype(int)
    raw = evaluate(y, score, n_resamples=n_resamples, confidence=confidence, seed=seed)
    resid = adjusted_scores(score, y, blind_X, make_preprocessor, folds=folds, seed=seed)
    adj = evaluate(y, resid, n_resamples=n_resamples, confidence=confidence, seed=seed)
    p_blind, p_both = blind_plus_indicator(
        score, y, blind_X, make_preprocessor, folds=folds, seed=seed
    )
    gain = paired_auc_difference(
        y, p_both, p_blind, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return {
        "auc": raw.auc, "auc_lo": raw.auc_lo, "auc_hi": raw.auc_hi,
        "adjusted_auc": adj.auc, "adjusted_lo": adj.auc_lo, "adjusted_hi": adj.auc_hi,
        "blind_auc": gain.auc_b, "blind_plus_auc": gain.auc_a,
        "gain": gain.diff, "gain_lo": gain.diff_lo, "gain_hi": gain.diff_hi, "gain_p": gain.p_value,
    }  # fmt: skip


# --------------------------------------------------------------------------- stages (I/O at the edges)


def parse_targets(targets: Iterable[str]) -> list[tuple[str, str]]:
    return [tuple(t.split("/", 1)) for t in targets]  # type: ignore[misc]


def run_disentangle(
    cfg: Any,
    original_scores: str,
    condition_scores: Mapping[str, str],
    splits: Mapping[str, str | None],
    out: str,
    figure_png: str | None = None,
    figure_pdf: str | None = None,
    title: str = "",
    status_path: str | None = None,
) -> pd.DataFrame:
    """Disentanglement stage: every condition against the original, per split and target, with a chart.

    The chart shows the first target of the first split (the headline); the
    table holds all of them.
    """
    from lalm_audit import io
    from lalm_audit.schemas import DISENTANGLEMENT

    orig = io.read_table(original_scores)
    conds = {c: io.read_table(p) for c, p in condition_scores.items()}
    targets = parse_targets(cfg.analysis.targets)
    frames = []
    for split, path in splits.items():
        items = None if path is None else set(io.read_table(path, columns=["item_id"])["item_id"])
        df = compare_conditions(orig, conds, targets, items=items, n_resamples=cfg.evaluation.bootstrap,
                                confidence=cfg.evaluation.confidence, alpha=cfg.analysis.alpha, seed=cfg.seed)  # fmt: skip
        df.insert(0, "split", split)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    from lalm_audit.mia import mark_confounded

    table = mark_confounded(table, io.read_table(status_path) if status_path else None)
    prov = io.provenance(
        "disentangle",
        {"analysis": cfg.analysis, "perturb": cfg.perturb, "evaluation": cfg.evaluation},
        seed=cfg.seed,
    )
    io.write_table(table, out, schema=DISENTANGLEMENT, prov=prov)
    if figure_png:
        from lalm_audit.report.mia_figures import disentanglement_figure
        from lalm_audit.report.style import save

        first_split = next(iter(splits))
        sl, ind = targets[0]
        sub = table[
            (table["split"] == first_split) & (table["slice"] == sl) & (table["indicator"] == ind)
        ]
        fig = disentanglement_figure(sub, title=title or f"{sl}/{ind}, split {first_split}")
        save(fig, *[p for p in (figure_png, figure_pdf) if p])
    return table
