"""The aggregated attack, the dataset-level test and per-split evaluation on constructed scores."""

from pathlib import Path

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
    # the aggregate beats every one of its 19 label-shuffled refits: the smallest p they can give
    assert a["auc"] > 0.75 and a["p_perm"] == pytest.approx(1 / 20) and a["n_indicators"] == 3
    assert a["agg_signal"] and a["agg_verdict"].startswith("above chance")
    assert len(agg) == 160 and set(agg["split"]) == {"full"}
    assert pd.isna(
        m.loc[("response", "loss"), "p_perm"]
    )  # the dataset test belongs to the aggregate


def test_null_labels_stay_at_chance():
    scores, y = constructed(shift=0.0, seed=3)
    metrics, _ = evaluate_mia(scores, y, {"full": None}, FAST)
    a = metrics.set_index("indicator").loc[AGGREGATE]
    assert a["auc_lo"] < 0.5 < a["auc_hi"] and a["p_perm"] > 0.2 and not a["agg_signal"]


def test_anti_learning_noise_is_never_a_signal():
    """Many noise indicators, few items: the CV'd aggregate reads far below 0.5 and is no signal.

    Its bootstrap CI (fixed out-of-fold scores) can exclude 0.5 from below; the permutation
    test is one-sided and compares with refits that anti-learn the same way.
    """
    rng = np.random.default_rng(5)
    n = 30
    ids = [f"it{i:03d}" for i in range(2 * n)]
    y = pd.Series(np.r_[np.ones(n), np.zeros(n)].astype(int), index=ids)
    rows = [(item, "response", f"noise_{k}", rng.normal()) for item in ids for k in range(40)]
    scores = pd.DataFrame(rows, columns=["item_id", "slice", "indicator", "score"])
    metrics, _ = evaluate_mia(scores, y, {"full": None}, FAST)
    a = metrics.set_index("indicator").loc[AGGREGATE]
    assert not a["agg_signal"] and a["p_perm"] > 0.2, a


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


def test_indicator_and_mia_stages_from_stored_stats(in_tmp):
    """token stats on disk -> indicator table -> metrics, aggregate and Markdown, with provenance."""
    from lalm_audit import io
    from lalm_audit.config import parse_config
    from lalm_audit.mia import run_indicators, run_mia
    from lalm_audit.schemas import TOKEN_STATS
    from tests.unit.test_indicators import naive_stats

    rng = np.random.default_rng(0)
    rows, manifest = [], []
    for i in range(40):
        label = i % 2
        item = f"x{i:02d}"
        manifest.append({"item_id": item, "label": label})
        for sl, t in (("audio", 6), ("prompt", 3), ("response", 5)):
            logits = rng.normal(size=(t, 7)) * (3.0 if label and sl != "prompt" else 1.0)
            p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            y = p.argmax(1) if sl != "prompt" else rng.integers(0, 7, t)
            st = naive_stats(p, y)
            rows.append({"item_id": item, "slice": sl, "n_tokens": t, "token_ids": y.tolist(), "text": "" if sl == "audio" else "abc",
                         **{k: v.astype(np.float32).tolist() for k, v in st.items()}})  # fmt: skip
    io.write_table(
        pd.DataFrame(rows), "stats.parquet", schema=TOKEN_STATS, prov={"model_revision": "abc123"}
    )
    pd.DataFrame(manifest).to_parquet("manifest.parquet")
    pd.DataFrame({"item_id": [f"x{i:02d}" for i in range(20)]}).to_parquet("clean.parquet")
    cfg = parse_config({"datasets": {"d": {"loader": "table", "path": "x"}}, "evaluation": {"bootstrap": 200},
                        "indicators": {"k_grid": [0, 50, 100], "aggregate": {"folds": 4, "slices": ["audio"]}}})  # fmt: skip
    scores = run_indicators(cfg, "m", "stats.parquet", "manifest.parquet", "scores.parquet")
    assert set(scores["slice"]) == {"audio", "prompt", "response", "prompt+response"}
    assert io.read_provenance("scores.parquet")["model_revision"] == "abc123"
    metrics = run_mia(
        cfg,
        "scores.parquet",
        {"full": None, "clean": "clean.parquet"},
        "m.parquet",
        "a.parquet",
        "t.md",
    )
    m = metrics.set_index(["split", "slice", "indicator"])
    assert m.loc[("full", "response", "loss"), "auc"] > 0.9  # sharper, argmax targets: members
    assert m.loc[("full", "all", "aggregate"), "n_indicators"] == len(
        scores[scores["slice"] == "audio"]["indicator"].unique()
    )
    assert m.loc[("clean", "all", "aggregate"), "n_members"] == 10
    text = Path("t.md").read_text()
    assert "| full | not checked | 20 | 20 |" in text and "post hoc" in text
    assert io.read_provenance("m.parquet")["stage"] == "mia"


def test_settings_carry_every_config_value_to_its_own_field():
    """Positional arguments once put verdicts.alpha into another field: every aggregate read 'signal'."""
    from lalm_audit.config import parse_config
    from lalm_audit.mia import settings_from

    cfg = parse_config({
        "datasets": {"d": {"loader": "table", "path": "x"}}, "seed": 7,
        "evaluation": {"bootstrap": 300, "speaker_bootstrap": "off"},
        "verdicts": {"alpha": 0.01, "aggregate_shuffles": 99},
        "indicators": {"aggregate": {"folds": 4, "C": 0.5}},
    })  # fmt: skip
    s = settings_from(cfg)
    assert (s.alpha, s.shuffles, s.speaker_bootstrap) == (0.01, 99, False)
    assert (s.n_resamples, s.seed, s.folds, s.C) == (300, 7, 4, 0.5)
