"""Condition comparisons and correlation on constructed scores with known answers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lalm_audit.correlation import correlation_table
from lalm_audit.disentangle import compare_conditions
from lalm_audit.targets import average_renderings


def table(ids, labels, scores, sl="response", ind="loss"):
    return pd.DataFrame(
        {"item_id": ids, "label": labels, "slice": sl, "indicator": ind, "score": scores}
    )


N = 60
IDS = [f"i{k:02d}" for k in range(2 * N)]
Y = np.r_[np.ones(N), np.zeros(N)].astype(int)


def test_identical_inputs_give_exactly_half_and_signal_loss_is_significant():
    rng = np.random.default_rng(0)
    original = table(IDS, Y, rng.normal(size=2 * N) + 2.0 * Y)
    # fixed-length silence + transcript scoring: each member has a twin non-member with the same score
    twin = rng.normal(size=N)
    silence = table([f"{i}__silence" for i in IDS], Y, np.r_[twin, twin])
    keeps = table([f"{i}__pitch" for i in IDS], Y, rng.normal(size=2 * N) + 2.0 * Y)
    out = compare_conditions(
        original, {"silence": silence, "pitch": keeps}, [("response", "loss")], n_resamples=400
    ).set_index("condition")
    assert out.loc["silence", "auc"] == 0.5  # exactly
    assert out.loc["silence", "significant"] and out.loc["silence", "diff"] < -0.3
    assert (
        not out.loc["pitch", "significant"]
        and out.loc["pitch", "diff_lo"] < 0 < out.loc["pitch", "diff_hi"]
    )
    assert out.loc["original", "auc"] > 0.85
    # Holm never lowers a p-value
    assert (out["p_holm"].dropna() >= out["p_value"].dropna()).all()


def test_renderings_are_averaged_per_item():
    ids = ["a__resynthesis__r0", "a__resynthesis__r1", "b__resynthesis__r0", "b__resynthesis__r1"]
    df = average_renderings(table(ids, [1, 1, 0, 0], [1.0, 3.0, 0.0, 1.0]))
    assert df.set_index("item_id")["score"].to_dict() == {"a": 2.0, "b": 0.5}
    assert df["n"].tolist() == [2, 2]


def test_only_common_items_are_compared():
    rng = np.random.default_rng(1)
    original = table(IDS, Y, rng.normal(size=2 * N))
    half = table([f"{i}__noise" for i in IDS[::2]], Y[::2], rng.normal(size=N))
    out = compare_conditions(
        original, {"noise": half}, [("response", "loss")], n_resamples=200
    ).set_index("condition")
    assert out.loc["noise", "n_members"] + out.loc["noise", "n_nonmembers"] == N


def test_correlation_with_blind_logit():
    rng = np.random.default_rng(2)
    logit = pd.Series(rng.normal(size=2 * N), index=IDS)
    spurious = table(IDS, Y, 0.9 * logit.to_numpy() + 0.2 * rng.normal(size=2 * N))
    independent = table(IDS, Y, rng.normal(size=2 * N), ind="min_k_20")
    c = correlation_table(
        pd.concat([spurious, independent]), {"combined": logit}, n_resamples=300
    ).set_index("indicator")
    assert c.loc["loss", "pearson_r"] > 0.9 and c.loc["loss", "pearson_lo"] > 0.8
    assert c.loc["min_k_20", "pearson_lo"] < 0 < c.loc["min_k_20", "pearson_hi"]
    assert c.loc["loss", "n"] == 2 * N
    with pytest.raises(KeyError):
        c.loc["absent"]


def _blind_world(seed: int, spurious: bool):
    """Blind features carry a shift; the indicator is either that shift (spurious) or independent memorization."""
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = 80
    y = np.r_[np.ones(n), np.zeros(n)].astype(int)
    X = pd.DataFrame({"snr": rng.normal(size=2 * n) + 1.5 * y, "dur": rng.normal(size=2 * n)})
    if spurious:
        score = 0.8 * X["snr"].to_numpy() + 0.3 * rng.normal(size=2 * n)
    else:
        score = rng.normal(size=2 * n) + 1.5 * y
        X["snr"] = rng.normal(size=2 * n)  # no shift at all
    return score, y, X, StandardScaler


def test_confound_adjustment_removes_a_spurious_signal():
    from lalm_audit.correlation import confound_adjusted

    score, y, X, pre = _blind_world(0, spurious=True)
    r = confound_adjusted(score, y, X, pre, folds=5, n_resamples=300)
    assert r["auc"] > 0.75  # looks like an attack ...
    assert r["adjusted_lo"] < 0.5 < r["adjusted_hi"]  # ... but it is the shift
    # adds nothing to the blind classifier (redundant: at most a hair of overfitting below 0)
    assert abs(r["gain"]) < 0.03 and r["gain_hi"] < 0.03


def test_confound_adjustment_keeps_real_memorization():
    from lalm_audit.correlation import confound_adjusted

    score, y, X, pre = _blind_world(1, spurious=False)
    r = confound_adjusted(score, y, X, pre, folds=5, n_resamples=300)
    assert r["auc"] > 0.8 and r["adjusted_lo"] > 0.7
    assert r["gain"] > 0.2 and r["gain_lo"] > 0 and r["blind_auc"] < 0.65


def test_disentangle_stage_writes_table_and_chart(in_tmp):
    from lalm_audit import io
    from lalm_audit.config import parse_config
    from lalm_audit.disentangle import run_disentangle

    rng = np.random.default_rng(5)
    io.write_table(table(IDS, Y, rng.normal(size=2 * N) + 2 * Y), "orig.parquet")
    twin = rng.normal(size=N)
    io.write_table(table([f"{i}__silence" for i in IDS], Y, np.r_[twin, twin]), "sil.parquet")
    pd.DataFrame({"item_id": IDS[::3]}).to_parquet("clean.parquet")
    cfg = parse_config({"datasets": {"d": {"loader": "table", "path": "x"}}, "evaluation": {"bootstrap": 200},
                        "analysis": {"targets": ["response/loss"]}})  # fmt: skip
    t = run_disentangle(cfg, "orig.parquet", {"silence": "sil.parquet"}, {"full": None, "clean": "clean.parquet"},
                        "d.parquet", "d.png", "d.pdf")  # fmt: skip
    full = t[t["split"] == "full"].set_index("condition")
    assert full.loc["silence", "auc"] == 0.5 and full.loc["silence", "significant"]
    assert set(t["split"]) == {"full", "clean"}
    assert Path("d.png").stat().st_size > 1000 and Path("d.pdf").stat().st_size > 1000


def test_an_unknown_target_is_an_error_not_an_empty_table():
    rng = np.random.default_rng(3)
    original = table(IDS, Y, rng.normal(size=2 * N))
    with pytest.raises(ValueError, match="response/losss"):
        compare_conditions(original, {"x": original}, [("response", "losss")], n_resamples=50)


def test_shared_fits_give_the_per_score_fits_residuals():
    """One neighbour search and one multi-target ridge per fold equal one fit per score."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from lalm_audit.correlation import adjust_many

    rng = np.random.default_rng(5)
    n = 90
    y = np.r_[np.ones(n), np.zeros(n)].astype(int)
    words = np.array(["alpha", "beta", "gamma", "delta", "eps", "zeta"])
    X = pd.DataFrame({"text": [" ".join(rng.choice(words, 4)) for _ in range(2 * n)]})
    shift = X["text"].str.count("alpha").to_numpy() + 0.5 * y
    scores = {
        "spurious": shift + 0.3 * rng.normal(size=2 * n),
        "memorized": 1.2 * y + rng.normal(size=2 * n),
        "noise": rng.normal(size=2 * n),
        "scaled": 1e3 * rng.normal(size=2 * n),  # its own ridge penalty
    }

    def pre():
        return make_pipeline(FunctionTransformer(lambda d: d["text"]), TfidfVectorizer())

    a = adjust_many(scores, y, X, pre, folds=5, seed=3, shared_fits=True)
    b = adjust_many(scores, y, X, pre, folds=5, seed=3, shared_fits=False)
    for k in scores:
        np.testing.assert_allclose(a[0][k], b[0][k], rtol=1e-8, atol=1e-8 * np.abs(b[0][k]).max())
        np.testing.assert_array_equal(a[2][k], b[2][k])
    np.testing.assert_array_equal(a[1], b[1])
    # the residual of the shift-driven score is not its raw value (the adjustment did something)
    assert np.corrcoef(a[0]["spurious"], scores["spurious"])[0, 1] < 0.9
