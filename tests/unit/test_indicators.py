"""Indicators against hand-computed values on a fixed, tiny distribution."""

import math
import zlib

import numpy as np
import pandas as pd
import pytest

from lalm_audit.indicators import FAMILIES, build_indicators, compute_scores, n_extreme, zlib_bytes

# Three positions over a 4-token vocabulary, with targets y = (0, 1, 2).
P = np.array(
    [
        [0.5, 0.25, 0.125, 0.125],
        [0.25, 0.25, 0.25, 0.25],
        [0.125, 0.125, 0.25, 0.5],
    ]
)
Y = np.array([0, 1, 2])


def naive_stats(p: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """metrics.md, position by position, written as plainly as possible (the reference)."""
    p = np.clip(p, 1e-10, 1 - 1e-10)
    out: dict[str, list[float]] = {k: [] for k in (
        "logp", "mink_mu", "mink_sigma", "renyi_05", "renyi_1", "renyi_2", "renyi_inf",
        "mod_entropy", "mod_renyi_05", "mod_renyi_2", "prob_gap")}  # fmt: skip
    for t in range(p.shape[0]):
        pt, yt = p[t], y[t]
        lp = np.log(pt)
        out["logp"].append(lp[yt])
        mu = float(np.sum(pt * lp))
        out["mink_mu"].append(mu)
        out["mink_sigma"].append(math.sqrt(max(0.0, float(np.sum(pt * lp**2)) - mu**2)))
        out["renyi_05"].append(1 / (1 - 0.5) * math.log(np.sum(pt**0.5)))
        out["renyi_1"].append(-float(np.sum(pt * lp)))
        out["renyi_2"].append(1 / (1 - 2) * math.log(np.sum(pt**2)))
        out["renyi_inf"].append(-math.log(pt.max()))
        py = pt[yt]
        rest = np.delete(pt, yt)
        out["mod_entropy"].append(-(1 - py) * math.log(py) - float(np.sum(rest * np.log(1 - rest))))
        for a, key in ((0.5, "mod_renyi_05"), (2.0, "mod_renyi_2")):
            e = abs(1 - a)
            out[key].append(
                -1
                / e
                * (
                    (1 - py) * py**e
                    - (1 - py)
                    + float(np.sum(rest * (1 - rest) ** e))
                    - float(np.sum(rest))
                )
            )
        top = np.sort(lp)[::-1]
        out["prob_gap"].append(top[0] - top[1])
    return {k: np.array(v) for k, v in out.items()}


def stats_table(
    p: np.ndarray,
    y: np.ndarray,
    item: str = "i0",
    slice_name: str = "response",
    text: str = "hello",
) -> pd.DataFrame:
    s = naive_stats(p, y)
    return pd.DataFrame([{"item_id": item, "slice": slice_name, "n_tokens": len(y), "token_ids": y.tolist(), "text": text,
                          **{k: v.tolist() for k, v in s.items()}}])  # fmt: skip


@pytest.fixture(scope="module")
def scores() -> dict[str, float]:
    df = compute_scores(
        stats_table(P, Y), build_indicators(k_grid=(0, 40, 100)), slices=["response"]
    )
    return dict(zip(df["indicator"], df["score"], strict=True))


LN2 = math.log(2)
H1 = (1.75 * LN2, 2 * LN2, 1.75 * LN2)  # Shannon entropies of the three rows (1.75, 2, 1.75 bits)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("loss", (math.log(0.5) + 2 * math.log(0.25)) / 3),
        ("min_k_40", math.log(0.25)),  # floor(0.4 * 3) = 1 position: the lowest
        ("max_k_40", math.log(0.5)),
        ("min_k_100", (math.log(0.5) + 2 * math.log(0.25)) / 3),
        ("renyi_1_max_k_0", -2 * LN2),  # minus the largest entropy
        ("renyi_1_min_k_0", -1.75 * LN2),
        ("renyi_1_max_k_100", -sum(H1) / 3),
        ("renyi_inf_max_k_100", -(LN2 + 2 * LN2 + LN2) / 3),  # -log max p: ln2, ln4, ln2
        ("renyi_2_min_k_0", math.log(0.34375)),  # sum p^2 of row 0 = 0.34375; H2 = -log of it
        ("renyi_05_max_k_0", -2 * math.log(2.0)),  # uniform row: 2 log(sum sqrt p) = 2 log 2
        ("max_prob_gap", (LN2 + 0 + LN2) / 3),
        ("zlib", ((math.log(0.5) + 2 * math.log(0.25)) / 3) / len(zlib.compress(b"hello"))),
    ],
)
def test_hand_computed_values(scores, name, expected):
    assert scores[name] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_min_k_pp_hand_computed(scores):
    # row 0: mu = -H1, sigma^2 = sum p (log p)^2 - mu^2; z = (log 0.5 - mu) / sigma
    mu0 = -1.75 * LN2
    var0 = 0.5 * LN2**2 + 0.25 * (2 * LN2) ** 2 + 0.25 * (3 * LN2) ** 2 - mu0**2
    z0 = (math.log(0.5) - mu0) / math.sqrt(var0)
    z2 = (math.log(0.25) - mu0) / math.sqrt(var0)  # row 2 mirrors row 0, target p = 0.25
    assert z2 < 0 < z0
    assert scores["min_k_pp_40"] == pytest.approx(z2, rel=1e-9)  # the single lowest z
    # the uniform row has sigma = 0 and l - mu = 0: its z is 0, not a division error
    assert scores["min_k_pp_100"] == pytest.approx((z0 + 0.0 + z2) / 3, rel=1e-6)


