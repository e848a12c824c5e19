"""Simulated worlds: their truth holds (checked on large samples) and their layout is the real one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from lalm_audit import simulate as sim
from lalm_audit.blind import oof_scores, stratified_folds
from lalm_audit.config import BlindConfig
from lalm_audit.evaluation import auc
from lalm_audit.features import GROUPS
from lalm_audit.features.text import text_stats
from lalm_audit.mia import wide_scores

LOGISTIC = BlindConfig(folds=5, classifiers=["logistic"])


def test_the_analytic_shift_gives_the_target_auc_of_the_optimal_rule():
    # d = sqrt(2) Phi^-1(AUC); per feature d / sqrt(k)
    assert sim.mahalanobis_for_auc(0.7) == pytest.approx(np.sqrt(2) * 0.5244005, rel=1e-6)
    assert sim.feature_shift(0.6, 4) == pytest.approx(np.sqrt(2) * 0.2533471 / 2, rel=1e-6)
    assert sim.auc_for_mahalanobis(sim.mahalanobis_for_auc(0.83)) == pytest.approx(0.83)
    for target in (0.6, 0.7):
        w = sim.shifted_world(40_000, seed=3, auc=target, n_shifted=3)
        X = w.fs.frame[list(w.fs.groups["spectral"].numeric)].to_numpy()
        # the optimal rule for independent unit-variance features shifted equally: their sum
        assert auc(w.fs.labels, X[:, :3].sum(axis=1)) == pytest.approx(target, abs=0.01)
        # the other features and groups carry nothing
        assert auc(w.fs.labels, X[:, 3]) == pytest.approx(0.5, abs=0.015)
        assert w.shifted and w.auc == target


def test_the_memorizing_model_has_the_target_auc_and_correlated_indicators():
    w = sim.memorizing_model(40_000, seed=4, auc=0.7, n_indicators=30, rho=0.6)
    wide = wide_scores(w.scores)
    y = w.labels.loc[wide.index].to_numpy()
    assert wide.shape == (40_000, 30) and w.score_auc == 0.7 and not w.shifted
    # with an equicorrelated covariance and an equal shift, the optimal linear rule is the column sum
    assert auc(y, wide.sum(axis=1).to_numpy()) == pytest.approx(0.7, abs=0.01)
    within = np.corrcoef(wide[y == 0].to_numpy(), rowvar=False)
    assert within[np.triu_indices(30, 1)].mean() == pytest.approx(0.6, abs=0.02)
    # a single indicator sees less than the sum: shift sqrt(rho) m in one unit-variance column
    single = norm.cdf(np.sqrt(0.6) * sim.factor_shift(0.7, 30, 0.6) / np.sqrt(2))
    assert auc(y, wide.iloc[:, 0].to_numpy()) == pytest.approx(single, abs=0.01)
    assert single < 0.69


def test_the_shift_reading_model_separates_only_through_the_shifted_features():
    w = sim.shift_reading_model(40_000, seed=6, auc=0.7, n_shifted=3)
    wide = wide_scores(w.scores)
    y = w.labels.loc[wide.index].to_numpy()
    fs = w.fs.subset(np.asarray(wide.index, dtype=object))
    X = fs.frame[list(fs.groups["spectral"].numeric)].to_numpy()
    feat = X[:, :3].sum(axis=1)
    assert w.shifted and w.auc == 0.7 and w.score_auc == 0.5
    assert auc(y, feat) == pytest.approx(0.7, abs=0.01)  # the blind features see the shift
    s = wide.sum(axis=1).to_numpy()
    assert auc(y, s) > 0.65  # the scores separate the classes ...
    # ... only through the features: regressed on them, nothing is left (no membership)
    A = np.c_[np.ones(len(s)), X]
    resid = s - A @ np.linalg.lstsq(A, s, rcond=None)[0]
    assert auc(y, resid) == pytest.approx(0.5, abs=0.015)


def test_the_no_signal_model_is_at_chance_with_the_same_correlation():
    w = sim.no_signal_model(20_000, seed=5)
    wide = wide_scores(w.scores)
    y = w.labels.loc[wide.index].to_numpy()
    assert auc(y, wide.sum(axis=1).to_numpy()) == pytest.approx(0.5, abs=0.015)
    c = np.corrcoef(wide.to_numpy(), rowvar=False)
    assert c[np.triu_indices(30, 1)].mean() == pytest.approx(0.6, abs=0.02)
    assert set(w.scores["indicator"]) <= {"loss", *w.scores["indicator"]}
    assert w.scores["indicator"].nunique() == 30 and (w.scores["slice"] == "response").all()
    assert w.score_auc == 0.5 and not w.shifted


def test_feature_sets_have_the_real_column_layout():
    w = sim.null_world(
        40, seed=0, groups=["text", "spectral", "prosodic", "metadata"], n_features=5
    )
    fs = w.fs
    assert list(fs.groups) == ["text", "spectral", "prosodic", "metadata"]
    real = sim._real_columns
    assert fs.groups["spectral"].numeric == tuple(f"spectral__{c}" for c in real("spectral")[:5])
    assert fs.groups["prosodic"].numeric == tuple(f"prosodic__{c}" for c in real("prosodic")[:5])
    assert fs.groups["text"].text == ("text__transcript",)
    assert fs.groups["metadata"].categorical == ("metadata__audio_format", "metadata__subtype")
    for g in ("text", "metadata"):  # every real column of the non-acoustic groups
        assert set(fs.groups[g].all) == {f"{g}__{c}" for c in real(g)}
    assert real("spectral") == tuple(GROUPS["spectral"].module.columns(_cfg()))
    t = fs.frame["text__transcript"].iloc[7]
    assert fs.frame["text__n_words"].iloc[7] == text_stats(t)["n_words"] > 0
    assert (
        fs.frame["text__transcript"].nunique() == 40
    )  # one sentence per item in an ordinary world
    assert (fs.labels == 1).sum() == 20 and not w.speakers


def _cfg():
    import types

    from lalm_audit.config import FeaturesConfig

    return types.SimpleNamespace(features=FeaturesConfig())


def test_speaker_world_classes_are_speaker_disjoint_and_only_item_level_cv_separates_them():
    w = sim.speaker_world(400, seed=6, items_per_speaker=10, speaker_share=0.5)
    items = w.fs.items
    assert w.speakers and not w.shifted
    per_spk = items.groupby("speaker_id")["label"].agg(["nunique", "size"])
    assert (per_spk["nunique"] == 1).all() and (per_spk["size"] == 10).all() and len(per_spk) == 40
    X = w.fs.frame[list(w.fs.groups["spectral"].numeric)].to_numpy()
    # each feature: half of its unit variance is the speaker's
    assert X.var(axis=0).mean() == pytest.approx(1.0, abs=0.15)
    spk_means = pd.DataFrame(X).groupby(items["speaker_id"].to_numpy()).mean()
    assert spk_means.var().mean() == pytest.approx(0.5 + 0.5 / 10, abs=0.15)
    # the classifier recognizes training speakers' other items; a new speaker says nothing (a
    # grouped CV of 20 speakers is noisy, hence the mean over worlds)
    item_level, by_speaker = [], []
    for seed in range(6):
        w = sim.speaker_world(400, seed=seed, items_per_speaker=20)
        y, spk = w.fs.labels, w.fs.items["speaker_id"].to_numpy()
        for out, groups in ((item_level, None), (by_speaker, spk)):
            folds = stratified_folds(y, 5, 0, groups=groups)
            out.append(
                auc(y, oof_scores(w.fs, "spectral", "logistic", LOGISTIC, folds=folds).logit)
            )
    assert np.mean(item_level) > 0.65
    assert abs(np.mean(by_speaker) - 0.5) < 0.12


def test_repeated_transcripts_occur_in_both_classes():
    w = sim.repeated_text_world(240, seed=7, reads_per_sentence=4)
    df = pd.DataFrame({"t": w.fs.frame["text__transcript"], "y": w.fs.labels})
    per = df.groupby("t")["y"].agg(["nunique", "size"])
    assert 40 <= len(per) <= 60  # about 60 sentences, a few never drawn
    assert per["size"].mean() == pytest.approx(240 / len(per))
    assert (per["nunique"] == 2).mean() > 0.6  # most sentences are read by both classes
    assert not w.shifted and w.auc == 0.5


def test_closed_vocabulary_sentences_mark_the_class_and_an_item_level_cv_sees_it():
    w = sim.closed_vocabulary_world(240, seed=8, reads_per_sentence=6)
    df = pd.DataFrame({"t": w.fs.frame["text__transcript"], "y": w.fs.labels})
    per = df.groupby("t")["y"].agg(["nunique", "size"])
    assert (per["nunique"] == 1).all() and len(per) == 40 and (per["size"] == 6).all()
    words = {
        c: set(" ".join(df.loc[df["y"] == c, "t"]).lower().replace(".", "").split()) for c in (0, 1)
    }
    assert len(words[0] & words[1]) > 0.6 * min(map(len, words.values()))  # shared words
    y = w.fs.labels
    cfg = BlindConfig(folds=5, gbt={"max_iter": 20, "max_bins": 32})
    item_level = stratified_folds(y, 5, 0)
    assert auc(y, oof_scores(w.fs, "text", "gbt", cfg, folds=item_level).logit) > 0.95
    assert auc(y, oof_scores(w.fs, "text", "logistic", cfg, folds=item_level).logit) > 0.7
    # with every reading of a sentence on one side of the split, the shared words say nothing
    by_text = stratified_folds(y, 5, 0, groups=df["t"].factorize()[0])
    assert auc(y, oof_scores(w.fs, "text", "logistic", cfg, folds=by_text).logit) < 0.7
    assert w.shifted and w.auc == 1.0


def test_same_seed_same_world_other_seed_other_world():
    a = sim.repeated_text_world(60, seed=11)
    b = sim.repeated_text_world(60, seed=11)
    c = sim.repeated_text_world(60, seed=12)
    pd.testing.assert_frame_equal(a.fs.frame, b.fs.frame)
    np.testing.assert_array_equal(a.fs.labels, b.fs.labels)
    assert not a.fs.frame["spectral__mfcc_01_mean"].equals(c.fs.frame["spectral__mfcc_01_mean"])
    m1, m2 = sim.memorizing_model(40, seed=2), sim.memorizing_model(40, seed=2)
    pd.testing.assert_frame_equal(m1.scores, m2.scores)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sim.null_world(31, seed=0), "even number of items"),
        (lambda: sim.shifted_world(40, seed=0, auc=1.2), r"target AUC must lie in \[0.5, 1\)"),
        (lambda: sim.shifted_world(40, seed=0, group="text"), "acoustic group"),
        (lambda: sim.repeated_text_world(40, seed=0, groups=["spectral"]), "must include 'text'"),
        (lambda: sim.null_world(40, seed=0, groups=["pitch"]), "groups must be"),
        (lambda: sim.speaker_world(40, seed=0, items_per_speaker=15), "items_per_speaker"),
        (lambda: sim.memorizing_model(40, seed=0, rho=1.0), "rho must lie"),
        (lambda: sim.null_world(40, seed=0, n_features=1000), "n_features must lie in 1..190"),
    ],
)
def test_bad_arguments_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
