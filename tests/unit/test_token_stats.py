"""token_stats against a literal per-position numpy implementation of metrics.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lalm_audit.schemas import TOKEN_STAT_COLUMNS
from lalm_audit.scoring import STAT_NAMES, token_stats


def naive_stats(logits: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """metrics.md written out term by term, one position at a time, in float64.

    No clamp but VL-MIA's on log(1 - p_v), whose argument is 0 when p_v is 1.
    """
    out: dict[str, list[float]] = {k: [] for k in ["token_ids", *STAT_NAMES]}
    for t in range(logits.shape[0]):
        z = logits[t].astype(np.float64)
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        logp = np.log(p)
        y = int(targets[t]) if targets[t] >= 0 else int(np.argmax(p))
        others = np.arange(p.size) != y
        py = p[y]
        mu = np.sum(p * logp)
        out["token_ids"].append(y)
        out["logp"].append(logp[y])
        out["mink_mu"].append(mu)
        out["mink_sigma"].append(np.sqrt(np.sum(p * logp**2) - mu**2))
        out["renyi_05"].append(1 / (1 - 0.5) * np.log(np.sum(p**0.5)))
        out["renyi_1"].append(-np.sum(p * logp))
        out["renyi_2"].append(1 / (1 - 2) * np.log(np.sum(p**2)))
        out["renyi_inf"].append(-np.log(p.max()))
        out["mod_entropy"].append(
            -(1 - py) * logp[y] - np.sum(p[others] * np.log(np.maximum(1 - p[others], 1e-10)))
        )
        for a, name in ((0.5, "mod_renyi_05"), (2.0, "mod_renyi_2")):
            e = abs(1 - a)
            out[name].append(
                -1
                / e
                * (
                    (1 - py) * py**e
                    - (1 - py)
                    + np.sum(p[others] * (1 - p[others]) ** e)
                    - np.sum(p[others])
                )
            )
        top = np.sort(logp)[::-1]
        out["prob_gap"].append(top[0] - top[1])
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture
def fixed_logits() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scales = np.array([1.0, 3.0, 10.0, 30.0, 0.1, 50.0, 2.0])
    logits = (rng.normal(size=(7, 40)) * scales[:, None]).astype(np.float32)
    logits[6, 5] = logits[6, 9] = logits[6].max() + 1.0  # a tie for the top token
    targets = np.array([3, 0, 39, -1, 7, 7, -1])
    return logits, targets


def test_columns_match_the_schema_contract():
    assert tuple(TOKEN_STAT_COLUMNS) == STAT_NAMES


def test_token_stats_equal_the_naive_implementation(fixed_logits):
    logits, targets = fixed_logits
    ref = naive_stats(logits, targets)
    got = token_stats(torch.from_numpy(logits), torch.from_numpy(targets))
    assert got["token_ids"].tolist() == ref["token_ids"].tolist()
    for k in STAT_NAMES:
        assert got[k].dtype == torch.float32
        np.testing.assert_allclose(got[k].numpy(), ref[k], rtol=1e-5, atol=2e-5, err_msg=k)


def test_audio_positions_use_the_argmax_as_target(fixed_logits):
    logits, _ = fixed_logits
    got = token_stats(torch.from_numpy(logits))
    assert got["token_ids"].tolist() == np.argmax(logits, axis=1).tolist()
    np.testing.assert_allclose(got["logp"].numpy(), -got["renyi_inf"].numpy(), atol=1e-6)


def test_hand_computed_uniform_two_token_distribution():
    s = token_stats(torch.zeros(1, 2), torch.tensor([1]))
    ln2 = math.log(2)
    expected = {
        "logp": -ln2,
        "mink_mu": -ln2,
        "mink_sigma": 0.0,
        "renyi_05": ln2,
        "renyi_1": ln2,
        "renyi_2": ln2,
        "renyi_inf": ln2,
        "mod_entropy": ln2,  # -(1/2) log(1/2) - (1/2) log(1 - 1/2)
        "mod_renyi_05": 2 - math.sqrt(2),  # -2 [0.5 * 0.5^.5 - 0.5 + 0.5 * 0.5^.5 - 0.5]
        "mod_renyi_2": 0.5,  # (1 - 1/2)^2 + (1/2)^2
        "prob_gap": 0.0,
    }
    for k, v in expected.items():
        assert float(s[k][0]) == pytest.approx(v, abs=1e-6), k


def test_near_certain_positions_keep_their_precision():
    # p_y = 1 - ~1e-9: fp32 rounds p_y to 1, so a naive fp32 computation gives 0 for
    # every member-like statistic; ours keeps the information.
    logits = torch.tensor([[0.0, -21.0, -22.0, -25.0]])
    ref = naive_stats(logits.double().numpy(), np.array([0]))
    got = token_stats(logits, torch.tensor([0]))
    for k in ("logp", "mod_entropy", "mod_renyi_2", "mod_renyi_05", "renyi_1", "renyi_inf"):
        assert float(got[k][0]) == pytest.approx(ref[k][0], rel=1e-3), k
    assert float(got["logp"][0]) < 0


def test_block_size_does_not_change_values(fixed_logits):
    logits, targets = fixed_logits
    a = token_stats(torch.from_numpy(logits), torch.from_numpy(targets), block=1)
    b = token_stats(torch.from_numpy(logits), torch.from_numpy(targets), block=100)
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6), k


def test_cpu_blocks_hold_about_150k_logits_whatever_the_vocabulary():
    from lalm_audit.scoring.stats import cpu_block

    assert cpu_block(151_936) == 2  # never fewer than 2 rows
    assert cpu_block(768) == 195  # a small vocabulary: many rows per call
    rng = np.random.default_rng(1)
    logits = torch.from_numpy((rng.normal(size=(500, 768)) * 3).astype(np.float32))
    targets = torch.from_numpy(rng.integers(0, 768, size=500))
    a = token_stats(logits, targets)  # default: blocks of 195 rows
    b = token_stats(logits, targets, block=1)
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), rtol=1e-6, atol=1e-6), k


def test_bf16_logits_are_computed_in_fp32(fixed_logits):
    logits, targets = fixed_logits
    got = token_stats(torch.from_numpy(logits).bfloat16(), torch.from_numpy(targets))
    assert all(got[k].dtype == torch.float32 for k in STAT_NAMES)


def test_improbable_targets_keep_their_log_probability():
    # 30 and 60 nats below the top: a clamp at log 1e-10 = -23.03 would tie them
    logits = torch.zeros(2, 50)
    logits[:, 1] = -30.0
    logits[:, 2] = -60.0
    got = token_stats(logits, torch.tensor([1, 2]))
    lz = math.log(48 + math.exp(-30) + math.exp(-60))
    assert got["logp"].tolist() == pytest.approx([-30 - lz, -60 - lz], rel=1e-6)


def test_a_minus_inf_logit_is_a_zero_probability_not_a_nan():
    # masked vocabulary entries: p = 0 exactly; every sum stays finite and equal to
    # the distribution without them
    logits = torch.tensor([[2.0, 1.0, 0.5, -float("inf")], [2.0, 1.0, 0.5, -float("inf")]])
    got = token_stats(logits, torch.tensor([1, 3]))
    ref = token_stats(logits[:1, :3], torch.tensor([1]))
    for k in STAT_NAMES:
        assert torch.isfinite(got[k]).all(), k
        assert float(got[k][0]) == pytest.approx(float(ref[k][0]), rel=1e-6, abs=1e-7), k
    # the impossible target ranks below every possible one
    assert float(got["logp"][1]) < -1e29


def test_target_based_indicators_rank_improbable_targets_apart():
    """Two items alike but for one target 30 vs 60 nats below the top: every target-based
    indicator that reads that position must score the 60-nat item lower (a clamp of
    log p at log 1e-10 = -23.03 tied them)."""
    import pandas as pd

    from lalm_audit.indicators import build_indicators, compute_scores

    rows = []
    for item, drop in (("a", 30.0), ("b", 60.0)):
        logits = torch.zeros(4, 64)
        logits[:, 0] = 5.0
        logits[2, 9] = 5.0 - drop  # position 2's target
        st = token_stats(logits, torch.tensor([0, 0, 9, 0]))
        rows.append({"item_id": item, "slice": "response", "n_tokens": 4,
                     "token_ids": st["token_ids"].tolist(), "text": "abcd",
                     **{k: st[k].numpy().tolist() for k in STAT_NAMES}})  # fmt: skip
    inds = build_indicators(k_grid=(0, 50, 100))
    scores = compute_scores(pd.DataFrame(rows), inds, slices=["response"])
    s = scores.pivot(index="indicator", columns="item_id", values="score")
    reads_it = ["loss", "zlib", "min_k_0", "min_k_50", "min_k_100", "min_k_pp_0", "mod_entropy"]
    diff = (s["a"] - s["b"]).loc[reads_it]
    # 30 more nats at one of 4 positions: 7.5 in the mean log-likelihood, 30 in the single
    # lowest, 7.5 / 12 zlib bytes = 0.62 for zlib; a clamp made every one of these 0
    assert (diff > 0.5).all(), diff.to_dict()
