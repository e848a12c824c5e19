"""token_stats at the extremes of a 151,936-token vocabulary (Qwen2's), against float64.

Members' tokens are the near-certain ones (p_top = 1 - 1e-7 and beyond), and
audio positions of an unsure model are near-uniform: exactly where fp32
cancellation and clamps used to erase the signal. Each regime is checked
against a float64 evaluation of the definitions on the same fp32 logits, with
a tolerance the previous implementation missed by orders of magnitude
(clamped log p(y), H_2 = -log sum p^2 rounding to 0, one-pass sigma, the gap
from clamped log-probabilities): see docs/numerics.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lalm_audit.scoring import STAT_NAMES, token_stats

V = 151_936
EPS = 1e-10


def reference(z32: np.ndarray, target: int) -> dict[str, float]:
    """metrics.md in float64, term by term, on one row of fp32 logits (upcast exactly)."""
    z = z32.astype(np.float64)
    ls = z - z.max()
    ls = ls - np.log(np.exp(ls).sum())  # log-softmax, no clamp
    p = np.exp(ls)
    top = int(np.argmax(z))
    y = target if target >= 0 else top
    others = np.arange(p.size) != y
    # 1 - p_v; at the top token from the other probabilities (f64 1 - p_top is itself
    # only 1e-7-relative at p_top = 1 - 1e-9, which the tolerances below would notice)
    om = 1.0 - p
    om[top] = p[np.arange(p.size) != top].sum()
    mu = float(np.sum(p * ls))
    py, rest = p[y], 1.0 - p[y] if y != top else om[top]
    po = p[others]
    srt = np.sort(z)[::-1]
    return {
        "logp": ls[y],
        "mink_mu": mu,
        "mink_sigma": float(np.sqrt(np.sum(p * (ls - mu) ** 2))),
        "renyi_05": 2.0 * np.log(np.sum(np.sqrt(p))),
        "renyi_1": -mu,
        "renyi_2": -np.log(np.sum(p**2)),
        "renyi_inf": -ls[top],
        # the one clamp: log(1 - p_v) of a true zero, at 1e-10 as VL-MIA does
        "mod_entropy": -rest * ls[y] - np.sum(po * np.log(np.maximum(om[others], EPS))),
        "mod_renyi_05": -2.0
        * (rest * np.sqrt(py) - rest + np.sum(po * np.sqrt(om[others])) - po.sum()),
        "mod_renyi_2": -(rest * py - rest + np.sum(po * om[others]) - po.sum()),
        "prob_gap": srt[0] - srt[1],
    }


def near_certain(delta: float, seed: int, improbable: int | None = None) -> np.ndarray:
    """fp32 logits whose top token (index 7) has probability 1 - delta, the others N(0, 1);
    ``improbable``: one more token 40 nats below the top."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(V)
    rest = np.log(np.exp(z).sum())
    z[7] = rest + np.log((1 - delta) / delta)
    if improbable is not None:
        z[improbable] = z[7] - 40.0
    return z.astype(np.float32)


def near_uniform(scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(V) * scale).astype(np.float32)


#: name -> (logits, target; -1 = the argmax, as for audio positions)
CASES = {
    "certain_1e-7": (near_certain(1e-7, 0), 7),
    "certain_1e-9": (near_certain(1e-9, 1), 7),
    "certain_1e-9_audio": (near_certain(1e-9, 2), -1),
    "certain_1e-7_improbable_target": (near_certain(1e-7, 3, improbable=11), 11),
    "uniform_0.01": (near_uniform(0.01, 4), 5),
    "uniform_0.001": (near_uniform(0.001, 5), -1),
}
# fp32 carries ~7 digits; 1e-4 relative leaves room for summation order on any CPU
# and is >= 100x tighter than the errors this file guards against.
RTOL = 1e-4


