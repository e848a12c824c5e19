"""Blind classifiers on constructed feature sets whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from lalm_audit.blind import (
    COMBINED,
    cross_validate,
    explain_term,
    importance,
    make_pipeline,
    oof_scores,
    pick_stronger,
    stratified_folds,
    text_groups,
)
from lalm_audit.config import BlindConfig, EvaluationConfig, PermutationControlConfig
from lalm_audit.features import feature_set

EVAL = EvaluationConfig(bootstrap=200)
FAST = BlindConfig(
    folds=5,
    gbt_groups=["all"],
    gbt={"max_iter": 20, "max_bins": 32},
    permutation_control={"shuffles": 2},
    top_features=3,
    importance_repeats=2,
)


def constructed(n: int = 200, shift: float = 2.0, seed: int = 0):
    """'spectral' holds x ~ N(shift * label, 1) (AUC = Phi(shift / sqrt 2)); 'prosodic' pure noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n // 2)
    ids = [f"i{k:04d}" for k in range(n)]
    man = pd.DataFrame({"item_id": ids, "label": y})
    spectral = pd.DataFrame(
        {
            "item_id": ids,
            "feature_error": None,
            "x": rng.normal(shift * y, 1.0),
            "z": rng.normal(size=n),
        }
    )
    noise = pd.DataFrame(
        {"item_id": ids, "feature_error": None, **{f"n{k}": rng.normal(size=n) for k in range(5)}}
    )
    return feature_set(man, {"spectral": spectral, "prosodic": noise}, dataset="toy")


def test_a_known_shift_gives_the_known_auc_and_noise_gives_chance():
    res = cross_validate(constructed(400), FAST, EVAL, seed=1)
    m = res.metrics.set_index(["group", "classifier", "control"])
    expected = norm.cdf(2.0 / np.sqrt(2))  # 0.921
    lr = m.loc[("spectral", "logistic", "blind")]
    assert lr["auc"] == pytest.approx(expected, abs=0.04)
    assert lr["auc_lo"] < expected < lr["auc_hi"]
    assert m.loc[(COMBINED, "logistic", "blind"), "auc"] == pytest.approx(expected, abs=0.05)
    for clf in ("logistic", "gbt"):
        noise = m.loc[("prosodic", clf, "blind")]
        assert noise["auc_lo"] <= 0.5 <= noise["auc_hi"]
    # the stronger classifier is flagged once per group and control rows follow it
    strong = res.metrics[res.metrics["stronger"] & (res.metrics["control"] == "blind")]
    assert sorted(strong["group"]) == sorted(["spectral", "prosodic", COMBINED])


def test_permutation_control_sits_at_chance_even_on_a_separable_set():
    cfg = FAST.model_copy(update={"permutation_control": PermutationControlConfig(shuffles=4)})
    res = cross_validate(constructed(300, shift=3.0), cfg, EVAL, seed=2)
    ctl = res.metrics[res.metrics["control"] == "permutation"]
    assert len(ctl) == 6 and (ctl["shuffles"] == 4).all()
    # every check (group x classifier) is refit on every shuffle: the null of the family-wise test
    checks = res.metrics.query("control == 'blind'")[["group", "classifier"]]
    assert ctl[["group", "classifier"]].reset_index(drop=True).equals(checks.reset_index(drop=True))
    assert set(res.null["run"]) == set(range(4)) and len(res.null) == 4 * 6
    assert ((ctl["auc_lo"] <= 0.5) & (ctl["auc_hi"] >= 0.5)).all()
    assert (ctl["auc"] - 0.5).abs().max() < 0.07
    assert (ctl["auc_sd"] > 0).all() and res.metrics.query("control == 'blind'")[
        "auc_sd"
    ].isna().all()
    blind = res.metrics[(res.metrics["control"] == "blind") & (res.metrics["group"] == "spectral")]
    assert (blind["auc"] > 0.95).all()


def test_trees_are_reported_only_when_significantly_stronger():
    rng = np.random.default_rng(0)
    y = np.repeat([1, 0], 100)
    noise = {"logistic": rng.normal(size=200), "gbt": rng.normal(size=200) + 0.2 * y}
    assert pick_stronger(y, noise, EVAL) == "logistic"  # a small, insignificant edge
    xor = {"logistic": rng.normal(size=200), "gbt": rng.normal(size=200) + 3 * y}
    assert pick_stronger(y, xor, EVAL) == "gbt"
    assert pick_stronger(y, {"gbt": noise["gbt"]}, EVAL) == "gbt"


