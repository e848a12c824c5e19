"""Differential-privacy lower bounds from a membership attack, for controlled splits only.

An epsilon lower bound says: no training procedure that produced this model
can be (epsilon, delta)-DP for a smaller epsilon, given how well the attack
tells members from held-out items. It means something only when membership
was assigned at random, so every public function here takes the
:class:`~lalm_audit.controlled.split.ControlledSplit` record, verifies that
its labels are the seeded draw, and refuses anything else
(:class:`~lalm_audit.controlled.split.PostHocAuditError`).

Two bounds:

``clopper_pearson`` (Jagielski, Ullman, Oprea 2020). (eps, delta)-DP implies,
for the attack's decision "member" at a threshold,
``TPR <= e^eps FPR + delta`` and, for the decision "held-out",
``TNR <= e^eps FNR + delta``. With one-sided Clopper-Pearson bounds
``TPR_lo``, ``FPR_hi`` (and ``TNR_lo = 1 - FPR_hi``, ``FNR_hi = 1 - TPR_lo``,
the same two events, since the Clopper-Pearson interval of k of n mirrors that
of n - k):
``eps_lb = max(log((TPR_lo - delta) / FPR_hi), log((TNR_lo - delta) / FNR_hi))``.
Both directions hold together when the two intervals do, so each is at
alpha / 2. The threshold is chosen either on a held-out half of the items
(``heldout``: the bound is computed on the other half) or as the best over
every threshold of the ROC with a Bonferroni correction (``bonferroni``: two
intervals per threshold, each at alpha / (2 x thresholds)).
Caveat stated with every result: the intervals treat items as independent
trials, which holds across training runs but only approximately for many
items in one run; the one-run audit below needs no such assumption.

``one_run`` (Steinke, Nasr, Jagielski 2023, "Privacy Auditing with One (1)
Training Run", Theorem 5.2 and its Algorithm). Each of ``m`` canaries is
included by an independent fair coin (the ``bernoulli`` draw); the attack
guesses "member" for its ``k_pos`` highest scores and "held-out" for its
``k_neg`` lowest and abstains on the rest (``r = k_pos + k_neg`` guesses,
``v`` correct). Under (eps, delta)-DP, ``P[correct >= v]`` is at most
``P[Bin(r, q) >= v] + 2 m delta max_i P[v > Bin(r, q) >= v - i] / i`` with
``q = e^eps / (1 + e^eps)``; the bound is the largest eps whose p-value is
below ``1 - confidence``. ``k_pos`` and ``k_neg`` come from the config, not
from looking at the results (a sweep over them would need its own correction).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from lalm_audit.controlled.split import ControlledSplit, require_controlled
from lalm_audit.errors import LalmAuditError

METHODS = ("clopper_pearson", "one_run")
THRESHOLDS = ("heldout", "bonferroni")


@dataclass(frozen=True)
class EpsilonBound:
    """One epsilon lower bound and everything needed to state it."""

    method: str
    epsilon: float
    delta: float
    confidence: float
    detail: str  # how the threshold or the guesses were chosen, in words
    counts: dict[str, int]
    split_digest: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        return (
            f"epsilon >= {self.epsilon:.3f} at delta = {self.delta:g} with confidence "
            f"{self.confidence:g} ({self.method}; {self.detail})"
        )


# --------------------------------------------------------------------------- the arithmetic


def _cp_lower(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower bound at level 1 - alpha (0 when k = 0)."""
    if k == 0:
        return 0.0
    ci = stats.binomtest(k, n, alternative="greater").proportion_ci(
        confidence_level=1 - alpha, method="exact"
    )
    return float(ci.low)


