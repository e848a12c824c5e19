import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lalm_audit import evaluation as ev


def test_auc_extremes_and_ties():
    y = np.array([1, 1, 0, 0])
    assert ev.auc(y, [4, 3, 2, 1]) == 1.0
    assert ev.auc(y, [1, 2, 3, 4]) == 0.0
    assert ev.auc(y, [1, 1, 1, 1]) == 0.5
    assert ev.auc(y, [2, 1, 1, 0]) == 0.875  # one tied pair counts one half: (3 + 0.5) / 4


def test_auc_equals_sklearn_with_ties_and_is_exact_for_symmetric_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 10, 300).astype(float) + y
    assert ev.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    twin = rng.normal(size=500)
    y2 = np.r_[np.ones(500), np.zeros(500)]
    assert (
        ev.auc(y2, np.r_[twin, twin[::-1]]) == 0.5
    )  # exactly; roc_auc_score gives 0.49999999999999994


def test_tpr_at_fpr_hand_computed():
    # 4 members, 10 non-members; the top non-member outranks two members.
    y = np.array([1, 1, 0, 1, 1] + [0] * 9)
    s = np.array([10, 9, 8.5, 8, 7, *(np.arange(9) * 0.5)])
    t = ev.tpr_at_fpr(y, s, (0.05, 0.1, 0.5))
    # 10 non-members cannot resolve FPR 5% (needs 20): that number would be TPR at zero false positives
    assert np.isnan(t[0.05])
    assert t[0.1] == 1.0  # after the first non-member (FPR 0.1) all members are above
    assert t[0.5] == 1.0
    d = ev.tpr_at_fpr_detail(y, s, (0.05, 0.1, 0.5))
    assert not d[0.05].resolved and (d[0.05].tp, d[0.05].fp) == (2, 0)  # the zero-FP point: 2 of 4
    assert np.isnan(d[0.05].lo) and np.isnan(d[0.05].hi)
    assert d[0.1].resolved and (d[0.1].tp, d[0.1].fp, d[0.1].n_members, d[0.1].n_nonmembers) == (
        4,
        1,
        4,
        10,
    )
    # Clopper-Pearson for 4 of 4 at 95%: lower = 0.025 ** (1/4), upper = 1 (closed form at x = n)
    assert d[0.1].lo == pytest.approx(0.025**0.25, abs=1e-9) and d[0.1].hi == 1.0
    assert (d[0.5].tp, d[0.5].fp) == (
        4,
        1,
    )  # the largest TPR is reached at one false positive already


def test_bootstrap_ci_is_seeded_and_covers_the_truth():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(200), np.zeros(200)].astype(int)
    s = rng.normal(size=400) + 0.8 * y  # true AUC = Phi(0.8 / sqrt 2) = 0.714
    a = ev.evaluate(y, s, n_resamples=500, seed=3)
    b = ev.evaluate(y, s, n_resamples=500, seed=3)
    assert a == b
    assert a.auc_lo < 0.714 < a.auc_hi and a.auc_hi - a.auc_lo < 0.12
    assert a.n_members == a.n_nonmembers == 200
    row = a.as_row()
    assert {
        "auc",
        "auc_lo",
        "auc_hi",
        "tpr_at_0.1pct_fpr",
        "tpr_at_1pct_fpr",
        "tpr_at_5pct_fpr",
    } <= set(row)
    null = ev.evaluate(y, rng.normal(size=400), n_resamples=500, seed=3)
    assert null.ci_contains(0.5)


def test_constant_scores_give_a_degenerate_ci_at_half():
    e = ev.evaluate([1, 0, 1, 0], [3.0, 3.0, 3.0, 3.0], n_resamples=200)
    assert (e.auc, e.auc_lo, e.auc_hi) == (0.5, 0.5, 0.5)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="both classes"):
        ev.auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        ev.auc([1, 0], [np.nan, 0.2])


def test_paired_difference():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(150), np.zeros(150)].astype(int)
    strong = rng.normal(size=300) + 1.5 * y
    weak = rng.normal(size=300) + 0.1 * y
    same = ev.paired_auc_difference(y, strong, strong, n_resamples=400)
    assert same.diff == 0 and same.p_value == 1.0
    d = ev.paired_auc_difference(y, strong, weak, n_resamples=400, seed=1)
    assert d.diff > 0.3 and d.diff_lo > 0 and d.p_value < 0.01
    assert d.auc_a == pytest.approx(ev.auc(y, strong))


def test_holm_worked_example():
    adj = ev.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])
    assert ev.holm([0.5, 0.9]).max() == 1.0


def test_correlation():
    rng = np.random.default_rng(4)
    x = rng.normal(size=200)
    c = ev.correlation(x, 2 * x + 1, n_resamples=300)
    assert c.pearson == pytest.approx(1.0) and c.spearman == pytest.approx(1.0)
    indep = ev.correlation(x, rng.normal(size=200), n_resamples=300)
    assert indep.pearson_lo < 0 < indep.pearson_hi and indep.spearman_lo < 0 < indep.spearman_hi


def test_ci_needs_two_items_per_class():
    with pytest.raises(ValueError, match="at least 2 members and 2 non-members"):
        ev.evaluate([1, 0, 0], [0.3, 0.2, 0.1])
