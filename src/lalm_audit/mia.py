"""Membership-inference evaluation: indicator scores -> aggregated attack, dataset test, metrics per split.

Inputs are the long indicator table of :mod:`lalm_audit.indicators` (one row
per item x slice x indicator) and the items' labels; a *split* is a named
subset of items (``full``; the clean splits of the blind-baseline stage). No
model runs here.

- Every (slice, indicator) is evaluated with :func:`lalm_audit.evaluation.evaluate`, the scores of
  the same items sharing one set of bootstrap draws.
- The aggregated attack is a logistic regression over all indicators
  (imputation and standardization fit inside each training fold), stratified
  K-fold CV, re-run within each split; its out-of-fold membership probability
  is one more score (``aggregate`` on slice ``all``).
- The dataset-level test of the aggregated attack is a permutation test: the
  same CV refit on label shuffles (``verdicts.aggregate_shuffles``) gives the
  null of its AUC, and :func:`lalm_audit.verdicts.learned_signal_verdict`
  reads it. (A Welch t-test on out-of-fold scores, as in Maini et al., treats
  scores from ten different fold models as independent draws and ignores the
  refit: on a model that never saw a member it fired at p = 0.037.)
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

from lalm_audit import verdicts
from lalm_audit.evaluation import StratifiedResamples, auc, bootstrap_auc_ci, evaluate, tpr_column

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
    agg_slices: tuple[str, ...] | None = (
        None  # slices whose indicators feed the aggregate (None: all)
    )
    shuffles: int = 19  # label shuffles of the aggregate's CV (its permutation null)
    speaker_bootstrap: bool = (
        True  # a speaker-level CI beside the item-level one, when speakers are given
    )
    alpha: float = 0.05  # the verdicts' false-positive rate


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
    X = X[:, ~np.all(np.isnan(X), axis=0)]
    return pd.Series(_oof_aggregate(X, y, folds, seed, C), index=wide.index, name=AGGREGATE)


def _oof_aggregate(X: np.ndarray, y: np.ndarray, folds: int, seed: int, C: float) -> np.ndarray:
    n_min = int(min((y == 1).sum(), (y == 0).sum()))
    k = min(folds, n_min)
    if k < 2:
        raise ValueError(f"aggregated attack needs >= 2 items per class (got {n_min})")
    model = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(C=C, max_iter=5000)
    )
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]


def aggregate_null(
    wide: pd.DataFrame, labels: pd.Series, *, folds: int = 10, seed: int = 0, C: float = 1.0,
    shuffles: int = 19,
) -> np.ndarray:  # fmt: skip
    """AUCs of the aggregated attack's whole CV refit on ``shuffles`` label shuffles (its permutation null)."""
    y = labels.loc[wide.index].to_numpy().astype(int)
    X = wide.to_numpy(dtype=float)
    X = X[:, ~np.all(np.isnan(X), axis=0)]
    rng = np.random.default_rng([seed, 0x5A66])
    out = np.empty(shuffles)
    for r in range(shuffles):
        yr = rng.permutation(y)
        out[r] = auc(yr, _oof_aggregate(X, yr, folds, seed + 1 + r, C))
    return out


