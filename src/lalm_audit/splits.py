"""Clean splits: member/non-member subsets on which a blind classifier is at chance.

Two selection methods work from the blind classifier's out-of-fold
predictions (one row per item: ``item_id``, ``label``, ``prob``):

- :func:`filter_confident` (the paper's way): repeatedly drop the members the
  classifier is most sure are members and the non-members it is most sure are
  non-members, the same number from each side (keeping the classes balanced),
  until the out-of-fold AUC on what is left is at chance;
- :func:`match_nearest` (the causal-inference way): 1:1 nearest-neighbour
  matching of members to non-members on the blind logit, without replacement,
  within a caliper (a fraction of the logit's standard deviation).

Neither grades its own homework: the predictions that chose the items must not
be the ones that certify them. :func:`verify` (in the stage module) re-runs the
whole blind cross-validation with a new seed on the retained items only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lalm_audit.evaluation import evaluate


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Selection:
    """Items kept by a selection method and the trace of how it got there."""

    kept: pd.DataFrame  # item_id, label, prob
    trace: pd.DataFrame  # one row per step: n_members, n_nonmembers, auc, auc_lo, auc_hi
    reached_chance: bool


def tail_p_value(pos: np.ndarray, neg: np.ndarray, q: float = 0.05) -> float:
    """Exact test that too many ``pos`` scores lie above the top ``q`` of ``neg`` scores.

    With m = ceil(q * n_neg), the number X of positives ranked above the m-th
    largest negative follows, under exchangeability (no shift), the negative
    hypergeometric distribution (``scipy.stats.nhypergeom``): p = P(X >= x).
    A contaminating group that the blind classifier places far out on one side
    shows up here long before it moves the AUC.
    """
    m = max(1, int(np.ceil(q * neg.size)))
    threshold = np.sort(neg)[::-1][m - 1]
    x = int((pos > threshold).sum())
    return float(stats.nhypergeom.sf(x - 1, pos.size + neg.size, pos.size, m))


def support_gaps(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """How far (in blind-logit SDs) non-members reach below every member, and members above every non-member."""
    lg = logit(p)
    sd = float(lg.std()) or 1.0
    low = (lg[y == 1].min() - lg[y == 0].min()) / sd
    high = (lg[y == 1].max() - lg[y == 0].max()) / sd
    return float(low), float(high)


def chance_check(
    y: np.ndarray,
    p: np.ndarray,
    *,
    tail_q: float,
    tail_alpha: float,
    gap_sd: float,
    n_resamples: int,
    seed: int,
) -> tuple[bool, dict[str, float]]:
    """At chance: the AUC's bootstrap CI reaches 0.5, neither class has an excess tail, and neither class
    reaches beyond the other's range by more than ``gap_sd`` logit standard deviations.

    The CI alone is too lenient on small sets (a 30% contamination gives an AUC
    near 0.65 whose CI can still touch 0.5 at 60 items per class). The tail
    tests (:func:`tail_p_value`, both directions) catch a contaminating group
    while it is large; the support gaps (:func:`support_gaps`) catch its last
    few members, which no rank test can call significant.
    """
    e = evaluate(y, p, n_resamples=n_resamples, seed=seed)
    tail_m = tail_p_value(p[y == 1], p[y == 0], tail_q)
    tail_n = tail_p_value(-p[y == 0], -p[y == 1], tail_q)
    gap_low, gap_high = support_gaps(y, p)
    ok = e.auc_lo <= 0.5 and min(tail_m, tail_n) >= tail_alpha and max(gap_low, gap_high) <= gap_sd
    return ok, {
        "auc": e.auc, "auc_lo": e.auc_lo, "auc_hi": e.auc_hi, "tail_p_members": tail_m,
        "tail_p_nonmembers": tail_n, "gap_low_sd": gap_low, "gap_high_sd": gap_high,
    }  # fmt: skip


def filter_confident(
    oof: pd.DataFrame,
    *,
    min_per_class: int,
    step_fraction: float = 0.02,
    tail_q: float = 0.05,
    tail_alpha: float = 0.01,
    gap_sd: float = 0.3,
    n_resamples: int = 500,
    seed: int = 0,
) -> Selection:
    """Drop the most confidently placed items of both classes, in balanced steps, until at chance.

    At chance: see :func:`chance_check` (AUC CI reaches 0.5, no excess tail). Stops (``reached_chance=False``) when the next step
    would leave fewer than ``min_per_class`` items in a class.
    """
    df = oof[["item_id", "label", "prob"]].copy()
    members = df[df["label"] == 1].sort_values(
        ["prob", "item_id"], ascending=[False, True]
    )  # most member-like first
    nonmembers = df[df["label"] == 0].sort_values(
        ["prob", "item_id"], ascending=[True, True]
    )  # most non-member-like first
    step = max(1, round(step_fraction * len(df) / 2))
    trace, dropped = [], 0
    while True:
        kept = pd.concat([members.iloc[dropped:], nonmembers.iloc[dropped:]])
        y, p = kept["label"].to_numpy(), kept["prob"].to_numpy()
        ok, stats = chance_check(
            y,
            p,
            tail_q=tail_q,
            tail_alpha=tail_alpha,
            gap_sd=gap_sd,
            n_resamples=n_resamples,
            seed=seed,
        )
        trace.append(
            {
                "dropped_per_class": dropped,
                "n_members": int((y == 1).sum()),
                "n_nonmembers": int((y == 0).sum()),
                **stats,
            }
        )
        if ok:
            return Selection(
                kept.sort_values("item_id").reset_index(drop=True), pd.DataFrame(trace), True
            )
        if min(len(members), len(nonmembers)) - (dropped + step) < min_per_class:
            return Selection(
                kept.sort_values("item_id").reset_index(drop=True), pd.DataFrame(trace), False
            )
        dropped += step


def match_nearest(
    oof: pd.DataFrame,
    *,
    caliper_sd: float = 0.2,
    min_per_class: int,
    tail_q: float = 0.05,
    tail_alpha: float = 0.01,
    gap_sd: float = 0.3,
    n_resamples: int = 500,
    seed: int = 0,
) -> Selection:
    """Greedy 1:1 nearest-neighbour matching on the blind logit within ``caliper_sd`` standard deviations.

    Members are matched in random order (seeded) to the closest unmatched
    non-member; pairs farther apart than the caliper are not formed. Written
    here because the matching libraries (e.g. for propensity scores) bring
    heavy dependencies for what is a dozen lines over a sorted array.
    """
    df = oof[["item_id", "label", "prob"]].copy()
    df["logit"] = logit(df["prob"].to_numpy())
    caliper = caliper_sd * float(df["logit"].std(ddof=1))
    mem = df[df["label"] == 1]
    non = df[df["label"] == 0].sort_values(["logit", "item_id"]).reset_index(drop=True)
    non_logit = non["logit"].to_numpy()
    free = np.ones(len(non), dtype=bool)
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    for i in rng.permutation(len(mem)):
        target = mem["logit"].iloc[i]
        pos = int(np.searchsorted(non_logit, target))
        best, best_d = -1, np.inf
        # walk outwards from the insertion point to the nearest free non-member on each side
        for direction in (-1, 1):
            j = pos - 1 if direction < 0 else pos
            while 0 <= j < len(non) and not free[j]:
                j += direction
            if 0 <= j < len(non) and abs(non_logit[j] - target) < best_d:
                best, best_d = j, abs(non_logit[j] - target)
        if best >= 0 and best_d <= caliper:
            free[best] = False
            pairs.append((i, best))
    kept = pd.concat([mem.iloc[[i for i, _ in pairs]], non.iloc[[j for _, j in pairs]]])[
        ["item_id", "label", "prob"]
    ]
    kept = kept.sort_values("item_id").reset_index(drop=True)
    n = len(pairs)
    if n < max(min_per_class, 2):
        stats = {"auc": np.nan, "auc_lo": np.nan, "auc_hi": np.nan}
        ok = False
    else:
        ok, stats = chance_check(kept["label"].to_numpy(), kept["prob"].to_numpy(), tail_q=tail_q, tail_alpha=tail_alpha,
                                 gap_sd=gap_sd, n_resamples=n_resamples, seed=seed)  # fmt: skip
    trace = pd.DataFrame([{"caliper": caliper, "n_members": n, "n_nonmembers": n, **stats}])
    return Selection(kept, trace, ok and n >= min_per_class)
