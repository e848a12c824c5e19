"""Low-FPR reporting, DeLong's analytic AUC variance, the shared vectorized bootstrap, NaN-aware Holm,
undefined correlations, and the tables that print them."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lalm_audit import evaluation as ev
from lalm_audit.mia import (
    AGGREGATE,
    EvalSettings,
    evaluate_mia,
    evaluate_split,
    headline,
    markdown_table,
    summary_frame,
)
from lalm_audit.render.tables import fmt_tpr, tpr_cell
from lalm_audit.schemas import CORRELATION, MIA_METRICS

matplotlib.use("Agg")

# --------------------------------------------------------------------------- DeLong, worked by hand
#
# 3 members a = (0.9, 0.6, 0.3), 3 non-members (0.7, 0.3, 0.2); one tie (0.3 vs 0.3).
# Structural components (Sun & Xu's V10 / V01; a tie counts one half):
#   V10 (per member, fraction of non-members below): 0.9 -> 3/3, 0.6 -> 2/3, 0.3 -> (1 + 1/2)/3 = 1/2
#   V01 (per non-member, fraction of members above): 0.7 -> 1/3, 0.3 -> (2 + 1/2)/3 = 5/6, 0.2 -> 3/3
#   AUC = mean V10 = (1 + 2/3 + 1/2)/3 = 13/18 (= mean V01)
#   Var(V10) (ddof 1): deviations 5/18, -1/18, -4/18 -> (25 + 1 + 16)/324/2 = 7/108
#   Var(V01): deviations -7/18, 2/18, 5/18 -> (49 + 4 + 25)/324/2 = 13/108
#   Var(AUC) = 7/108/3 + 13/108/3 = 20/324 = 5/81
# Second score b: members (0.8, 0.1, 0.5), non-members (0.4, 0.6, 0.0):
#   V10 = (1, 1/3, 2/3), V01 = (2/3, 1/3, 1), AUC = 2/3; Var(V10) = Var(V01) = 1/9, Var(AUC) = 2/27
#   Cov(V10a, V10b): (5*6 + (-1)(-6) + (-4)*0)/324/2 = 1/18; Cov(V01a, V01b): (0 + 2(-6) + 5*6)/324/2 = 1/36
#   Cov(AUCa, AUCb) = 1/18/3 + 1/36/3 = 1/36
#   Var(AUCa - AUCb) = 5/81 + 2/27 - 2/36 = 13/162, difference 13/18 - 2/3 = 1/18
Y3 = np.array([1, 1, 1, 0, 0, 0])
A3 = np.array([0.9, 0.6, 0.3, 0.7, 0.3, 0.2])
B3 = np.array([0.8, 0.1, 0.5, 0.4, 0.6, 0.0])


def test_delong_variance_hand_computed():
    d = ev.delong_auc(Y3, A3)
    assert d.auc == pytest.approx(13 / 18, abs=1e-15)
    assert d.variance == pytest.approx(5 / 81, abs=1e-15)
    half = stats.norm.ppf(0.975) * math.sqrt(5 / 81)
    assert d.lo == pytest.approx(13 / 18 - half, abs=1e-12) and d.hi == 1.0  # clipped at 1
    assert ev.delong_auc(Y3, B3).variance == pytest.approx(2 / 27, abs=1e-15)


def test_delong_paired_test_hand_computed():
    p = ev.delong_paired_test(Y3, A3, B3)
    assert (p.auc_a, p.auc_b) == pytest.approx((13 / 18, 2 / 3), abs=1e-15)
    assert p.diff == pytest.approx(1 / 18, abs=1e-15)
    assert p.variance == pytest.approx(13 / 162, abs=1e-15)
    z = (1 / 18) / math.sqrt(13 / 162)
    assert p.z == pytest.approx(z, abs=1e-12)
    assert p.p_value == pytest.approx(2 * stats.norm.sf(z), abs=1e-12)
    same = ev.delong_paired_test(Y3, A3, A3)
    assert same.diff == 0 and same.variance == 0 and same.p_value == 1.0


def test_delong_matches_the_pairwise_definition_with_many_ties():
    # the O(n^2) definition (kernel psi = 1 / 0.5 / 0 over all member x non-member pairs) vs the midrank algorithm
    rng = np.random.default_rng(7)
    y = rng.permutation(np.r_[np.ones(40), np.zeros(55)].astype(int))
    a = rng.integers(0, 6, y.size) + 0.8 * y
    b = rng.integers(0, 4, y.size) + 0.5 * y + 0.3 * a
    psi = {k: (s[y == 1][:, None] > s[y == 0][None, :]) + 0.5 * (s[y == 1][:, None] == s[y == 0][None, :])
           for k, s in (("a", a), ("b", b))}  # fmt: skip
    v10 = {k: m.mean(axis=1) for k, m in psi.items()}
    v01 = {k: m.mean(axis=0) for k, m in psi.items()}

    def cov(k: str, j: str) -> float:
        return float(np.cov(v10[k], v10[j])[0, 1] / 40 + np.cov(v01[k], v01[j])[0, 1] / 55)

    assert ev.delong_auc(y, a).variance == pytest.approx(cov("a", "a"), rel=1e-12)
    assert ev.delong_auc(y, a).auc == pytest.approx(ev.auc(y, a), abs=1e-15)
    pt = ev.delong_paired_test(y, a, b)
    assert pt.variance == pytest.approx(
        cov("a", "a") + cov("b", "b") - 2 * cov("a", "b"), rel=1e-12
    )


def test_delong_agrees_with_the_bootstrap_on_a_larger_example():
    rng = np.random.default_rng(11)
    y = np.r_[np.ones(300), np.zeros(300)].astype(int)
    a = rng.normal(size=600) + 0.8 * y
    b = 0.7 * a + 0.7 * rng.normal(size=600)  # correlated with a, weaker
    r = ev.StratifiedResamples.draw(y, 4000, seed=2)
    boot_a, boot_b = r.aucs(a), r.aucs(b)
    d, p = ev.delong_auc(y, a), ev.delong_paired_test(y, a, b)
    # SEs agree to within Monte-Carlo error of 4,000 resamples (~1.1% relative) plus the bootstrap's O(1/n) bias
    assert np.std(boot_a, ddof=1) / d.se == pytest.approx(1.0, abs=0.06)
    assert np.std(boot_a - boot_b, ddof=1) / math.sqrt(p.variance) == pytest.approx(1.0, abs=0.06)
    lo, hi = ev.bootstrap_auc_ci(y, a, resamples=r)
    assert abs(lo - d.lo) < 0.01 and abs(hi - d.hi) < 0.01
    e = ev.evaluate(y, a, n_resamples=1000)
    assert e.auc_delong_lo == pytest.approx(d.lo) and e.auc_delong_hi == pytest.approx(d.hi)
    assert (
        p.diff > 0 and p.p_value < 0.01
    )  # a is really stronger (true AUCs 0.71 vs 0.67, correlated)


# --------------------------------------------------------------------------- the shared bootstrap


def test_resample_aucs_are_exact_aucs_of_the_resampled_items():
    rng = np.random.default_rng(3)
    y = rng.permutation(np.r_[np.ones(37), np.zeros(52)].astype(int))
    s = np.round(rng.normal(size=y.size) + 0.6 * y, 1)  # ties within and across classes
    r = ev.StratifiedResamples.draw(y, 60, seed=5)
    assert (r.w_pos.sum(axis=0) == 37).all() and (r.w_neg.sum(axis=0) == 52).all()
    got = r.aucs(s)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for b in range(60):
        ip, ineg = np.repeat(pos, r.w_pos[:, b]), np.repeat(neg, r.w_neg[:, b])
        assert got[b] == pytest.approx(
            ev.auc(np.r_[np.ones(37), np.zeros(52)], np.r_[s[ip], s[ineg]]), abs=1e-15
        )
    assert np.all(r.aucs(np.zeros(y.size)) == 0.5)  # all tied: exactly chance in every resample


def test_bootstrap_ci_agrees_with_scipy_bootstrap_within_monte_carlo_error():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(200), np.zeros(200)].astype(int)
    s = rng.normal(size=400) + 0.8 * y
    mine = ev.bootstrap_auc_ci(y, s, n_resamples=4000, seed=1)
    ref = stats.bootstrap((s[y == 1], s[y == 0]), ev._auc_mwu, n_resamples=4000, method="percentile",
                          vectorized=True, rng=np.random.default_rng(99)).confidence_interval  # fmt: skip
    # independent draws: each bound's Monte-Carlo SD is about 0.0012 at 4,000 resamples
    assert abs(mine[0] - ref.low) < 0.01 and abs(mine[1] - ref.high) < 0.01
    # same seed, same numbers, and the same draws scipy.stats.bootstrap makes from that seed (the former
    # implementation), so existing results do not move
    assert ev.bootstrap_auc_ci(y, s, n_resamples=4000, seed=1) == mine
    old = stats.bootstrap((s[y == 1], s[y == 0]), ev._auc_mwu, n_resamples=4000, method="percentile",
                          vectorized=True, rng=np.random.default_rng(1)).confidence_interval  # fmt: skip
    assert mine == (old.low, old.high)


def test_shared_resamples_are_checked_and_give_the_unshared_numbers():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(30), np.zeros(40)].astype(int)
    r = ev.StratifiedResamples.draw(y, 300, seed=4)
    a, b = rng.normal(size=70) + y, rng.normal(size=70)
    assert ev.evaluate(y, a, n_resamples=300, seed=4, resamples=r) == ev.evaluate(
        y, a, n_resamples=300, seed=4
    )
    assert ev.paired_auc_difference(y, a, b, resamples=r) == ev.paired_auc_difference(y, a, b, n_resamples=300,
                                                                                      seed=4)  # fmt: skip
    with pytest.raises(ValueError, match="drawn for other items"):
        ev.evaluate(y[::-1], a, resamples=r)


def test_mia_split_shares_draws_and_matches_per_indicator_evaluation():
    rng = np.random.default_rng(5)
    n = 60
    ids = [f"it{i:03d}" for i in range(2 * n)]
    y = pd.Series(np.r_[np.ones(n), np.zeros(n)].astype(int), index=ids)
    rows = [(it, "response", ind, rng.normal() + shift * y[it])
            for ind, shift in (("loss", 1.2), ("noise", 0.0), ("weak", 0.4)) for it in ids]  # fmt: skip
    rows += [
        (it, "audio", "partial", rng.normal()) for it in ids[::3]
    ]  # another item set: its own draws
    scores = pd.DataFrame(rows, columns=["item_id", "slice", "indicator", "score"])
    settings = EvalSettings(n_resamples=300, folds=5, seed=7)
    metrics, _, _ = evaluate_split(scores, y, None, settings)
    for _, row in metrics[metrics["indicator"] != AGGREGATE].iterrows():
        g = scores[(scores["slice"] == row["slice"]) & (scores["indicator"] == row["indicator"])]
        e = ev.evaluate(
            y.loc[g["item_id"]].to_numpy(), g["score"].to_numpy(), n_resamples=300, seed=7
        )
        assert (row["auc_lo"], row["auc_hi"]) == (e.auc_lo, e.auc_hi), row["indicator"]


# --------------------------------------------------------------------------- low FPR


def test_tpr_at_low_fpr_needs_one_over_fpr_nonmembers():
    rng = np.random.default_rng(0)
    for n0, resolved in ((999, False), (1000, True)):
        y = np.r_[np.ones(200), np.zeros(n0)].astype(int)
        s = np.r_[rng.normal(2, 1, 200), rng.normal(0, 1, n0)]
        d = ev.tpr_at_fpr_detail(y, s, (0.001, 0.01))[0.001]
        assert d.resolved is resolved and d.n_nonmembers == n0
        assert math.isnan(d.tpr) is not resolved
        assert d.fp <= (1 if resolved else 0)
        if resolved:  # the Clopper-Pearson interval brackets tp / n_members
            assert d.lo < d.tpr == d.tp / 200 < d.hi
        row = ev.evaluate(y, s, n_resamples=50).as_row()
        assert row["tpr_at_0.1pct_fpr_resolved"] is resolved and row["tpr_at_1pct_fpr_resolved"]
        assert math.isnan(row["tpr_at_0.1pct_fpr"]) is not resolved
        assert {
            "tpr_at_1pct_fpr_lo",
            "tpr_at_1pct_fpr_hi",
            "tpr_at_1pct_fpr_tp",
            "tpr_at_1pct_fpr_fp",
        } <= set(row)


def test_clopper_pearson_at_zero_true_positives():
    # members all below every non-member: TPR 0 of 20 at FPR 5% of 20 non-members; upper = 1 - 0.025^(1/20)
    y = np.r_[np.ones(20), np.zeros(20)].astype(int)
    d = ev.tpr_at_fpr_detail(y, np.r_[np.zeros(20), np.ones(20)], (0.05,))[0.05]
    assert d.resolved and (d.tp, d.fp, d.tpr, d.lo) == (
        0,
        0,
        0.0,
        0.0,
    )  # tied non-members: 20 FP or none
    assert d.hi == pytest.approx(1 - 0.025 ** (1 / 20), abs=1e-9)


def test_tpr_cells_never_print_an_unresolvable_tpr():
    assert (
        fmt_tpr(0.25, 0.001, 999) == "n/a (needs >= 1,000 non-members)"
    )  # even if a value is stored
    assert (
        fmt_tpr(0.25, 0.01, 100, lo=0.1, hi=0.4, tp=5, fp=1, n_members=20)
        == "0.250 [0.100, 0.400] (5/20 at 1 FP)"
    )
    assert fmt_tpr(float("nan"), 0.01, 500) == "-"
    row = {"tpr_at_5pct_fpr": 0.5, "tpr_at_5pct_fpr_lo": 0.3, "tpr_at_5pct_fpr_hi": 0.7, "tpr_at_5pct_fpr_tp": 10,
           "tpr_at_5pct_fpr_fp": 0, "n_members": 20, "n_nonmembers": 20}  # fmt: skip
    assert tpr_cell(row, 0.05) == "0.500 [0.300, 0.700] (10/20 at 0 FP)"
    assert tpr_cell(row, 0.01).startswith("n/a (needs >= 100")


def test_mia_tables_say_na_below_one_over_fpr_and_show_counts_above():
    rng = np.random.default_rng(8)
    n = 80  # 80 non-members: FPR 1% (needs 100) and 0.1% are unresolved, 5% is resolved
    ids = [f"it{i:03d}" for i in range(2 * n)]
    y = pd.Series(np.r_[np.ones(n), np.zeros(n)].astype(int), index=ids)
    rows = [(it, "response", ind, rng.normal() + shift * y[it]) for ind, shift in (("loss", 1.5), ("noise", 0.0))
            for it in ids]  # fmt: skip
    scores = pd.DataFrame(rows, columns=["item_id", "slice", "indicator", "score"])
    metrics, _ = evaluate_mia(scores, y, {"full": None}, EvalSettings(n_resamples=200, folds=5))
    assert metrics["tpr_at_1pct_fpr"].isna().all() and metrics["tpr_at_5pct_fpr"].notna().all()
    assert (
        not metrics["tpr_at_1pct_fpr_resolved"].any() and metrics["tpr_at_5pct_fpr_resolved"].all()
    )
    MIA_METRICS.check(
        metrics.assign(confounded=False, blind_verdict="x")
    )  # the new columns are in the contract
    md = markdown_table(metrics)
    assert "n/a (needs >= 100 non-members)" in md and "nan" not in md.lower()
    md5 = markdown_table(metrics, fpr=0.05)
    loss = metrics.set_index("indicator").loc["loss"]
    assert f"({int(loss['tpr_at_5pct_fpr_tp'])}/80 at {int(loss['tpr_at_5pct_fpr_fp'])} FP)" in md5
    table = headline(metrics).assign(dataset="d", model="m", response="r")
    cell = summary_frame(table)["aggregate TPR@1.0%FPR"].iloc[0]
    assert cell == "n/a (needs >= 100 non-members)"


# --------------------------------------------------------------------------- Holm and correlations


def test_holm_ignores_nan_p_values():
    adj = ev.holm([0.01, np.nan, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, np.nan, 0.06, 0.06, 0.02])  # m = 4, as without the NaN
    assert np.isnan(ev.holm([np.nan, np.nan])).all() and ev.holm([]).size == 0


def test_correlation_of_a_constant_is_undefined_not_zero():
    x = np.random.default_rng(4).normal(size=50)
    c = ev.correlation(x, np.ones(50))
    assert c.n == 50
    assert all(math.isnan(v) for v in (c.pearson, c.pearson_lo, c.pearson_hi, c.spearman, c.spearman_lo,
                                       c.spearman_hi))  # fmt: skip


def test_correlation_table_and_figure_accept_a_constant_score():
    from lalm_audit.correlation import correlation_table
    from lalm_audit.render.mia_figures import correlation_grid_figure

    rng = np.random.default_rng(6)
    ids = [f"it{i:02d}" for i in range(40)]
    y = np.r_[np.ones(20), np.zeros(20)].astype(np.int8)
    logit = pd.Series(rng.normal(size=40), index=ids)
    scores = pd.DataFrame({"item_id": ids * 2, "label": np.r_[y, y], "slice": "response",
                           "indicator": ["flat"] * 40 + ["loss"] * 40,
                           "score": np.r_[np.full(40, -23.03), logit.to_numpy() + rng.normal(size=40)]})  # fmt: skip
    t = correlation_table(scores, {"combined": logit}, n_resamples=100).set_index("indicator")
    assert np.isnan(t.loc["flat", "pearson_r"]) and np.isnan(t.loc["flat", "spearman_hi"])
    assert t.loc["loss", "pearson_r"] > 0.4
    CORRELATION.check(t.reset_index().assign(split="full"))
    fig = correlation_grid_figure([{"name": "response/flat", "x": logit.to_numpy(), "y": np.full(40, -23.03),
                                    "labels": y, "row": {"pearson_r": np.nan, "auc": 0.5}}])  # fmt: skip
    assert "r = n/a" in fig.axes[0].get_title()


def test_clopper_pearson_matches_scipys_root_search():
    for k, n in ((0, 20), (1, 20), (7, 20), (20, 20), (3, 1000), (500, 1000)):
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method="exact")
        assert ev.clopper_pearson(k, n, 0.9) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_blind_summary_prints_na_for_an_unresolvable_tpr():
    from lalm_audit.blind import cross_validate, summary_markdown
    from lalm_audit.config import BlindConfig, EvaluationConfig, VerdictsConfig
    from lalm_audit.features import feature_set

    rng = np.random.default_rng(9)
    y = np.r_[np.ones(50), np.zeros(50)].astype(int)  # 50 non-members: FPR 1% needs 100
    ids = [f"i{k:03d}" for k in range(100)]
    tab = pd.DataFrame({"item_id": ids, "feature_error": None, "x": rng.normal(size=100) + y,
                        "z": rng.normal(size=100)})  # fmt: skip
    fs = feature_set(pd.DataFrame({"item_id": ids, "label": y}), {"spectral": tab}, dataset="d")
    cfg = BlindConfig(folds=5, classifiers=["logistic"], permutation_control={"shuffles": 3})
    res = cross_validate(fs, cfg, EvaluationConfig(bootstrap=200), seed=0)
    md = summary_markdown("d", res, EvaluationConfig(), VerdictsConfig(), seed=0)
    assert "n/a (needs >= 100 non-members)" in md and "nan" not in md.lower()
    # the null's TPRs are means over shuffles: NaN where no shuffle could resolve the FPR
    ctl = res.metrics.query("control == 'permutation'").iloc[0]
    assert np.isnan(ctl[ev.tpr_column(0.01)]) and np.isfinite(ctl[ev.tpr_column(0.05)])
