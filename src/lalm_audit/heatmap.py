"""Cross-dataset heatmap (the paper's Figure 2): the blind AUC of telling any two groups of items apart.

Sides are each audited dataset's members and non-members (pairing ``label``)
or whole datasets (pairing ``dataset``). For every unordered pair of sides, a
blind classifier (all configured feature groups combined, stratified CV) is
trained to tell them apart; its out-of-fold AUC is the cell. Two member sets
are *membership-neutral*: both were trained on, so any separation is a
distribution shift, and a membership attack run across them measures it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from lalm_audit import evaluation as ev
from lalm_audit import io
from lalm_audit.blind import COMBINED, derive_seed, oof_scores, stratified_folds, text_groups
from lalm_audit.config import BlindConfig, Config, EvaluationConfig
from lalm_audit.features.table import FeatureSet, load_features
from lalm_audit.layout import RESULTS, Layout
from lalm_audit.schemas import HEATMAP

log = logging.getLogger(__name__)

LABEL_NAMES = {1: "members", 0: "non-members"}


@dataclass(frozen=True)
class Side:
    """One group of items on a heatmap axis."""

    name: str
    dataset: str
    label: str  # 'members', 'non-members' or 'all'
    features: FeatureSet


def make_sides(sets: Mapping[str, FeatureSet], pairing: str = "label") -> list[Side]:
    """Heatmap sides of each dataset's feature set, in config order (members before non-members)."""
    sides = []
    for ds, fs in sets.items():
        if pairing == "dataset":
            sides.append(Side(ds, ds, "all", fs))
            continue
        for lab in (1, 0):
            sides.append(
                Side(f"{ds}:{LABEL_NAMES[lab]}", ds, LABEL_NAMES[lab], fs.subset(fs.labels == lab))
            )
    return sides


def pair_kind(a: Side, b: Side) -> str:
    if a.dataset == b.dataset:
        return "within-dataset"
    if a.label == b.label == "members":
        return "membership-neutral"
    return "cross-dataset"


def _pair(a: Side, b: Side, cfg: BlindConfig, evaluation: EvaluationConfig, seed: int) -> dict:
    with threadpool_limits(1):  # pairs are the unit of parallelism
        return _pair_inner(a, b, cfg, evaluation, seed)


def _pair_inner(
    a: Side, b: Side, cfg: BlindConfig, evaluation: EvaluationConfig, seed: int
) -> dict:
    hm = cfg.heatmap
    fs = FeatureSet.concat([a.features, b.features])
    y = np.r_[np.ones(len(a.features), int), np.zeros(len(b.features), int)]
    fs = fs.with_labels(y)
    if hm.groups is not None:
        fs = FeatureSet(fs.items, fs.frame, {g: fs.groups[g] for g in hm.groups}, fs.failed)
    groups = text_groups(fs) if cfg.group_same_text else None
    folds = stratified_folds(
        y, hm.folds, derive_seed(seed, "heatmap-folds", a.name, b.name), groups
    )
    classifiers = list(cfg.classifiers) if hm.classifier == "stronger" else [hm.classifier]
    best: tuple[float, str, np.ndarray] | None = None
    for clf in classifiers:
        oof = oof_scores(fs, COMBINED, clf, cfg, labels=y, folds=folds, seed=seed)
        auc = ev.auc(y, oof.logit)
        if best is None or auc > best[0]:
            best = (auc, clf, oof.logit)
    assert best is not None
    e = ev.evaluate(
        y, best[2], n_resamples=evaluation.bootstrap, confidence=evaluation.confidence,
        fprs=evaluation.fpr_targets, seed=derive_seed(seed, "heatmap-bootstrap", a.name, b.name),
    )  # fmt: skip
    return {
        "side_a": a.name, "side_b": b.name, "dataset_a": a.dataset, "dataset_b": b.dataset,
        "label_a": a.label, "label_b": b.label, "pair_kind": pair_kind(a, b), "classifier": best[1],
        "auc": e.auc, "auc_lo": e.auc_lo, "auc_hi": e.auc_hi, "n_a": len(a.features), "n_b": len(b.features),
    }  # fmt: skip


def heatmap(
    sets: Mapping[str, FeatureSet],
    cfg: BlindConfig,
    evaluation: EvaluationConfig,
    *,
    seed: int,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Blind AUC of every pair of sides; every ordered pair is a row (one CV per unordered pair)."""
    sides = make_sides(sets, cfg.heatmap.pairing)
    pairs = list(combinations(sides, 2))
    log.info("heatmap: %d sides, %d pairs", len(sides), len(pairs))
    rows = Parallel(n_jobs=n_jobs)(delayed(_pair)(a, b, cfg, evaluation, seed) for a, b in pairs)
    mirrored = []
    for r in rows:
        m = dict(r)
        for k in ("side", "dataset", "label", "n"):
            m[f"{k}_a"], m[f"{k}_b"] = r[f"{k}_b"], r[f"{k}_a"]
        mirrored.append(m)
    df = pd.DataFrame(rows + mirrored, columns=list(HEATMAP.columns))
    order = {s.name: i for i, s in enumerate(sides)}
    df = df.sort_values(
        ["side_a", "side_b"], key=lambda s: s.map(order), kind="stable"
    ).reset_index(drop=True)
    return df


def heatmap_matrix(df: pd.DataFrame, value: str = "auc") -> pd.DataFrame:
    """The heatmap table as a square matrix (sides in table order; the diagonal is empty)."""
    order = list(dict.fromkeys([*df["side_a"], *df["side_b"]]))
    return df.pivot(index="side_a", columns="side_b", values=value).reindex(
        index=order, columns=order
    )


def run_heatmap(
    cfg: Config,
    datasets: list[str] | None = None,
    *,
    results: str | Path = RESULTS,
    out: str | Path | None = None,
    figure: list[str | Path] | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """The heatmap stage: read every audited dataset's features, write the table and the figure(s)."""
    from lalm_audit.render.figures import heatmap_figure  # matplotlib loads only when drawing
    from lalm_audit.render.style import save

    datasets = datasets or cfg.audit_datasets()
    groups = cfg.blind.heatmap.groups or cfg.features.groups
    sets = {ds: load_features(ds, groups, results=results) for ds in datasets}
    df = heatmap(sets, cfg.blind, cfg.evaluation, seed=cfg.seed, n_jobs=workers)
    out = Path(out) if out is not None else Path(Layout(str(results)).heatmap("parquet"))
    prov = io.provenance("blind-heatmap", cfg, datasets=",".join(datasets))
    io.write_table(df, out, schema=HEATMAP, prov=prov)
    fig = heatmap_figure(
        heatmap_matrix(df), heatmap_matrix(df, "pair_kind"), classifiers=df["classifier"]
    )
    save(fig, *(figure or [out.with_suffix(".png"), out.with_suffix(".pdf")]), tight=True)
    neutral = df[df["pair_kind"] == "membership-neutral"]
    if len(neutral):
        log.info(
            "heatmap: membership-neutral pairs (two member sets) reach AUC %.3f to %.3f",
            neutral["auc"].min(), neutral["auc"].max(),
        )  # fmt: skip
    return df
