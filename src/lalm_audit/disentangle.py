"""Modality disentanglement: which of voice and text carries a membership signal.

- :func:`compare_conditions`: each perturbation condition's AUC against the
  original condition's on the same items (paired stratified bootstrap of the
  AUC difference), Holm-corrected across conditions.
- :func:`run_disentangle`: the disentangle stage (every split and target, with
  the headline chart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lalm_audit.evaluation import evaluate, holm, paired_auc_difference
from lalm_audit.targets import average_renderings, parse_targets, select


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
        if o.empty:
            raise ValueError(
                f"analysis target {sl}/{ind} is not in the indicator table; "
                "list '<slice>/<indicator>' names the indicators stage writes"
            )
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
    # the aggregated attack is cross-validated per split on the original scores only: not compared here
    targets = [t for t in parse_targets(cfg.analysis.targets) if t != ("all", "aggregate")]
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
    # the run's identity from a condition's scores (the original's response may be another:
    # a regenerated response compares against the generated one)
    ident = io.source_identity(next(iter(condition_scores.values()), original_scores))
    ident.pop("condition", None)
    prov = io.provenance("disentangle", cfg, **ident)
    io.write_table(table, out, schema=DISENTANGLEMENT, prov=prov)
    if figure_png:
        from lalm_audit.render.mia_figures import disentanglement_figure
        from lalm_audit.render.style import save

        first_split = next(iter(splits))
        sl, ind = targets[0]
        sub = table[
            (table["split"] == first_split) & (table["slice"] == sl) & (table["indicator"] == ind)
        ]
        fig = disentanglement_figure(sub, title=title or f"{sl}/{ind}, split {first_split}")
        save(fig, *[p for p in (figure_png, figure_pdf) if p])
    return table
