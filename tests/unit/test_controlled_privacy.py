"""Epsilon lower bounds against values worked by hand, and the guard against post-hoc audits.

Closed forms used below (one-sided Clopper-Pearson at level 1 - a, n trials):
k = n successes: lower bound p solves p^n = a, so p = a^(1/n);
k = 0 successes: upper bound p solves (1 - p)^n = a, so p = 1 - a^(1/n).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lalm_audit.controlled.privacy import (
    _cp_lower,
    _cp_upper,
    _eps_from_rates,
    _one_run_eps,
    _one_run_p_value,
    clopper_pearson_bound,
    one_run_bound,
)
from lalm_audit.controlled.split import PostHocAuditError, draw_controlled
from lalm_audit.errors import LalmAuditError


def split_of(n: int = 40, draw: str = "balanced", seed: int = 5):
    pool = pd.DataFrame(
        {
            "item_id": [f"c{i:03d}" for i in range(n)],
            "speaker_id": "unknown",
            "text": "x",
            "label": 0,
        }
    )
    return draw_controlled(pool, pool_name="pool", dataset="ctrl", seed=seed, draw=draw)[1]


def perfect_scores(split) -> pd.Series:
    return split.labels().astype(float)  # members 1.0, held-out 0.0


def test_clopper_pearson_closed_forms():
    # k = n: a^(1/n); k = 0: 1 - a^(1/n)
    assert _cp_lower(20, 20, 0.05) == pytest.approx(0.05 ** (1 / 20), abs=1e-9)
    assert _cp_upper(0, 50, 0.05) == pytest.approx(1 - 0.05 ** (1 / 50), abs=1e-9)
    # n = 2, k = 1: lower solves 1 - (1 - p)^2 = a -> 1 - sqrt(1 - a); upper solves 1 - p^2 = a
    assert _cp_lower(1, 2, 0.1) == pytest.approx(1 - math.sqrt(0.9), abs=1e-9)
    assert _cp_upper(1, 2, 0.1) == pytest.approx(math.sqrt(0.9), abs=1e-9)
    # the degenerate ends
    assert _cp_lower(0, 10, 0.05) == 0.0 and _cp_upper(10, 10, 0.05) == 1.0
    # mirrored intervals: the upper bound of k of n is 1 - the lower bound of n - k of n, so the
    # TNR/FNR direction of the bound reuses the TPR/FPR intervals (no extra alpha)
    for k in (0, 3, 11, 20):
        assert _cp_upper(k, 20, 0.05) == pytest.approx(1 - _cp_lower(20 - k, 20, 0.05), abs=1e-12)


def test_jagielski_bound_by_hand():
    # TP 20/20, FP 0/50, alpha 0.05 per interval, delta 0:
    #   TPR_lo = 0.05^(1/20) = 0.860892, FPR_hi = 1 - 0.05^(1/50) = 0.058155
    #   direction 1: ln(0.860892 / 0.058155) = 2.69486
    #   TNR_lo = 0.05^(1/50) = 0.941845, FNR_hi = 1 - 0.05^(1/20) = 0.139108
    #   direction 2: ln(0.941845 / 0.139108) = 1.91259  -> the bound is the larger, 2.69486
    assert _eps_from_rates(20, 20, 0, 50, 0.0, 0.05) == pytest.approx(2.69486, abs=1e-4)
    # delta is subtracted from TPR_lo: delta 0.1 -> ln(0.760892 / 0.058155) = 2.57135
    assert _eps_from_rates(20, 20, 0, 50, 0.1, 0.05) == pytest.approx(2.57135, abs=1e-4)
    # an attack at chance gives no evidence: the bound is 0, never negative
    assert _eps_from_rates(10, 20, 25, 50, 0.0, 0.05) == 0.0


def test_bonferroni_threshold_on_a_perfect_attack():
    split = split_of(40)  # balanced: 20 members, 20 held-out
    b = clopper_pearson_bound(split, perfect_scores(split), delta=0.0, threshold="bonferroni")
    # 2 distinct scores -> 2 x 2 = 4 intervals at 0.05/4 = 0.0125 each; at t = 1: TP 20/20, FP 0/20
    #   TPR_lo = 0.0125^(1/20) = 0.803240, FPR_hi = 0.196760 -> ln(4.08234) = 1.40667
    assert b.epsilon == pytest.approx(1.40667, abs=1e-4)
    assert b.counts["tp"] == 20 and b.counts["fp"] == 0 and b.counts["thresholds"] == 2
    assert b.method == "clopper_pearson" and "Bonferroni" in b.detail
    assert "delta = 0" in b.sentence()


def test_heldout_threshold_on_a_perfect_attack():
    split = split_of(40)
    b = clopper_pearson_bound(split, perfect_scores(split), delta=0.0, threshold="heldout")
    # the other half: 10 members, 10 held-out, intervals at 0.05/2 = 0.025:
    #   TPR_lo = 0.025^(1/10) = 0.691503, FPR_hi = 0.308497 -> ln(2.24152) = 0.80715
    assert b.counts == {"members": 10, "heldout": 10, "tp": 10, "fp": 0, "selection_items": 20}
    assert b.epsilon == pytest.approx(0.80715, abs=1e-4)


def test_scores_must_cover_the_split():
    split = split_of(40)
    s = perfect_scores(split)
    with pytest.raises(LalmAuditError, match="1 missing"):
        clopper_pearson_bound(split, s.iloc[1:], delta=0.0)
    with pytest.raises(LalmAuditError, match="non-finite"):
        clopper_pearson_bound(split, s.where(s.index != s.index[0], np.nan), delta=0.0)


def test_one_run_p_value_by_hand():
    # m = 4, r = v = 2, eps = ln 3 -> q = 3/4. P[Bin(2, 3/4) >= 2] = 9/16 = 0.5625.
    # delta term: P[Bin = 1] = 2 * 3/4 * 1/4 = 0.375, P[Bin = 0] = 1/16;
    #   max(0.375 / 1, (0.375 + 0.0625) / 2) = 0.375; p = 0.5625 + 2 * 4 * 0.01 * 0.375 = 0.5925
    assert _one_run_p_value(4, 2, 2, math.log(3), 0.0) == pytest.approx(0.5625, abs=1e-12)
    assert _one_run_p_value(4, 2, 2, math.log(3), 0.01) == pytest.approx(0.5925, abs=1e-12)


def test_one_run_eps_by_hand():
    # delta 0, all r = 10 guesses right: p-value q^10 = beta = 0.05 -> q = 0.05^(1/10) = 0.741134,
    #   eps = ln(q / (1 - q)) = ln(2.86301) = 1.05187
    assert _one_run_eps(100, 10, 10, 0.0, 0.05) == pytest.approx(1.05187, abs=1e-4)
    # with delta the bound is where the p-value crosses beta, and it is smaller
    e = _one_run_eps(100, 10, 10, 1e-4, 0.05)
    assert e < 1.05187 and _one_run_p_value(100, 10, 10, e, 1e-4) == pytest.approx(0.05, abs=1e-6)
    # half the guesses right is chance: no evidence
    assert _one_run_eps(100, 10, 5, 0.0, 0.05) == 0.0


def test_one_run_bound_on_a_bernoulli_split():
    split = split_of(60, draw="bernoulli", seed=2)
    n_mem = int(split.labels().sum())
    assert n_mem >= 5 and 60 - n_mem >= 5
    b = one_run_bound(split, perfect_scores(split), delta=0.0, k_pos=5, k_neg=5)
    # the top 5 are members and the bottom 5 held-out: 10 of 10 right -> 1.05187 as above
    assert b.counts == {"canaries": 60, "guesses": 10, "correct": 10}
    assert b.epsilon == pytest.approx(1.05187, abs=1e-4)
    # the reversed attack gets all 10 wrong: eps 0
    assert one_run_bound(split, -perfect_scores(split), delta=0.0, k_pos=5, k_neg=5).epsilon == 0.0
    # the binomial tail the bound inverts, checked once with scipy directly
    q = 1 / (1 + math.exp(-b.epsilon))
    assert stats.binom.sf(9, 10, q) == pytest.approx(0.05, abs=1e-6)


def test_one_run_needs_independent_coins():
    split = split_of(40, draw="balanced")
    with pytest.raises(LalmAuditError, match="bernoulli"):
        one_run_bound(split, perfect_scores(split), delta=0.0, k_pos=5, k_neg=5)


def test_no_epsilon_for_a_post_hoc_audit():
    split = split_of(40)
    labels = split.labels()
    scores = perfect_scores(split)
    # labels that this tool did not draw: a frame, a series, a forged record
    for not_controlled in (labels, labels.to_frame(), {"labels": labels}):
        with pytest.raises(PostHocAuditError, match="post-hoc"):
            clopper_pearson_bound(not_controlled, scores, delta=0.0)
        with pytest.raises(PostHocAuditError, match="post-hoc"):
            one_run_bound(not_controlled, scores, delta=0.0, k_pos=1, k_neg=1)
    forged_items = split.items.assign(label=1 - split.items["label"])
    forged = type(split)(split.pool, split.seed, split.draw, split.repetition_set, forged_items)
    with pytest.raises(PostHocAuditError, match="not the seeded draw"):
        clopper_pearson_bound(forged, scores, delta=0.0)