def test_every_item_gets_one_out_of_fold_prediction_per_group_and_classifier():
    fs = constructed(100)
    res = cross_validate(fs, FAST, EVAL, seed=3, control=False)
    p = res.predictions
    assert len(p) == 100 * 3 * 2
    assert not p.duplicated(["item_id", "group", "classifier"]).any()
    assert np.allclose(p["prob"], 1 / (1 + np.exp(-p["logit"])))
    assert set(p["fold"]) == set(range(5))
    s = res.scores(COMBINED)
    assert len(s) == 100 and list(s["item_id"]) == list(fs.item_ids)


def test_explanations_name_the_driving_feature_and_its_direction():
    res = cross_validate(constructed(300), FAST, EVAL, seed=4, control=False)
    ex = res.explanations
    top = (
        ex[(ex["group"] == "spectral") & (ex["classifier"] == "logistic")]
        .sort_values("rank")
        .iloc[0]
    )
    assert top["feature"] == "spectral__x" and top["importance"] > 0
    assert top["direction"] == "members higher"
    assert top["member_value"] == pytest.approx(2.0, abs=0.3)
    assert "non-members have lower x" in top["sentence"]


def test_tree_permutation_importance_finds_the_signal_column():
    fs = constructed(200, shift=3.0)
    folds = stratified_folds(fs.labels, 5, 0)
    oof = oof_scores(fs, COMBINED, "gbt", FAST, folds=folds, keep_models=True)
    imp = importance(fs, oof, "gbt", FAST, seed=0).sort_values(ascending=False)
    assert imp.index[0] == "spectral__x"
    assert imp.iloc[0] > 0.2  # shuffling x costs most of the AUC
    assert imp.drop("spectral__x").abs().max() < 0.05  # noise columns cost nothing
    # a subset of held-out items gives the same ranking
    some = np.zeros(len(fs), bool)
    some[::2] = True
    assert importance(fs, oof, "gbt", FAST, seed=0, items=some).idxmax() == "spectral__x"


def test_same_inputs_and_seed_give_the_same_outputs_whatever_the_workers():
    fs = constructed(80)
    a = cross_validate(fs, FAST, EVAL, seed=5, n_jobs=1)
    b = cross_validate(fs, FAST, EVAL, seed=5, n_jobs=2)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.explanations, b.explanations)
    c = cross_validate(fs, FAST, EVAL, seed=6, control=False, explain_top=0)
    assert not np.allclose(a.predictions["logit"], c.predictions["logit"])


def test_rerun_on_a_subset_with_a_new_seed():
    fs = constructed(200)
    keep = fs.item_ids[(np.arange(200) % 4) != 0]
    res = cross_validate(fs.subset(keep), FAST, EVAL, seed=99, control=False, explain_top=0)
    assert set(res.predictions["item_id"]) == set(keep)
    assert res.metrics["n_members"].iloc[0] + res.metrics["n_nonmembers"].iloc[0] == 150


def _text_set(texts, labels, extra=None, failed=()):
    ids = [f"t{k:03d}" for k in range(len(texts))]
    man = pd.DataFrame({"item_id": ids, "label": labels})
    tab = pd.DataFrame(
        {
            "item_id": ids,
            "feature_error": None,
            "transcript": texts,
            "n_words": [len(t.split()) for t in texts],
        }
    )
    tables = {"text": tab}
    if extra is not None:
        err = ["AudioError: missing" if k in failed else None for k in range(len(ids))]
        tables["metadata"] = extra.assign(item_id=ids, feature_error=err)
    return feature_set(man, tables, dataset="txt")