def evaluate_split(
    scores: pd.DataFrame,
    labels: pd.Series,
    items: set[str] | None,
    settings: EvalSettings,
    speakers: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Metrics of every (slice, indicator) and of the aggregated attack on one split.

    ``speakers`` (item id -> speaker id, derived items map to their source item): adds a
    speaker-level bootstrap CI of every AUC (``auc_lo_speaker`` / ``auc_hi_speaker``), whole
    speakers drawn with replacement, beside the item-level one.
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
    # Every score on the same items (in the same order) shares one set of bootstrap draws: the draws each
    # score would make from the same seed, so sharing changes the cost, not the numbers.
    shared: dict[tuple[str, ...], StratifiedResamples] = {}

    def resamples_for(item_ids: np.ndarray, y: np.ndarray) -> StratifiedResamples | None:
        if min(int((y == 1).sum()), int((y == 0).sum())) < 2:
            return None  # evaluate() says why
        key = tuple(item_ids)
        if key not in shared:
            shared[key] = StratifiedResamples.draw(y, settings.n_resamples, settings.seed)
        return shared[key]

    clustered: dict[tuple[str, ...], StratifiedResamples] = {}

    def speaker_ci(item_ids: np.ndarray, y: np.ndarray, s: np.ndarray) -> dict[str, float]:
        if speakers is None or not settings.speaker_bootstrap:
            return {}
        key = tuple(item_ids)
        if key not in clustered:
            spk = speakers.reindex([base_item_id(i) for i in item_ids]).to_numpy()
            clustered[key] = StratifiedResamples.draw_clustered(
                y, spk, settings.n_resamples, settings.seed
            )
        lo, hi = bootstrap_auc_ci(y, s, confidence=settings.confidence, resamples=clustered[key])
        return {"auc_lo_speaker": lo, "auc_hi_speaker": hi}

    for (sl, ind), grp in scores.groupby(["slice", "indicator"], sort=True):
        y = labels.loc[grp["item_id"]].to_numpy()
        if len(np.unique(y)) < 2:
            continue
        ids, s = grp["item_id"].to_numpy(), grp["score"].to_numpy()
        e = evaluate(y, s, n_resamples=settings.n_resamples, confidence=settings.confidence,
                     fprs=settings.fprs, seed=settings.seed, resamples=resamples_for(ids, y))  # fmt: skip
        rows.append({"slice": sl, "indicator": ind, **e.as_row(), **speaker_ci(ids, y, s)})
    wide = wide_scores(
        scores if settings.agg_slices is None else scores[scores["slice"].isin(settings.agg_slices)]
    )
    agg = aggregate_attack(wide, labels, folds=settings.folds, seed=settings.seed, C=settings.C)
    y = labels.loc[agg.index].to_numpy()
    e = evaluate(y, agg.to_numpy(), n_resamples=settings.n_resamples, confidence=settings.confidence,
                 fprs=settings.fprs, seed=settings.seed,
                 resamples=resamples_for(agg.index.to_numpy(), y))  # fmt: skip
    rows.append({"slice": "all", "indicator": AGGREGATE, **e.as_row(),
                 **speaker_ci(agg.index.to_numpy(), y, agg.to_numpy())})  # fmt: skip
    null = aggregate_null(wide, labels, folds=settings.folds, seed=settings.seed, C=settings.C,
                          shuffles=settings.shuffles)  # fmt: skip
    v = verdicts.learned_signal_verdict(float(rows[-1]["auc"]), null, settings)
    test = {
        "p_perm": v.p_value,
        "agg_verdict": v.sentence,
        "agg_signal": v.state == "signal",
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
    speakers: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate on every split. Returns (metrics with a ``split`` column and the dataset test, aggregate scores)."""
    metrics, aggs = [], []
    for name, items in splits.items():
        m, a, test = evaluate_split(scores, labels, items, settings, speakers)
        m.insert(0, "split", name)
        for k, v in test.items():
            m[k] = (
                v
                if k not in ("p_perm", "agg_verdict")
                else np.where(m["indicator"] == AGGREGATE, v, None)
            )
        a.insert(0, "split", name)
        metrics.append(m)
        aggs.append(a)
        log.info(
            "split %s: %d items, aggregate %s",
            name,
            len(a),
            test["agg_verdict"],
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
        if "confounded" in m:
            row["confounded"] = bool(m["confounded"].iloc[0])
            row["blind_verdict"] = str(m["blind_verdict"].iloc[0])
        loss = m[(m["slice"] == "response") & (m["indicator"] == "loss")]
        if len(loss):
            r = loss.iloc[0]
            row.update(loss_auc=r["auc"], loss_lo=r["auc_lo"], loss_hi=r["auc_hi"],
                       **_tpr_fields(r, tcol, "loss_tpr"))  # fmt: skip
        single = m[m["indicator"] != AGGREGATE]
        best = single.loc[single["auc"].idxmax()]
        row.update(best=f"{best['slice']}/{best['indicator']}", best_auc=best["auc"], best_lo=best["auc_lo"],
                   best_hi=best["auc_hi"], n_indicators=len(single))  # fmt: skip
        agg = m[m["indicator"] == AGGREGATE].iloc[0]
        row.update(
            agg_auc=agg["auc"],
            agg_lo=agg["auc_lo"],
            agg_hi=agg["auc_hi"],
            **_tpr_fields(agg, tcol, "agg_tpr"),
            tpr_fpr=fpr,
            p_perm=agg["p_perm"],
            agg_verdict=aggregate_word(bool(agg["agg_signal"]), bool(row.get("confounded", False))),
        )
        out.append(row)
    return pd.DataFrame(out)


def _tpr_fields(r: Any, tcol: str, name: str) -> dict[str, Any]:
    """The TPR of a metrics row with its CI and counts, renamed for the headline (NaN where absent)."""
    return {
        name + suffix: r.get(tcol + suffix, np.nan) for suffix in ("", "_lo", "_hi", "_tp", "_fp")
    }


# --------------------------------------------------------------------------- stages (I/O at the edges)


def run_indicators(
    cfg: Any,
    model: str,
    token_stats_path: str | list[str],
    manifest_path: str,
    out: str,
    reference_path: str | list[str] | None = None,
) -> pd.DataFrame:
    """Indicator stage: stored token statistics (one file or its shards) -> long score table
    (item_id, label, slice, indicator, score)."""
    from lalm_audit import io
    from lalm_audit.indicators import build_indicators, compute_scores
    from lalm_audit.schemas import INDICATOR_SCORES

    ind_cfg = cfg.indicators
    stats = io.read_tables(token_stats_path)
    labels = io.read_table(manifest_path, columns=["item_id", "label"]).set_index("item_id")[
        "label"
    ]
    ref = io.read_table(reference_path) if reference_path else None
    scores = compute_scores(
        stats, build_indicators(ind_cfg.families, ind_cfg.k_grid), ind_cfg.slices, reference=ref
    )
    missing = sorted(set(stats["item_id"]) - set(labels.index))
    if missing:
        raise ValueError(
            f"{len(missing)} scored items are not in {manifest_path}, e.g. {missing[:3]}"
        )
    scores.insert(1, "label", labels.loc[scores["item_id"]].to_numpy().astype(np.int8))
    n_items = stats["item_id"].nunique()
    log.info(
        "%s: %d items x %d (slice, indicator) scores",
        model,
        n_items,
        scores.groupby(["slice", "indicator"]).ngroups,
    )
    first = token_stats_path if isinstance(token_stats_path, str) else token_stats_path[0]
    prov = io.provenance("indicators", cfg, **{**io.source_identity(first), "model": model})
    io.write_table(scores, out, schema=INDICATOR_SCORES, prov=prov)
    return scores


def known_speakers(manifest_path: str | None) -> pd.Series | None:
    """item_id -> speaker_id from a manifest, or None when it names no speaker (all 'unknown')."""
    from lalm_audit import io

    if manifest_path is None:
        return None
    m = io.read_table(manifest_path, columns=["item_id", "speaker_id"])
    spk = m.set_index("item_id")["speaker_id"].astype(str)
    known = ~spk.isin(["", "unknown", "None", "nan"])
    if known.sum() == 0 or spk[known].nunique() < 4:
        return None  # too few speakers to draw from: the item-level CI stands alone
    return spk.where(known, "\0item:" + spk.index.to_series())


def settings_from(cfg: Any) -> EvalSettings:
    ev, agg = cfg.evaluation, cfg.indicators.aggregate
    slices = tuple(agg.slices) if agg.slices is not None else None
    return EvalSettings(
        n_resamples=ev.bootstrap, confidence=ev.confidence, fprs=tuple(ev.fpr_targets), seed=cfg.seed,
        folds=agg.folds, C=agg.C, agg_slices=slices, shuffles=cfg.verdicts.aggregate_shuffles,
        alpha=cfg.verdicts.alpha, speaker_bootstrap=ev.speaker_bootstrap == "auto",
    )  # fmt: skip


def run_mia(
    cfg: Any,
    scores_path: str,
    splits: Mapping[str, str | None],
    metrics_out: str,
    aggregate_out: str,
    table_out: str,
    *,
    status_path: str | None = None,
    manifest_path: str | None = None,
) -> pd.DataFrame:
    """Evaluation stage: metrics per split x slice x indicator, the aggregated attack, a Markdown table.

    ``splits`` maps a split name to a Parquet file of retained item ids
    (``None``: every item, the ``full`` split). ``status_path``: the clean-split
    stage's status table; every row of a split whose blind baseline is not at
    chance is marked ``confounded`` (and says why in ``blind_verdict``).
    """
    from lalm_audit import io
    from lalm_audit.schemas import AGGREGATE_SCORES, MIA_METRICS

    scores = io.read_table(scores_path)
    labels = scores.drop_duplicates("item_id").set_index("item_id")["label"].astype(int)
    members = {
        name: (None if path is None else set(io.read_table(path, columns=["item_id"])["item_id"]))
        for name, path in splits.items()
    }
    metrics, agg = evaluate_mia(
        scores[["item_id", "slice", "indicator", "score"]], labels, members, settings_from(cfg),
        speakers=known_speakers(manifest_path),
    )  # fmt: skip
    metrics = mark_confounded(metrics, io.read_table(status_path) if status_path else None)
    prov = io.provenance("mia", cfg, **io.source_identity(scores_path))
    io.write_table(metrics, metrics_out, schema=MIA_METRICS, prov=prov)
    io.write_table(agg, aggregate_out, schema=AGGREGATE_SCORES, prov=prov)
    io.write_text(markdown_table(metrics), table_out)
    return metrics


def mark_confounded(metrics: pd.DataFrame, status: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``confounded`` / ``blind_verdict`` per split from the clean-split status table."""
    out = metrics.copy()
    if status is None:
        out["confounded"] = False
        out["blind_verdict"] = verdicts.NOT_CHECKED
        return out
    st = status.set_index("split")
    missing = sorted(set(out["split"]) - set(st.index))
    if missing:
        raise ValueError(f"the split status table has no row for splits {missing}")
    out["confounded"] = ~out["split"].map(st["at_chance"]).astype(bool)
    out["blind_verdict"] = out["split"].map(st["verdict"])
    return out


def aggregate_word(signal: bool, confounded: bool) -> str:
    """What the aggregated attack's permutation test says, given the split's blind state."""
    if not signal:
        return "no signal"
    return "NOT IDENTIFIABLE (shifted split)" if confounded else "signal"


def markdown_table(metrics: pd.DataFrame, fpr: float = 0.01, top: int = 10) -> str:
    """Readable summary: headline per split, then the top indicators per split."""
    from lalm_audit.render.tables import tpr_cell

    lines = ["# Membership inference results", ""]
    h = headline(metrics, fpr)
    lines.append("| split | blind baseline | members | non-members | loss (response) AUC [95% CI] | aggregate AUC [95% CI] | "
                 f"aggregate TPR@{fpr:.1%} FPR [95% CI] | aggregate p (permutation) | best of {int(h['n_indicators'].max())} (post hoc) |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for _, r in h.iterrows():
        loss = (
            f"{r['loss_auc']:.3f} [{r['loss_lo']:.3f}, {r['loss_hi']:.3f}]"
            if "loss_auc" in r and pd.notna(r.get("loss_auc"))
            else "-"
        )
        lines.append(
            f"| {r['split']} | {verdicts.status_word(r)} | {r['n_members']} | {r['n_nonmembers']} | {loss} | {r['agg_auc']:.3f} [{r['agg_lo']:.3f}, {r['agg_hi']:.3f}] "
            f"| {tpr_cell(r, fpr, 'agg_tpr')} | {r['p_perm']:.2g}: {r['agg_verdict']} | {r['best']}: {r['best_auc']:.3f} [{r['best_lo']:.3f}, {r['best_hi']:.3f}] |"
        )
    for split, m in metrics.groupby("split", sort=False):
        lines += [
            "",
            f"## Top {top} indicators, split `{split}`",
            "",
            f"| slice | indicator | AUC [95% CI] | TPR@{fpr:.1%} FPR [95% CI] |",
            "|---|---|---|---|",
        ]
        for _, r in m.sort_values("auc", ascending=False).head(top).iterrows():
            lines.append(
                f"| {r['slice']} | {r['indicator']} | {r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] | {tpr_cell(r, fpr)} |"
            )
    lines += ["", "The best single indicator is chosen after seeing all of them, so its AUC is optimistic; "
              "the aggregate is cross-validated.", ""]  # fmt: skip
    for _, r in h.iterrows():
        if r.get("confounded"):
            lines.append(f"**Split `{r['split']}` is CONFOUNDED**: {r['blind_verdict']}. Its MIA numbers measure the shift "
                         "as much as (or instead of) membership.")  # fmt: skip
    return "\n".join(lines)


def run_mia_summary(
    metric_paths: list[str],
    out: str,
    markdown_out: str,
    *,
    alpha: float = 0.05,
    shuffles: int = 99,
) -> pd.DataFrame:
    """Headline rows (loss on the response, best indicator, aggregate, dataset test) across all runs.

    Each metrics file names its model, dataset and response in its provenance. The Markdown ends with :func:`lalm_audit.verdicts.audit_wide_line` over the aggregate tests of
    every row (``alpha`` = ``verdicts.alpha``, ``shuffles`` = ``verdicts.aggregate_shuffles``).
    """
    from lalm_audit import io
    from lalm_audit.render.tables import to_markdown

    frames = []
    for p in metric_paths:
        model, dataset, response = io.identity_of(p, "model", "dataset", "response")
        h = headline(io.read_table(p))
        h.insert(0, "response", response)
        h.insert(0, "model", model)
        h.insert(0, "dataset", dataset)
        frames.append(h)
    table = pd.concat(frames, ignore_index=True)
    io.write_table(table, out, prov=io.provenance("mia_summary", {"inputs": sorted(metric_paths)}))
    md = summary_frame(table)
    io.write_text(
        "# Membership inference: headline results\n\n" + to_markdown(md)
        + "\n`loss` is the mean log-likelihood of the response slice; the aggregate is a cross-validated logistic "
        "regression over all indicators; the best single indicator is picked after seeing all of them "
        "(optimistic).\n\n" + verdicts.audit_wide_line(
            table["p_perm"], table["agg_verdict"] == "signal", alpha, shuffles
        ) + "\n",
        markdown_out,
    )  # fmt: skip
    return table


def summary_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The readable headline table (one row per dataset x model x response x split) of a summary table."""
    from lalm_audit.render.tables import fmt_ci, tpr_cell

    fpr = float(table["tpr_fpr"].iloc[0]) if "tpr_fpr" in table and len(table) else 0.01
    return pd.DataFrame({
        "dataset": table["dataset"], "model": table["model"], "response": table["response"], "split": table["split"],
        "blind baseline": [verdicts.status_word(r) for _, r in table.iterrows()],
        "members / non-members": table["n_members"].astype(str) + " / " + table["n_nonmembers"].astype(str),
        "loss AUC [95% CI]": [fmt_ci(*r) for r in table[["loss_auc", "loss_lo", "loss_hi"]].itertuples(index=False)]
        if "loss_auc" in table else "-",
        "aggregate AUC [95% CI]": [fmt_ci(*r) for r in table[["agg_auc", "agg_lo", "agg_hi"]].itertuples(index=False)],
        f"aggregate TPR@{fpr:.1%}FPR": [tpr_cell(r, fpr, "agg_tpr") for _, r in table.iterrows()],
        "aggregate p (permutation)": [f"{p:.2g}: {w}" for p, w in zip(table["p_perm"], table["agg_verdict"], strict=True)],
        "best single indicator (post hoc)": table["best"] + ": " + table["best_auc"].map(lambda v: f"{v:.3f}"),
    })  # fmt: skip