@pytest.fixture(scope="module")
def computed() -> dict[str, dict[str, float]]:
    """All cases in one call (one [6, V] matrix, the way stage 2 calls it)."""
    logits = torch.from_numpy(np.stack([c[0] for c in CASES.values()]))
    targets = torch.tensor([c[1] for c in CASES.values()])
    got = token_stats(logits, targets)
    return {name: {k: float(got[k][i]) for k in STAT_NAMES} for i, name in enumerate(CASES)}


@pytest.fixture(scope="module")
def expected() -> dict[str, dict[str, float]]:
    return {name: reference(z, y) for name, (z, y) in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("stat", STAT_NAMES)
def test_every_statistic_matches_float64_in_the_extreme_regimes(computed, expected, case, stat):
    # relative only (abs=0): the modified entropies of near-certain rows are ~1e-14 and
    # ~1e-18, and they too must keep their digits (they are what separates members there)
    assert computed[case][stat] == pytest.approx(expected[case][stat], rel=RTOL, abs=0), (
        f"{case}: {stat}"
    )


def error_table(fn=token_stats) -> str:
    """Markdown table of |computed - float64| / |float64| per statistic and case (docs/numerics.md)."""
    logits = torch.from_numpy(np.stack([c[0] for c in CASES.values()]))
    got = fn(logits, torch.tensor([c[1] for c in CASES.values()]))
    lines = ["| statistic | " + " | ".join(CASES) + " |", "|---" * (len(CASES) + 1) + "|"]
    for k in STAT_NAMES:
        cells = []
        for i, (z, y) in enumerate(CASES.values()):
            want = reference(z, y)[k]
            cells.append(f"{abs(float(got[k][i]) - want) / abs(want):.1e}")
        lines.append(f"| `{k}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def vlmia_style(z32: np.ndarray, target: int) -> dict[str, float]:
    """VL-MIA's formulas (``metric_util.get_meta_metrics``, as published) in float64 on the
    same logits: probabilities clamped to [1e-10, 1 - 1e-10] inside the power sums and the
    modified entropies. For docs/numerics.md's comparison only; never an expected value."""
    z = z32.astype(np.float64)
    ls = z - z.max()
    ls = ls - np.log(np.exp(ls).sum())
    p = np.exp(ls)
    q = np.clip(p, EPS, 1 - EPS)
    y = target if target >= 0 else int(np.argmax(z))
    qy, rem = q[y], np.delete(q, y)
    return {
        "renyi_05": 2.0 * np.log(np.sum(q**0.5)),
        "renyi_2": -np.log(np.sum(q**2)),
        "mod_entropy": -(1 - qy) * np.log(qy) - np.sum(p * np.log(1 - q)) + qy * np.log(1 - qy),
        "mod_renyi_05": -2.0
        * ((1 - qy) * qy**0.5 - (1 - qy) + np.sum(rem * (1 - rem) ** 0.5) - rem.sum()),
        "mod_renyi_2": -((1 - qy) * qy - (1 - qy) + np.sum(rem * (1 - rem)) - rem.sum()),
    }


def vlmia_table() -> str:
    """Markdown table: VL-MIA's clamped values next to the exact ones (float64 both)."""
    cols = list(vlmia_style(*next(iter(CASES.values()))))
    lines = ["| case | " + " | ".join(f"`{c}` exact / VL-MIA" for c in cols) + " |"]
    lines.append("|---" * (len(cols) + 1) + "|")
    for name, (z, y) in CASES.items():
        ref, vl = reference(z, y), vlmia_style(z, y)
        lines.append(
            f"| {name} | " + " | ".join(f"{ref[c]:.4g} / {vl[c]:.4g}" for c in cols) + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    # python -m tests.unit.test_token_stats_extremes [path/to/another/stats.py]
    import importlib.util
    import sys

    fn = token_stats
    if len(sys.argv) > 1:
        spec = importlib.util.spec_from_file_location("other_stats", sys.argv[1])
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        fn = mod.token_stats
    print(error_table(fn))
    print()
    print(vlmia_table())
