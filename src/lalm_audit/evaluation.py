"""Evaluation of any membership score (MIA indicator or blind classifier): one place, one convention.

Convention: **higher score = more likely a member**; labels are 1 (member) / 0.

- ROC points come from scikit-learn; the AUC is the Mann-Whitney U statistic
  (scipy), equal to ``roc_auc_score`` but exact for symmetric ties.
- TPR at a fixed FPR is the largest TPR among ROC points whose FPR is at most
  the bound (no interpolation), as in ``metrics.md``.
- Confidence intervals use a *stratified* bootstrap (members and non-members
  resampled separately, so every resample has both classes), percentile
  method, through ``scipy.stats.bootstrap`` with the AUC computed as the
  Mann-Whitney U statistic (vectorized over resamples).
- Paired comparisons (two scores on the same items) resample item indices once
  per class and apply them to both scores; ``scipy.stats.bootstrap`` cannot
  stratify paired samples, hence the short hand-written loop.
- Holm's step-down correction is five lines and has no dependency-free home in
  scipy (which ships only Benjamini-Hochberg), so it is written here and tested
  against a worked example.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import roc_curve

DEFAULT_FPRS = (0.001, 0.01, 0.05)


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D and of equal length")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0/1")
    if (y == 1).sum() == 0 or (y == 0).sum() == 0:
        raise ValueError(
            f"need both classes to evaluate a score ({(y == 1).sum()} members, {(y == 0).sum()} non-members)"
        )
    if not np.isfinite(s).all():
        raise ValueError(f"{(~np.isfinite(s)).sum()} scores are NaN or infinite")
    return y, s


def auc(labels: Any, scores: Any) -> float:
    """ROC AUC with members as the positive class (ties count one half).

    Computed from ranks (the Mann-Whitney U statistic), which equals
    scikit-learn's ``roc_auc_score`` to rounding but is exact where it matters:
    members and non-members with identical score multisets give exactly 0.5.
    """
    y, s = _check(np.asarray(labels), np.asarray(scores))
    return float(_auc_mwu(s[y == 1], s[y == 0]))


def _auc_mwu(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    """AUC = U / (n_pos * n_neg), vectorized along ``axis`` (ties count one half)."""
    u = stats.mannwhitneyu(pos, neg, axis=axis, method="asymptotic", use_continuity=False).statistic
    return u / (pos.shape[axis] * neg.shape[axis])


def tpr_at_fpr(
    labels: Any, scores: Any, fprs: tuple[float, ...] = DEFAULT_FPRS
) -> dict[float, float]:
    """Largest TPR among ROC points with FPR <= each bound."""
    y, s = _check(np.asarray(labels), np.asarray(scores))
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return {f: float(tpr[fpr <= f + 1e-12].max()) for f in fprs}


def bootstrap_auc_ci(
    labels: Any, scores: Any, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Stratified percentile-bootstrap CI of the AUC."""
    y, s = _check(np.asarray(labels), np.asarray(scores))
    pos, neg = s[y == 1], s[y == 0]
    if min(pos.size, neg.size) < 2:
        raise ValueError(
            f"a bootstrap CI needs at least 2 members and 2 non-members (got {pos.size} and {neg.size})"
        )
    if np.unique(s).size == 1:  # every score tied: AUC is exactly 0.5 in every resample
        return 0.5, 0.5
    res = stats.bootstrap(
        (pos, neg),
        _auc_mwu,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class ScoreEval:
    """Everything reported for one score: AUC with CI and TPR at low FPR."""

    auc: float
    auc_lo: float
    auc_hi: float
    tpr: dict[float, float]
    n_members: int
    n_nonmembers: int

    def ci_contains(self, value: float = 0.5) -> bool:
        return self.auc_lo <= value <= self.auc_hi

    def as_row(self) -> dict[str, Any]:
        """Flat columns: auc, auc_lo, auc_hi, tpr_at_0.1pct_fpr, ..., n_members, n_nonmembers."""
        row = {k: v for k, v in asdict(self).items() if k != "tpr"}
        for f, t in self.tpr.items():
            row[tpr_column(f)] = t
        return row


def tpr_column(fpr: float) -> str:
    """Column name for TPR at an FPR bound, e.g. 0.001 -> 'tpr_at_0.1pct_fpr'."""
    return f"tpr_at_{fpr * 100:g}pct_fpr"


def evaluate(
    labels: Any,
    scores: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    fprs: tuple[float, ...] = DEFAULT_FPRS,
    seed: int = 0,
) -> ScoreEval:
    """AUC, its stratified bootstrap CI, and TPR at each FPR bound."""
    y, s = _check(np.asarray(labels), np.asarray(scores))
    lo, hi = bootstrap_auc_ci(y, s, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return ScoreEval(
        auc(y, s), lo, hi, tpr_at_fpr(y, s, fprs), int((y == 1).sum()), int((y == 0).sum())
    )


@dataclass(frozen=True)
class PairedComparison:
    """AUC(a) - AUC(b) on the same items, with a paired bootstrap CI and two-sided p-value."""

    auc_a: float
    auc_b: float
    diff: float
    diff_lo: float
    diff_hi: float
    p_value: float


def paired_auc_difference(
    labels: Any,
    scores_a: Any,
    scores_b: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Paired stratified bootstrap of AUC(a) - AUC(b) (the same resampled items for both scores).

    The p-value tests AUC(a) = AUC(b): twice the smaller tail of the bootstrap
    distribution of the difference around zero, with the +1 correction so that
    it is never exactly zero.
    """
    y, a = _check(np.asarray(labels), np.asarray(scores_a))
    _, b = _check(y, np.asarray(scores_b))
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    ip = rng.choice(pos, size=(n_resamples, pos.size), replace=True)
    ineg = rng.choice(neg, size=(n_resamples, neg.size), replace=True)
    diffs = _auc_mwu(a[ip], a[ineg]) - _auc_mwu(b[ip], b[ineg])
    observed = auc(y, a) - auc(y, b)
    alpha = 1 - confidence
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    if np.allclose(diffs, 0) and observed == 0:
        p = 1.0
    else:
        tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
        p = min(1.0, 2 * (tail + 1) / (n_resamples + 1))
    return PairedComparison(auc(y, a), auc(y, b), observed, float(lo), float(hi), float(p))


def holm(p_values: Any) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


@dataclass(frozen=True)
class Correlation:
    pearson: float
    pearson_lo: float
    pearson_hi: float
    spearman: float
    spearman_lo: float
    spearman_hi: float
    n: int


def correlation(
    x: Any, y: Any, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Correlation:
    """Pearson and Spearman correlation with paired percentile-bootstrap CIs."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError("correlation needs two equal-length vectors of at least 3 values")
    if (
        np.ptp(x) == 0 or np.ptp(y) == 0
    ):  # a constant: correlation undefined, report 0 with a degenerate CI
        return Correlation(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, int(x.size))

    def _ci(stat: Any) -> tuple[float, float]:
        res = stats.bootstrap(
            (x, y), stat, paired=True, vectorized=True, n_resamples=n_resamples,
            confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
        )  # fmt: skip
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    def pearson(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        a = a - a.mean(axis=axis, keepdims=True)
        b = b - b.mean(axis=axis, keepdims=True)
        den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
        return np.divide((a * b).sum(axis=axis), den, out=np.zeros_like(den), where=den > 0)

    def spearman(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return pearson(stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis), axis=axis)

    p_lo, p_hi = _ci(pearson)
    s_lo, s_hi = _ci(spearman)
    return Correlation(
        float(stats.pearsonr(x, y).statistic),
        p_lo,
        p_hi,
        float(stats.spearmanr(x, y).statistic),
        s_lo,
        s_hi,
        int(x.size),
    )


def welch_greater(suspect: Any, reference: Any) -> float:
    """One-sided Welch t-test p-value that ``suspect`` scores exceed ``reference`` scores (dataset inference)."""
    return float(
        stats.ttest_ind(
            np.asarray(suspect, float),
            np.asarray(reference, float),
            equal_var=False,
            alternative="greater",
        ).pvalue
    )