def _cp_upper(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson upper bound at level 1 - alpha (1 when k = n)."""
    if k == n:
        return 1.0
    ci = stats.binomtest(k, n, alternative="less").proportion_ci(
        confidence_level=1 - alpha, method="exact"
    )
    return float(ci.high)


def _log_ratio(num: float, den: float) -> float:
    return math.log(num / den) if num > 0 and den > 0 else 0.0


def _eps_from_rates(tp: int, n_pos: int, fp: int, n_neg: int, delta: float, alpha: float) -> float:
    """max over the two directions of the JUO bound, both intervals at level 1 - alpha; >= 0."""
    tpr_lo = _cp_lower(tp, n_pos, alpha)
    fpr_hi = _cp_upper(fp, n_neg, alpha)
    # the mirrored intervals: the same events, so the second direction costs no extra alpha
    tnr_lo, fnr_hi = 1.0 - fpr_hi, 1.0 - tpr_lo
    return max(0.0, _log_ratio(tpr_lo - delta, fpr_hi), _log_ratio(tnr_lo - delta, fnr_hi))


def _roc_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(TP, FP) of the decision 'score >= t' for every distinct score t, highest t first."""
    thresholds = np.unique(scores)[::-1]
    pos = np.sort(scores[labels == 1])
    neg = np.sort(scores[labels == 0])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return tp, fp


def _best_threshold_eps(
    scores: np.ndarray, labels: np.ndarray, delta: float, alpha: float
) -> tuple[float, float]:
    """(best eps, its threshold) over the ROC, every interval at level 1 - alpha."""
    thresholds = np.unique(scores)[::-1]
    tp, fp = _roc_counts(scores, labels)
    n_pos, n_neg = int((labels == 1).sum()), int((labels == 0).sum())
    best, at = 0.0, float(thresholds[0])
    for t, a, b in zip(thresholds, tp, fp, strict=True):
        e = _eps_from_rates(int(a), n_pos, int(b), n_neg, delta, alpha)
        if e > best:
            best, at = e, float(t)
    return best, at


def _one_run_p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """P[>= v correct of r guesses] under (eps, delta)-DP (Steinke et al. 2023, Theorem 5.2)."""
    q = 1.0 / (1.0 + math.exp(-eps))
    tail = float(stats.binom.sf(v - 1, r, q))
    # the delta term: the largest average mass just below v, over every window width i
    below = stats.binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[Bin = v-1], P[Bin = v-2], ...
    widths = np.arange(1, v + 1)
    worst = float(np.max(np.cumsum(below) / widths)) if v > 0 else 0.0
    return min(1.0, tail + 2.0 * m * delta * worst)


def _one_run_eps(m: int, r: int, v: int, delta: float, beta: float) -> float:
    """The largest eps whose p-value for v correct guesses is still below beta (0 when none is)."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if _one_run_p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    hi = 1.0
    while _one_run_p_value(m, r, v, hi, delta) < beta:
        hi *= 2.0
        if hi > 1e3:  # every guess right and delta 0: no finite eps explains it
            return math.inf
    # the p-value rises with eps: the bound is its crossing of beta
    return float(
        optimize.brentq(lambda e: _one_run_p_value(m, r, v, e, delta) - beta, 0.0, hi, xtol=1e-10)
    )


# --------------------------------------------------------------------------- the public API


def _aligned(split: ControlledSplit, scores: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of every split item, in the split's order; errors name missing items."""
    labels = split.labels()
    scores = pd.Series(scores, dtype=float)
    missing = labels.index.difference(scores.index)
    extra = scores.index.difference(labels.index)
    if len(missing) or len(extra):
        raise LalmAuditError(
            f"controlled split {split.digest} of pool {split.pool!r}: the scores must cover exactly "
            f"its {len(labels)} items ({len(missing)} missing, e.g. {list(missing[:3])}; "
            f"{len(extra)} not in the split, e.g. {list(extra[:3])}). Fix: score the split's "
            "manifest itself"
        )
    s = scores.reindex(labels.index).to_numpy()
    if not np.isfinite(s).all():
        bad = list(labels.index[~np.isfinite(s)][:3])
        raise LalmAuditError(f"non-finite membership scores for items {bad}; fix the scoring run")
    return s, labels.to_numpy().astype(int)


def _check(delta: float, confidence: float) -> None:
    if not 0 <= delta < 1:
        raise LalmAuditError(f"delta must be in [0, 1), got {delta}")
    if not 0.5 <= confidence < 1:
        raise LalmAuditError(f"confidence must be in [0.5, 1), got {confidence}")


def clopper_pearson_bound(
    split: ControlledSplit,
    scores: pd.Series,
    *,
    delta: float,
    confidence: float = 0.95,
    threshold: str = "heldout",
    heldout_fraction: float = 0.5,
    seed: int = 0,
) -> EpsilonBound:
    """Jagielski et al. (2020) bound from membership ``scores`` (item_id -> higher = member)."""
    split = require_controlled(split)
    _check(delta, confidence)
    s, y = _aligned(split, scores)
    alpha = 1.0 - confidence
    if threshold == "bonferroni":
        n_thr = len(np.unique(s))
        eps, t = _best_threshold_eps(s, y, delta, alpha / (2 * n_thr))
        tp, fp = _roc_counts(s, y)
        k = int(np.flatnonzero(np.unique(s)[::-1] == t)[0])
        counts = {
            "members": int(y.sum()),
            "heldout": int((1 - y).sum()),
            "tp": int(tp[k]),
            "fp": int(fp[k]),
            "thresholds": n_thr,
        }
        detail = (
            f"best of {n_thr} ROC thresholds, Bonferroni-corrected: each one-sided "
            f"Clopper-Pearson interval at level 1 - {alpha:g}/{2 * n_thr}; items treated as "
            "independent trials"
        )
    elif threshold == "heldout":
        if not 0 < heldout_fraction < 1:
            raise LalmAuditError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
        rng = np.random.default_rng(seed)
        select = np.zeros(len(y), dtype=bool)
        for cls in (0, 1):  # stratified by label, so both halves hold both classes
            idx = np.flatnonzero(y == cls)
            select[rng.permutation(idx)[: round(len(idx) * heldout_fraction)]] = True
        ev = ~select
        if min((y[ev] == 1).sum(), (y[ev] == 0).sum(), (y[select] == 1).sum()) < 1:
            raise LalmAuditError(
                f"controlled split {split.digest}: too few items to choose a threshold on one part "
                "and bound on the other; use threshold: bonferroni or a larger split"
            )
        _, t = _best_threshold_eps(s[select], y[select], delta, alpha / 2)
        tp = int(((s[ev] >= t) & (y[ev] == 1)).sum())
        fp = int(((s[ev] >= t) & (y[ev] == 0)).sum())
        n_pos, n_neg = int((y[ev] == 1).sum()), int((y[ev] == 0).sum())
        eps = _eps_from_rates(tp, n_pos, fp, n_neg, delta, alpha / 2)
        counts = {
            "members": n_pos,
            "heldout": n_neg,
            "tp": tp,
            "fp": fp,
            "selection_items": int(select.sum()),
        }
        detail = (
            f"threshold chosen on a random {heldout_fraction:g} of the items (seed {seed}), bound "
            f"on the other {int(ev.sum())}: one-sided Clopper-Pearson intervals at level "
            f"1 - {alpha:g}/2; items treated as independent trials"
        )
    else:
        raise LalmAuditError(f"unknown threshold choice {threshold!r}; use one of {THRESHOLDS}")
    return EpsilonBound("clopper_pearson", eps, delta, confidence, detail, counts, split.digest)


def one_run_bound(
    split: ControlledSplit,
    scores: pd.Series,
    *,
    delta: float,
    confidence: float = 0.95,
    k_pos: int,
    k_neg: int,
) -> EpsilonBound:
    """Steinke et al. (2023) one-run bound: guess the top ``k_pos`` members, the bottom ``k_neg`` held-out."""
    split = require_controlled(split)
    _check(delta, confidence)
    if split.draw != "bernoulli":
        raise LalmAuditError(
            f"controlled split {split.digest}: the one-run audit needs every item drawn by its own "
            f"fair coin, this split was drawn {split.draw!r}. Fix: controlled.draw: bernoulli"
        )
    s, y = _aligned(split, scores)
    m = len(y)
    if k_pos < 0 or k_neg < 0 or k_pos + k_neg > m or k_pos + k_neg == 0:
        raise LalmAuditError(
            f"one-run audit: k_pos={k_pos}, k_neg={k_neg} must be >= 0, not both 0, and sum to "
            f"at most the {m} canaries"
        )
    # ties broken by item order (the split's sorted ids), never by label
    order = np.argsort(-s, kind="stable")
    v = int(y[order[:k_pos]].sum() + (1 - y[order[m - k_neg :]]).sum())
    r = k_pos + k_neg
    eps = _one_run_eps(m, r, v, delta, 1.0 - confidence)
    detail = (
        f"{r} guesses on {m} canaries ({k_pos} member, {k_neg} held-out), {v} correct; "
        "Steinke, Nasr, Jagielski (2023) one-run audit"
    )
    counts = {"canaries": m, "guesses": r, "correct": v}
    return EpsilonBound("one_run", eps, delta, confidence, detail, counts, split.digest)
