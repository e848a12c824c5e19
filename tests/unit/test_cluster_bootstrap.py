"""Speaker-level (cluster) bootstrap CIs: items of one speaker move together, so the CI must widen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lalm_audit import evaluation as ev
from lalm_audit.mia import EvalSettings, evaluate_split


def speaker_world(n_speakers: int = 40, per: int = 10, seed: int = 0):
    """Speaker-pure classes from one population; the score is mostly the speaker's own offset."""
    rng = np.random.default_rng(seed)
    spk = np.repeat(np.arange(n_speakers), per)
    y = (spk < n_speakers // 2).astype(int)
    score = rng.normal(size=n_speakers)[spk] + 0.2 * rng.normal(size=spk.size)
    return y, score, np.array([f"s{k:03d}" for k in spk], dtype=object)


def test_the_speaker_level_ci_is_wider_when_scores_cluster_by_speaker():
    y, s, spk = speaker_world()
    item = ev.bootstrap_auc_ci(y, s, n_resamples=1000, seed=1)
    clus = ev.bootstrap_auc_ci(
        y, s, resamples=ev.StratifiedResamples.draw_clustered(y, spk, 1000, seed=1)
    )
    # 20 vs 20 speakers, not 200 vs 200 items, decide the AUC's spread
    assert clus[1] - clus[0] > 2.5 * (item[1] - item[0]), (item, clus)


def test_one_item_per_speaker_gives_the_item_level_spread():
    rng = np.random.default_rng(2)
    y = np.repeat([1, 0], 150)
    s = rng.normal(size=300) + 0.5 * y
    spk = np.array([f"s{i}" for i in range(300)], dtype=object)
    item = ev.bootstrap_auc_ci(y, s, n_resamples=2000, seed=3)
    clus = ev.bootstrap_auc_ci(
        y, s, resamples=ev.StratifiedResamples.draw_clustered(y, spk, 2000, 3)
    )
    assert (clus[1] - clus[0]) == pytest.approx(item[1] - item[0], rel=0.15)


def test_mixed_speakers_are_drawn_whole_and_a_resample_keeps_its_own_class_sizes():
    y = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    spk = np.array(["a", "a", "b", "b", "c", "c", "d", "d"], dtype=object)
    r = ev.StratifiedResamples.draw_clustered(y, spk, 50, seed=0)
    w = np.zeros((8, 50), dtype=int)
    w[y == 1], w[y == 0] = r.w_pos, r.w_neg
    # both items of a speaker always come together
    for a, b in ((0, 1), (2, 3), (4, 5), (6, 7)):
        assert (w[a] == w[b]).all()
    assert set(w.sum(axis=0)) == {8}  # four speakers of two items each, drawn four times


def test_mia_reports_the_speaker_level_ci_beside_the_item_level_one():
    y, s, spk = speaker_world(seed=4)
    ids = [f"it{i:04d}" for i in range(y.size)]
    scores = pd.DataFrame({"item_id": ids, "slice": "response", "indicator": "loss", "score": s})
    scores = pd.concat(
        [
            scores,
            scores.assign(indicator="noise", score=np.random.default_rng(5).normal(size=y.size)),
        ]
    )
    labels = pd.Series(y, index=ids)
    settings = EvalSettings(n_resamples=300, folds=5, shuffles=19)
    m, _, _ = evaluate_split(scores, labels, None, settings, speakers=pd.Series(spk, index=ids))
    r = m.set_index("indicator").loc["loss"]
    assert r["auc_lo_speaker"] < r["auc_lo"] and r["auc_hi_speaker"] > r["auc_hi"]
    m2, _, _ = evaluate_split(scores, labels, None, settings)
    assert "auc_lo_speaker" not in m2  # no speakers given: the item-level CI alone