def test_tfidf_is_fit_inside_each_training_fold():
    """Every transcript carries a token no other item has: a vectorizer fit on all data would know the held-out ones."""
    n = 40
    texts = [f"common words here uniq{k}" for k in range(n)]
    fs = _text_set(texts, np.repeat([1, 0], n // 2))
    folds = stratified_folds(fs.labels, 4, seed=0)
    every_ngram = FAST.model_copy(update={"tfidf": FAST.tfidf.model_copy(update={"min_df": 1})})
    for clf in ("logistic", "gbt"):
        oof = oof_scores(fs, "text", clf, every_ngram, folds=folds, keep_models=True)
        for f, model in zip(np.unique(folds), oof.models, strict=True):
            vocab = set(model[0].named_transformers_["txt0"].vocabulary_)
            held_out = {f"uniq{k}" for k in np.flatnonzero(folds == f)}
            trained = {f"uniq{k}" for k in np.flatnonzero(folds != f)}
            assert not vocab & held_out
            if clf == "logistic":  # the trees keep only the most frequent n-grams
                assert trained <= vocab


def test_text_signal_is_found_and_explained():
    rng = np.random.default_rng(0)
    words = ["red", "green", "blue", "small", "large", "round"]
    texts, labels = [], []
    for k in range(80):
        lab = k % 2
        body = " ".join(rng.choice(words, 4))
        texts.append(f"{body} {'alpha' if lab else 'beta'} item{k}")
        labels.append(lab)
    res = cross_validate(_text_set(texts, labels), FAST, EVAL, seed=0, control=False)
    m = res.metrics.set_index(["group", "classifier"])
    assert m.loc[("text", "logistic"), "auc"] > 0.98
    ex = res.explanations
    top = (
        ex[(ex["classifier"] == "logistic")]
        .sort_values("rank")["sentence"]
        .head(2)
        .str.cat(sep=" ")
    )
    assert "'alpha'" in top or "'beta'" in top
    assert "100% vs 0% of transcripts" in top


def test_identical_transcripts_share_a_fold():
    """The same sentence read by a member and a non-member: text alone must give exactly chance, not < 0.5."""
    rng = np.random.default_rng(1)
    words = ["red", "green", "blue", "small", "large", "round", "dog", "cat"]
    sents = [" ".join(rng.choice(words, 5)) + f" s{k}" for k in range(40)]
    texts = [s for s in sents for _ in (0, 1)]
    labels = [lab for _ in sents for lab in (1, 0)]
    fs = _text_set(texts, labels)
    groups = text_groups(fs)
    folds = stratified_folds(fs.labels, 5, 0, groups)
    assert all(len(set(folds[groups == g])) == 1 for g in np.unique(groups))
    res = cross_validate(fs, FAST, EVAL, seed=0, control=False, explain_top=0)
    m = res.metrics.set_index(["group", "classifier"])
    assert m.loc[("text", "logistic"), "auc"] == pytest.approx(0.5, abs=1e-9)
    ungrouped = cross_validate(
        fs,
        FAST.model_copy(update={"group_same_text": False}),
        EVAL,
        seed=0,
        control=False,
        explain_top=0,
    )
    assert (
        ungrouped.metrics.set_index(["group", "classifier"]).loc[("text", "logistic"), "auc"] < 0.3
    )


def test_categorical_and_failed_items():
    n = 60
    labels = np.repeat([1, 0], n // 2)
    meta = pd.DataFrame(
        {
            "audio_format": np.where(labels == 1, "FLAC", "WAV").astype(object),
            "subtype": ["PCM_16"] * n,
            "duration_s": np.linspace(1, 2, n),
        }
    )
    meta.loc[[3, 40], ["audio_format", "duration_s"]] = [None, np.nan]  # two failed items
    fs = _text_set([f"w{k}" for k in range(n)], labels, extra=meta, failed=[3, 40])
    assert fs.failed["metadata"].sum() == 2
    res = cross_validate(fs, FAST, EVAL, seed=0, control=False)
    m = res.metrics.set_index(["group", "classifier"])
    assert m.loc[("metadata", "logistic"), "auc"] > 0.95
    assert m.loc[("metadata", "logistic"), "n_failed"] == 2
    sentence = explain_term(fs, "metadata__audio_format=WAV")["sentence"]
    assert sentence == "file format WAV: 0% of members vs 97% of non-members"


def test_folds_shrink_when_a_class_is_small_and_fail_below_two():
    y = np.r_[np.ones(4, int), np.zeros(30, int)]
    folds = stratified_folds(y, 10, 0)
    assert folds.max() + 1 == 4 and all(((folds == f) & (y == 1)).sum() == 1 for f in range(4))
    with pytest.raises(ValueError, match="at least 2 items per class"):
        stratified_folds(np.r_[1, np.zeros(5, int)], 10, 0)


def test_the_pipeline_is_public_and_unfitted():
    fs = constructed(60)
    pipe = make_pipeline(fs, COMBINED, "logistic", FAST)
    pre = pipe[:-1].fit(fs.frame, fs.labels)
    assert pre.transform(fs.frame).shape == (60, 7)
