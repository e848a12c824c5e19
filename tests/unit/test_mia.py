"""The aggregated attack, the dataset-level test and per-split evaluation on constructed scores."""

import numpy as np
import pandas as pd
import pytest

from lalm_audit.mia import (
    AGGREGATE,
    EvalSettings,
    base_item_id,
    evaluate_mia,
    headline,
    wide_scores,
)

FAST = EvalSettings(n_resamples=200, folds=5, seed=0)


def constructed(n: int = 80, shift: float = 1.5, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """`loss` separates members (shifted by `shift`); two noise indicators do not."""
    rng = np.random.default_rng(seed)
    ids = [f"it{i:03d}" for i in range(2 * n)]
    y = pd.Series(np.r_[np.ones(n), np.zeros(n)].astype(int), index=ids)
    rows = []
    for i, item in enumerate(ids):
        rows.append((item, "response", "loss", rng.normal() + shift * y.iloc[i]))
        rows.append((item, "response", "noise_a", rng.normal()))
        rows.append((item, "audio", "noise_b", rng.normal()))
    return pd.DataFrame(rows, columns=["item_id", "slice", "indicator", "score"]), y


def test_signal_is_found_noise_is_not():
    scores, y = constructed()
    metrics, agg = evaluate_mia(scores, y, {"full": None}, FAST)
    m = metrics.set_index(["slice", "indicator"])
    assert m.loc[("response", "loss"), "auc"] > 0.8
    assert m.loc[("response", "noise_a"), "auc_lo"] < 0.5 < m.loc[("response", "noise_a"), "auc_hi"]
    a = m.loc[("all", AGGREGATE)]
    assert a["auc"] > 0.75 and a["welch_p"] < 1e-4 and a["n_indicators"] == 3
    assert len(agg) == 160 and set(agg["split"]) == {"full"}
    assert np.isnan(
        m.loc[("response", "loss"), "welch_p"]
    )  # the dataset test belongs to the aggregate


def test_null_labels_stay_at_chance():
    scores, y = constructed(shift=0.0, seed=3)
    metrics, _ = evaluate_mia(scores, y, {"full": None}, FAST)
    a = metrics.set_index("indicator").loc[AGGREGATE]
    assert a["auc_lo"] < 0.5 < a["auc_hi"] and a["welch_p"] > 0.01


def test_splits_filter_by_base_item_and_rerun_the_aggregate():
    scores, y = constructed()
    derived = scores.assign(item_id=scores["item_id"] + "__silence")
    yd = pd.Series(y.to_numpy(), index=y.index + "__silence")
    keep = {f"it{i:03d}" for i in range(0, 160, 2)}
    metrics, agg = evaluate_mia(derived, yd, {"full": None, "clean": keep}, FAST)
    counts = metrics.groupby("split")[["n_members", "n_nonmembers"]].first()
    assert counts.loc["full"].tolist() == [80, 80] and counts.loc["clean"].tolist() == [40, 40]
    assert set(agg.loc[agg["split"] == "clean", "item_id"].map(base_item_id)) == keep
    h = headline(metrics).set_index("split")
    assert h.loc["clean", "best"] == "response/loss" and h.loc["full", "loss_auc"] > 0.8
    assert h.loc["full", "n_indicators"] == 3


def test_wide_matrix_and_base_ids():
    scores, _ = constructed(n=3)
    w = wide_scores(scores)
    assert list(w.columns) == [
        "audio/noise_b",
        "response/loss",
        "response/noise_a",
    ] and w.shape == (6, 3)
    assert base_item_id("a__silence") == "a" and base_item_id("a") == "a"


def test_aggregate_needs_two_items_per_class():
    scores, y = constructed(n=1)
    with pytest.raises(ValueError, match="at least 2 items per class"):
        evaluate_mia(scores, y, {"full": None}, FAST)
