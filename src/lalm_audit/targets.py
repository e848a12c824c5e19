"""The analysis targets: which scores the correlation, disentanglement and ROC stages read.

A target is ``<slice>/<indicator>`` (``cfg.analysis.targets``) or ``all/aggregate``, the
split's aggregated attack. Re-synthesis renderings of an item (``<item>__r<k>``) are
averaged first, so every target is one score per original item.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

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


def parse_targets(targets: Iterable[str]) -> list[tuple[str, str]]:
    return [tuple(t.split("/", 1)) for t in targets]  # type: ignore[misc]


def target_scores(
    scores: pd.DataFrame, aggregate: pd.DataFrame | None, split: str, targets: list[tuple[str, str]]
) -> dict[tuple[str, str], pd.Series]:
    """(slice, indicator) -> item_id-indexed score; ``all/aggregate`` is the split's aggregated attack."""
    out: dict[tuple[str, str], pd.Series] = {}
    for sl, ind in targets:
        if (sl, ind) == ("all", "aggregate"):
            if aggregate is None:
                continue
            a = aggregate[aggregate["split"] == split]
            out[(sl, ind)] = a.set_index("item_id")["score"]
            continue
        x = select(scores, sl, ind)
        if x.empty:
            raise ValueError(
                f"analysis target {sl}/{ind} is not in the indicator table; "
                "list '<slice>/<indicator>' names the indicators stage writes"
            )
        out[(sl, ind)] = x
    return out