def test_modified_entropy_hand_computed(scores):
    m0 = -(0.5) * math.log(0.5) - (0.25 * math.log(0.75) + 2 * 0.125 * math.log(0.875))
    m1 = -(0.75) * math.log(0.25) - 3 * 0.25 * math.log(0.75)
    m2 = -(0.75) * math.log(0.25) - (2 * 0.125 * math.log(0.875) + 0.5 * math.log(0.5))
    assert scores["mod_entropy"] == pytest.approx(-(m0 + m1 + m2) / 3, rel=1e-9)
    # alpha = 2: M = -[(1-py) py - (1-py) + sum p(1-p) - sum p] = (1-py)^2 + sum_{v!=y} p_v^2
    m2_0 = 0.5**2 + 0.25**2 + 2 * 0.125**2
    m2_1 = 0.75**2 + 3 * 0.25**2
    m2_2 = 0.75**2 + 2 * 0.125**2 + 0.5**2
    assert scores["mod_renyi_2"] == pytest.approx(-(m2_0 + m2_1 + m2_2) / 3, rel=1e-9)


def test_sign_convention_members_score_higher():
    confident = np.array([[0.97, 0.01, 0.01, 0.01]] * 4)
    unsure = np.array([[0.4, 0.2, 0.2, 0.2]] * 4)
    y = np.zeros(4, dtype=int)
    inds = build_indicators(k_grid=(20,))
    a = compute_scores(stats_table(confident, y), inds, slices=["response"]).set_index("indicator")[
        "score"
    ]
    b = compute_scores(stats_table(unsure, y), inds, slices=["response"]).set_index("indicator")[
        "score"
    ]
    # a memorized (confident, correct) item scores higher on every indicator but Min-K%++,
    # which normalizes by the distribution's own mean and spread (checked below)
    a, b = a.drop(a.filter(like="min_k_pp").index), b.drop(b.filter(like="min_k_pp").index)
    assert (a > b).all(), list(a.index[a <= b])
    # same distribution: the likely target beats the unlikely one on every target-based indicator
    likely = compute_scores(stats_table(unsure, y), inds, slices=["response"]).set_index(
        "indicator"
    )["score"]
    unlikely = compute_scores(stats_table(unsure, y + 1), inds, slices=["response"]).set_index(
        "indicator"
    )["score"]
    target_based = [i.name for i in inds if i.target_based and i.name != "zlib"]
    assert (likely[target_based] > unlikely[target_based]).all()


def test_slices_target_free_on_audio_and_concatenation():
    audio = stats_table(P, Y, slice_name="audio", text="")
    prompt = stats_table(P[:1], Y[:1], slice_name="prompt", text="ab")
    resp = stats_table(P[1:], Y[1:], slice_name="response", text="cd")
    df = compute_scores(pd.concat([audio, prompt, resp]), build_indicators(k_grid=(100,)))
    on_audio = set(df.loc[df["slice"] == "audio", "indicator"])
    assert "loss" not in on_audio and "min_k_100" not in on_audio and "mod_entropy" not in on_audio
    assert {"renyi_1_max_k_100", "max_prob_gap"} <= on_audio
    both = df[(df["slice"] == "prompt+response") & (df["indicator"] == "loss")]["score"].item()
    assert both == pytest.approx((math.log(0.5) + 2 * math.log(0.25)) / 3)


def test_reference_loss_difference():
    tgt = stats_table(P, Y)
    ref = stats_table(np.full((3, 4), 0.25), Y)
    df = compute_scores(
        tgt, build_indicators(["loss"]), slices=["response"], reference=ref
    ).set_index("indicator")["score"]
    assert df["ref_loss_diff"] == pytest.approx(df["loss"] - math.log(0.25))


def test_registry_and_grid():
    assert (
        n_extreme(0, 50) == 1
        and n_extreme(10, 50) == 5
        and n_extreme(10, 5) == 1
        and n_extreme(100, 7) == 7
    )
    names = [i.name for i in build_indicators(k_grid=(0, 5, 10, 20, 30, 40, 50, 60, 100))]
    assert len(names) == len(set(names))
    assert {"loss", "zlib", "min_k_20", "max_k_60", "min_k_pp_10", "renyi_inf_max_k_0", "renyi_05_min_k_100",
            "mod_entropy", "mod_renyi_05", "mod_renyi_2", "max_prob_gap"} <= set(names)  # fmt: skip
    assert set(FAMILIES) == {
        "loss",
        "zlib",
        "min_k",
        "max_k",
        "min_k_pp",
        "renyi",
        "mod_entropy",
        "max_prob_gap",
    }
    with pytest.raises(ValueError, match="unknown indicator families"):
        build_indicators(["nope"])
    assert zlib_bytes("hello") == len(zlib.compress(b"hello"))
