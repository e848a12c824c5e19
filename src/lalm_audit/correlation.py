"""How much of an MIA signal the blind artifacts explain.

- :func:`correlation_table`: each indicator against the blind classifier's
  out-of-fold logit (Pearson and Spearman with bootstrap CIs).
- :func:`confound_adjusted_many`: the AUC once the blind artifacts are
  regressed out inside CV folds, and the gain of blind + indicator over blind
  alone (nested CV); :func:`lalm_audit.verdicts.correlation_verdict` reads them.
- :func:`run_correlation`: the correlation stage (both, per split, + figure).

The analyses are pure functions of data frames; the ``run_*`` stage around
them only reads and writes Parquet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from lalm_audit import verdicts
from lalm_audit.evaluation import correlation, evaluate, paired_auc_difference
from lalm_audit.layout import RESULTS
from lalm_audit.targets import average_renderings, parse_targets, target_scores


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
            common = x.index.intersection(logit.dropna().index)
            if len(common) < 3:
                continue
            c = correlation(x.loc[common].to_numpy(), logit.loc[common].to_numpy(), n_resamples=n_resamples,
                            confidence=confidence, seed=seed)  # fmt: skip
            rows.append({"slice": sl, "indicator": ind, "blind_group": group, "pearson_r": c.pearson,
                         "pearson_lo": c.pearson_lo, "pearson_hi": c.pearson_hi, "spearman_r": c.spearman,
                         "spearman_lo": c.spearman_lo, "spearman_hi": c.spearman_hi, "n": c.n})  # fmt: skip
    return pd.DataFrame(rows)


def _fold_ids(labels: np.ndarray, folds: int | np.ndarray, seed: int) -> np.ndarray:
    """Fold index per item: given as an array, or stratified k-fold (fewer folds when a class is small)."""
    if not np.isscalar(folds):
        return np.asarray(folds, dtype=int)
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels).astype(int)
    k = min(int(folds), int(np.bincount(y, minlength=2).min()))
    if k < 2:
        raise ValueError("confound adjustment needs at least 2 members and 2 non-members")
    out = np.empty(y.size, dtype=int)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, test) in enumerate(cv.split(np.zeros(y.size), y)):
        out[test] = f
    return out


def adjust_many(
    scores: Mapping[str, np.ndarray],
    labels: np.ndarray,
    blind_X: pd.DataFrame,
    make_preprocessor: Any,
    *,
    folds: int | np.ndarray = 10,
    seed: int = 0,
    shared_fits: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """Out-of-fold residuals and blind(+indicator) probabilities for several scores at once.

    In each training fold, the blind preprocessing (``make_preprocessor()``:
    the blind pipeline without its classifier, e.g. scaling + TF-IDF) is fit
    once and shared by every score:

    - residual: the score minus what the blind side predicts of it, in two
      steps fit on the training fold: (1) the mean score of the 20 training
      items nearest in blind propensity (the blind classifier's out-of-fold
      membership probability: nearest-neighbour regression, so a shift is
      removed even when the score depends on it non-linearly; the training
      items' propensities come from an inner CV, since in-sample ones are
      overconfident), then (2) a ridge regression of what is left on the
      blind features (penalty by efficient leave-one-out). Whatever the blind
      artifacts explain is gone (conservative: signal that merely correlates
      with the shift goes too). Like any cross-validated estimate on data
      without signal, the residual's AUC leans slightly below 0.5 (the test
      fold's class balance is the mirror of its training fold's); a fully
      explained score reads about 0.45, not exactly 0.5.
    - nested CV of a blind-only logistic regression (``LogisticRegressionCV``
      picks the penalty by an inner CV of the training fold) and of blind +
      score with the same penalty (the score is one more standardized column).

    ``folds``: a fold index per item (e.g. the blind stage's text-grouped
    folds, so that one sentence never sits on both sides of a fold) or a
    number of stratified folds. Returns (residuals, p_blind, p_both) keyed by
    score name.

    ``shared_fits`` (default): the neighbour search and the ridge of step (1)/(2) are fit
    once per fold for all scores as the columns of one target matrix (``RidgeCV`` with
    ``alpha_per_target``: each score keeps its own leave-one-out penalty, and the
    decomposition of the blind matrix is shared). The same numbers as one fit per score
    (``shared_fits=False``, kept as the benchmark's baseline) to rounding (tested at 1e-8),
    at a fraction of the cost: the per-score ridge was 92% of a fold at 5,000 items.
    """
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels).astype(int)
    fold = _fold_ids(y, folds, seed)
    cols = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    resid = {k: np.empty(y.size) for k in cols}
    p_both = {k: np.empty(y.size) for k in cols}
    p_blind = np.empty(y.size)
    for f in np.unique(fold):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        pre = make_preprocessor().fit(blind_X.iloc[train], y[train])
        z_train = _dense(pre.transform(blind_X.iloc[train]))
        z_test = _dense(pre.transform(blind_X.iloc[test]))
        inner = dict(
            Cs=np.logspace(-2, 3, 6), cv=min(5, int(np.bincount(y[train]).min())), scoring="neg_log_loss",
            l1_ratios=(0.0,), use_legacy_attributes=False, max_iter=5000, random_state=seed,
        )  # fmt: skip
        blind = LogisticRegressionCV(**inner).fit(z_train, y[train])
        p_blind[test] = blind.predict_proba(z_test)[:, 1]
        # the training items' propensity out of (inner) fold too: in-sample probabilities are overconfident
        # and a regression on them would not transfer to the held-out items
        c_blind = float(np.atleast_1d(blind.C_)[0])
        prop_train = cross_val_predict(
            LogisticRegression(C=c_blind, max_iter=5000),
            z_train, y[train], cv=inner["cv"], method="predict_proba",
        )[:, 1:]  # fmt: skip
        prop_test = p_blind[test, None]
        # 1) the score on the blind propensity (the classifier's membership probability): removes a
        #    shift even where it is a non-linear function of the features; 2) what is left, on the
        #    features themselves (ridge)
        knn = KNeighborsRegressor(n_neighbors=min(20, max(1, len(train) // 5)))
        alphas = np.logspace(-3, 4, 15)
        if shared_fits and cols:
            names = list(cols)
            s_all = np.column_stack([cols[k] for k in names])
            knn.fit(prop_train, s_all[train])
            left = s_all[train] - knn.predict(prop_train)
            reg = RidgeCV(alphas=alphas, alpha_per_target=True).fit(z_train, left)
            r_all = s_all[test] - knn.predict(prop_test) - reg.predict(z_test)
            for j, k in enumerate(names):
                resid[k][test] = r_all[:, j]
        for k, s in cols.items():
            if not shared_fits:
                knn.fit(prop_train, s[train])
                left = s[train] - knn.predict(prop_train)
                reg = RidgeCV(alphas=alphas).fit(z_train, left)
                resid[k][test] = s[test] - knn.predict(prop_test) - reg.predict(z_test)
            sc = StandardScaler().fit(s[train, None])
            # the blind model's penalty (chosen by its inner CV on this training fold) for the
            # blind + score model: the comparison then differs by the one column only
            both = LogisticRegression(C=c_blind, max_iter=5000).fit(
                np.hstack([z_train, sc.transform(s[train, None])]), y[train]
            )
            p_both[k][test] = both.predict_proba(np.hstack([z_test, sc.transform(s[test, None])]))[
                :, 1
            ]
    return resid, p_blind, p_both


def _dense(z: Any) -> np.ndarray:
    return z.toarray() if hasattr(z, "toarray") else np.asarray(z)


def confound_adjusted_many(
    scores: Mapping[str, np.ndarray],
    labels: np.ndarray,
    blind_X: pd.DataFrame,
    make_preprocessor: Any,
    *,
    folds: int | np.ndarray = 10,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per score: raw AUC, AUC with the blind features regressed out, gain of blind + score over blind alone."""
    y = np.asarray(labels).astype(int)
    resid, p_blind, p_both = adjust_many(
        scores, y, blind_X, make_preprocessor, folds=folds, seed=seed
    )
    kw = dict(n_resamples=n_resamples, confidence=confidence, seed=seed)
    out = {}
    for k, s in scores.items():
        raw = evaluate(y, np.asarray(s, dtype=float), **kw)
        adj = evaluate(y, resid[k], **kw)
        gain = paired_auc_difference(y, p_both[k], p_blind, **kw)
        out[k] = {
            "auc": raw.auc, "auc_lo": raw.auc_lo, "auc_hi": raw.auc_hi,
            "adjusted_auc": adj.auc, "adjusted_lo": adj.auc_lo, "adjusted_hi": adj.auc_hi,
            "blind_auc": gain.auc_b, "blind_plus_auc": gain.auc_a,
            "gain": gain.diff, "gain_lo": gain.diff_lo, "gain_hi": gain.diff_hi, "gain_p": gain.p_value,
        }  # fmt: skip
    return out


def confound_adjusted(
    score: np.ndarray,
    labels: np.ndarray,
    blind_X: pd.DataFrame,
    make_preprocessor: Any,
    *,
    folds: int | np.ndarray = 10,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """:func:`confound_adjusted_many` for one score."""
    return confound_adjusted_many(
        {"score": score}, labels, blind_X, make_preprocessor, folds=folds,
        n_resamples=n_resamples, confidence=confidence, seed=seed,
    )["score"]  # fmt: skip


def run_correlation(
    cfg: Any,
    dataset: str,
    scores_path: str,
    aggregate_path: str | None,
    splits: Mapping[str, str | None],
    *,
    correlation_out: str,
    adjusted_out: str,
    markdown_out: str | None = None,
    latex_out: str | None = None,
    figure_png: str | None = None,
    figure_pdf: str | None = None,
    results: str = RESULTS,
    manifest: str | None = None,
    status_path: str | None = None,
    mia_metrics_path: str | None = None,
    title: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Correlation stage: how much of each target's MIA signal the blind artifacts explain, per split.

    - correlation of every target score (``analysis.targets`` and the
      aggregated attack) with the blind out-of-fold logit of the combined
      features and of each feature group (the reported classifier), bootstrap CIs;
    - the confound-adjusted AUC and the gain of blind + indicator over blind
      alone (nested CV over the blind stage's folds, text-grouped), with a verdict;
    - a scatter grid (indicator vs combined blind logit, full split) and the
      table as Markdown and LaTeX.
    """
    from functools import partial

    from lalm_audit import io
    from lalm_audit.blind import (
        COMBINED,
        fold_grouping,
        group_columns,
        load_blind,
        make_preprocessor,
        stratified_folds,
    )
    from lalm_audit.features.table import load_features
    from lalm_audit.mia import mark_confounded
    from lalm_audit.schemas import CONFOUND_ADJUSTED, CORRELATION

    ev = cfg.evaluation
    kw = dict(n_resamples=ev.bootstrap, confidence=ev.confidence, seed=cfg.seed)
    scores = average_renderings(io.read_table(scores_path))
    aggregate = io.read_table(aggregate_path) if aggregate_path else None
    targets = parse_targets(cfg.analysis.targets)
    if aggregate is not None and ("all", "aggregate") not in targets:
        targets.append(("all", "aggregate"))
    blind = load_blind(dataset, results)
    groups = [g for g in (COMBINED, *cfg.features.groups) if g in set(blind.predictions["group"])]
    logits = {g: blind.scores(g).set_index("item_id")["logit"] for g in groups}
    fs = load_features(dataset, cfg.features.groups, results=results, manifest=manifest)
    agg_p: dict[str, float] = {}
    if mia_metrics_path:
        mm = io.read_table(mia_metrics_path)
        mm = mm[mm["indicator"] == "aggregate"]
        agg_p = dict(zip(mm["split"], mm["p_perm"], strict=True))
    corr_frames: list[pd.DataFrame] = []
    adj_rows: list[dict[str, Any]] = []
    # the figure's panels: the first split's scores against the combined logit
    panels: list[dict[str, Any]] = []
    for split, path in splits.items():
        items = None if path is None else set(io.read_table(path, columns=["item_id"])["item_id"])
        sub = fs if items is None else fs.subset(np.isin(fs.item_ids, list(items)))
        ids = pd.Index(sub.item_ids)
        complete = {
            t: x.reindex(ids) for t, x in target_scores(scores, aggregate, split, targets).items()
        }
        missing = {
            f"{t[0]}/{t[1]}": int(x.isna().sum()) for t, x in complete.items() if x.isna().any()
        }
        if missing:
            raise ValueError(
                f"{dataset}, split {split}: items without a score for {missing}; "
                "the indicator table must cover every item of the split"
            )
        blind_at = {g: lg.reindex(ids) for g, lg in logits.items()}
        y = sub.labels
        long = pd.concat(
            [pd.DataFrame({"item_id": ids, "label": y, "slice": sl, "indicator": ind, "score": x.to_numpy()})
             for (sl, ind), x in complete.items()]
        )  # fmt: skip
        c = correlation_table(long, blind_at, **kw)
        c.insert(0, "split", split)
        corr_frames.append(c)
        comb = c[c["blind_group"] == COMBINED]
        r_combined = dict(
            zip(zip(comb["slice"], comb["indicator"], strict=True), comb["pearson_r"], strict=True)
        )
        adjusted: dict[tuple[str, str], dict[str, float]] = {}
        if cfg.analysis.confound_adjust and int(np.bincount(y, minlength=2).min()) >= 2:
            folds = stratified_folds(
                y, cfg.blind.folds, cfg.seed, groups=fold_grouping(sub, cfg.blind).groups
            )
            pre = partial(make_preprocessor, group_columns(sub, COMBINED), "logistic", cfg.blind)
            adjusted = confound_adjusted_many(
                {t: x.to_numpy() for t, x in complete.items()}, y, sub.frame, pre, folds=folds, **kw
            )
        for t, x in complete.items():
            e = evaluate(y, x.to_numpy(), **kw)
            row = {"split": split, "slice": t[0], "indicator": t[1], "auc": e.auc, "auc_lo": e.auc_lo,
                   "auc_hi": e.auc_hi, "pearson_r": r_combined.get(t, np.nan), "n_members": int((y == 1).sum()),
                   "n_nonmembers": int((y == 0).sum())}  # fmt: skip
            if t == (
                "all",
                "aggregate",
            ):  # a learned score: its significance is its permutation p-value
                row["p_perm"] = agg_p.get(split, np.nan)
            a = adjusted.get(t, {})
            for k in ("adjusted_auc", "adjusted_lo", "adjusted_hi", "blind_auc", "blind_plus_auc", "gain",
                      "gain_lo", "gain_hi", "gain_p"):  # fmt: skip
                row[k] = a.get(k, np.nan)
            adj_rows.append(row)
        if not panels and blind_at:
            lg = blind_at.get(COMBINED, next(iter(blind_at.values())))
            ok = lg.notna().to_numpy()
            panels = [{"name": f"{sl}/{ind}", "x": lg.to_numpy()[ok], "y": x.to_numpy()[ok], "labels": y[ok]}
                      for (sl, ind), x in complete.items()]  # fmt: skip
    corr = pd.concat(corr_frames, ignore_index=True)
    adj = mark_confounded(
        pd.DataFrame(adj_rows), io.read_table(status_path) if status_path else None
    )
    adj["verdict"] = [
        verdicts.correlation_verdict(r, cfg.verdicts.alpha) for r in adj.to_dict("records")
    ]
    prov = io.provenance(
        "correlation", cfg, **{**io.source_identity(scores_path), "dataset": dataset}
    )
    io.write_table(corr, correlation_out, schema=CORRELATION, prov=prov)
    io.write_table(adj, adjusted_out, schema=CONFOUND_ADJUSTED, prov=prov)
    if markdown_out or latex_out:
        from lalm_audit.render.tables import adjusted_table, to_latex, to_markdown

        t = adjusted_table(adj)
        if markdown_out:
            io.write_text(f"# {title or dataset}: MIA signal vs blind artifacts\n\n" + to_markdown(t),
                          markdown_out)  # fmt: skip
        if latex_out:
            io.write_text(
                to_latex(t, caption=f"{title or dataset}: MIA signal against blind artifacts",
                         label=f"tab:adjusted-{dataset}"),
                latex_out,
            )  # fmt: skip
    if figure_png:
        from lalm_audit.render.mia_figures import correlation_grid_figure
        from lalm_audit.render.style import save

        # the first split's rows come first in the table, in the panels' order
        for p, row in zip(panels, adj.to_dict("records"), strict=False):
            p["row"] = row
        fig = correlation_grid_figure(panels, title=title or dataset, split=next(iter(splits)))
        save(fig, *[p for p in (figure_png, figure_pdf) if p])
    return corr, adj
