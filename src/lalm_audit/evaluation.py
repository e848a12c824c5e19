"""Evaluation of any membership score (MIA indicator or blind classifier): one place, one convention.

Convention: **higher score = more likely a member**; labels are 1 (member) / 0.

- ROC points come from scikit-learn; the AUC is the Mann-Whitney U statistic
  (scipy), equal to ``roc_auc_score`` but exact for symmetric ties.
- TPR at a fixed FPR is the largest TPR among ROC points whose FPR is at most
  the bound (no interpolation), as in ``metrics.md``, reported with its counts
  (TP of n_members, FP of n_nonmembers) and a Clopper-Pearson interval. With
  fewer than 1/FPR non-members the bound admits no false positive at all, so
  the number would be "TPR at zero false positives": it is reported as NaN with
  ``resolved`` false, and tables print "n/a (needs >= N non-members)".
- Confidence intervals of the AUC use a *stratified* percentile bootstrap
  (members and non-members resampled separately, so every resample has both
  classes). The resamples are drawn once (:class:`StratifiedResamples`, as
  per-class multiplicity counts) and shared by every score on the same items;
  each resample's AUC comes from one sort of the observed scores and cumulative
  counts (no sort per resample), see :meth:`StratifiedResamples.aucs`.
- DeLong's analytic variance of the AUC (fast midrank algorithm of Sun & Xu
  2014) gives a second, resampling-free CI and the paired test of two
  correlated AUCs: the cross-check of the bootstraps.
- Paired comparisons (two scores on the same items) apply the same resamples
  to both scores.
- Holm's step-down correction is five lines and has no dependency-free home in
  scipy (which ships only Benjamini-Hochberg), so it is written here and tested
  against a worked example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats
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


# --------------------------------------------------------------------------- TPR at low FPR


def min_nonmembers(fpr: float) -> int:
    """Non-members needed before FPR <= ``fpr`` admits one false positive (1/FPR, e.g. 1,000 at 0.1%)."""
    return math.ceil(1 / fpr - 1e-9)


@dataclass(frozen=True)
class TprAtFpr:
    """TPR at one FPR bound: the operating point, its counts and a Clopper-Pearson interval.

    ``tp``/``fp`` are the counts at the ROC point used (largest TPR with at
    most ``floor(fpr * n_nonmembers)`` false positives). When that allows no
    false positive (``resolved`` false) the point is the zero-false-positive
    one: ``tp`` is still given, but ``tpr``, ``lo`` and ``hi`` are NaN, since it
    is not a TPR at the requested FPR. The interval is conditional on the
    threshold (chosen on the same non-members), as is usual for TPR at low FPR.
    """

    fpr: float
    tpr: float
    lo: float
    hi: float
    tp: int
    fp: int
    n_members: int
    n_nonmembers: int

    @property
    def resolved(self) -> bool:
        return self.n_nonmembers >= min_nonmembers(self.fpr)


def tpr_at_fpr_detail(
    labels: Any, scores: Any, fprs: tuple[float, ...] = DEFAULT_FPRS, *, confidence: float = 0.95
) -> dict[float, TprAtFpr]:
    """TPR at each FPR bound with counts and a Clopper-Pearson CI (NaN where the bound is unresolved)."""
    y, s = _check(np.asarray(labels), np.asarray(scores))
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    fps, tps = np.rint(fpr * n0).astype(int), np.rint(tpr * n1).astype(int)
    out = {}
    for f in fprs:
        if not 0 < f < 1:
            raise ValueError(
                f"FPR bound {f} must lie strictly between 0 and 1 (evaluation.fpr_targets)"
            )
        max_fp = math.floor(f * n0 + 1e-9)
        at = np.flatnonzero(fps <= max_fp)
        i = at[np.argmax(tps[at])]
        tp, fp = int(tps[i]), int(fps[i])
        if max_fp >= 1:
            lo, hi = clopper_pearson(tp, n1, confidence)
            out[f] = TprAtFpr(f, tp / n1, lo, hi, tp, fp, n1, n0)
        else:
            out[f] = TprAtFpr(f, np.nan, np.nan, np.nan, tp, fp, n1, n0)
    return out


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a proportion k/n from beta quantiles.

    The closed form statsmodels' ``proportion_confint(method="beta")`` uses
    (statsmodels is not a dependency); scipy's ``binomtest(k, n).proportion_ci("exact")``
    gives the same bounds by root search, ten times slower, which counts at three
    FPR bounds x hundreds of indicators per split.
    """
    alpha = 1 - confidence
    lo = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    hi = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return lo, hi


def tpr_at_fpr(
    labels: Any, scores: Any, fprs: tuple[float, ...] = DEFAULT_FPRS
) -> dict[float, float]:
    """Largest TPR among ROC points with FPR <= each bound (NaN with fewer than 1/FPR non-members)."""
    return {f: d.tpr for f, d in tpr_at_fpr_detail(labels, scores, fprs).items()}


# --------------------------------------------------------------------------- stratified bootstrap


@dataclass(frozen=True)
class StratifiedResamples:
    """One set of stratified bootstrap resamples of a fixed list of items, shared by every score on them.

    Stored as multiplicities, one column per resample: ``w_pos[i, b]`` is how
    often member ``i`` (in item order among the members) is drawn in resample
    ``b``, likewise ``w_neg`` for the non-members; each column sums to the class
    size, so it is the usual draw of n items with replacement within each class.
    """

    labels: np.ndarray
    w_pos: np.ndarray
    w_neg: np.ndarray

    @classmethod
    def draw(cls, labels: Any, n_resamples: int = 1000, seed: int = 0) -> StratifiedResamples:
        y = np.asarray(labels).astype(int)
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())
        if min(n1, n0) < 2:
            raise ValueError(
                f"a bootstrap CI needs at least 2 members and 2 non-members (got {n1} and {n0})"
            )
        if n_resamples < 1:
            raise ValueError(
                f"n_resamples must be positive (evaluation.bootstrap), got {n_resamples}"
            )
        rng = np.random.default_rng(seed)
        # int16 halves the memory traffic of aucs() (its cost); cumulative counts reach the class size
        dtype = np.int16 if max(n1, n0) < 2**15 else np.int32
        w_pos = _multiplicities(rng, n_resamples, n1, dtype)
        w_neg = _multiplicities(rng, n_resamples, n0, dtype)
        return cls(y, w_pos, w_neg)

    @property
    def n_resamples(self) -> int:
        return self.w_pos.shape[1]

    def matches(self, labels: np.ndarray) -> bool:
        return self.labels.shape == labels.shape and bool(np.array_equal(self.labels, labels))

    def aucs(self, scores: Any) -> np.ndarray:
        """The AUC of ``scores`` (in the item order of ``labels``) in every resample.

        Why by hand: a resample's AUC is sum_i w_pos[i] * (#negatives below i +
        half the tied ones) / (n1 n0). Sorting the observed non-member scores
        once, #negatives below member i in resample b is a cumulative sum of
        that resample's non-member multiplicities up to searchsorted(member i),
        so every resample costs O(n) with no sort and no Mann-Whitney call
        (scipy's, per resample, was 83% of the mia stage; issue 11).
        """
        s = np.asarray(scores, dtype=float)
        pos, neg = s[self.labels == 1], s[self.labels == 0]
        order = np.argsort(neg, kind="stable")
        neg_sorted = neg[order]
        below = np.searchsorted(neg_sorted, pos, side="left")
        upto = np.searchsorted(neg_sorted, pos, side="right")
        # cum[k, b]: resample b's count of the k lowest non-members. A row loop, because numpy's
        # cumsum along axis 0 walks each column with a stride (6x slower here), and it reads the
        # rows in score order without materializing the reordered matrix.
        cum = np.empty((neg.size + 1, self.n_resamples), dtype=self.w_neg.dtype)
        cum[0] = 0
        for k, j in enumerate(order):
            np.add(cum[k], self.w_neg[j], out=cum[k + 1])
        # twice (negatives below + half the tied ones) per member and resample
        if np.array_equal(below, upto):  # no member ties a non-member
            twice = np.multiply(cum[below], 2, dtype=np.int32)
        else:
            twice = np.add(cum[below], cum[upto], dtype=np.int32)
        twice *= self.w_pos
        twice_u = twice.sum(axis=0, dtype=np.int64)
        # U / (n1 n0) as scipy's U statistic is divided, so the CIs are bit-identical to the former
        # scipy.stats.bootstrap path (same seed, same draws: it also draws integers per class in turn)
        return (twice_u / 2) / (pos.size * neg.size)


def _multiplicities(rng: np.random.Generator, n_resamples: int, n: int, dtype: Any) -> np.ndarray:
    """(n, n_resamples) counts of each of n items among n draws with replacement, one column per resample."""
    idx = rng.integers(
        0, n, size=(n_resamples, n)
    )  # one call: the draws scipy.stats.bootstrap makes
    counts = np.empty((n_resamples, n), dtype=dtype)
    step = max(1, 2**22 // n)  # resamples counted at a time: bounds the int64 temporaries to ~32 MB
    for b0 in range(0, n_resamples, step):
        rows = idx[b0 : b0 + step]
        flat = (rows + n * np.arange(rows.shape[0])[:, None]).ravel()
        counts[b0 : b0 + rows.shape[0]] = np.bincount(flat, minlength=rows.size).reshape(rows.shape)
    return np.ascontiguousarray(counts.T)


def _percentile_ci(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval, computed as ``scipy.stats.bootstrap(method="percentile")`` computes it."""
    alpha = (1 - confidence) / 2
    lo, hi = stats.quantile(values, np.array([alpha, 1 - alpha]))
    return float(lo), float(hi)


def _resamples_for(
    y: np.ndarray, resamples: StratifiedResamples | None, n_resamples: int, seed: int
) -> StratifiedResamples:
    if resamples is None:
        return StratifiedResamples.draw(y, n_resamples, seed)
    if not resamples.matches(y):
        raise ValueError(
            "the shared bootstrap resamples were drawn for other items or another label order: "
            "draw them with StratifiedResamples.draw(labels) for exactly these items"
        )
    return resamples


def bootstrap_auc_ci(
    labels: Any,
    scores: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: StratifiedResamples | None = None,
) -> tuple[float, float]:
    """Stratified percentile-bootstrap CI of the AUC (``resamples``: shared draws for these items)."""
    y, s = _check(np.asarray(labels), np.asarray(scores))
    r = _resamples_for(y, resamples, n_resamples, seed)
    return _percentile_ci(r.aucs(s), confidence)


# --------------------------------------------------------------------------- DeLong


# Why by hand: neither scipy, statsmodels nor scikit-learn ships DeLong's variance
# or test (checked their docs; the Python ports are single-author copies of one
# script), and the fast algorithm is a few lines of midranks.
def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties get the mean of their ranks."""
    return stats.rankdata(x, method="average", axis=-1)


def _delong_components(
    y: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and structural components (Sun & Xu 2014) of k scores on the same items.

    ``scores`` is (k, n). V10[k, i] = fraction of non-members below member i
    (ties one half); V01[k, j] = fraction of members above non-member j. Both
    come from three midrankings: of all items, of the members, of the non-members.
    """
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    tz = _midranks(scores)
    tx, ty = _midranks(pos), _midranks(neg)
    v10 = (tz[:, y == 1] - tx) / n
    v01 = 1.0 - (tz[:, y == 0] - ty) / m
    return v10.mean(axis=1), v10, v01


def _delong_cov(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    aucs, v10, v01 = _delong_components(y, scores)
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return aucs, s10 / v10.shape[1] + s01 / v01.shape[1]


@dataclass(frozen=True)
class DeLongAUC:
    auc: float
    variance: float
    lo: float
    hi: float

    @property
    def se(self) -> float:
        return math.sqrt(self.variance)


def delong_auc(labels: Any, scores: Any, *, confidence: float = 0.95) -> DeLongAUC:
    """The AUC with DeLong's analytic variance and the normal CI (clipped to [0, 1])."""
    y, s = _check(np.asarray(labels), np.asarray(scores))
    if min((y == 1).sum(), (y == 0).sum()) < 2:
        raise ValueError("DeLong's variance needs at least 2 members and 2 non-members")
    aucs, cov = _delong_cov(y, s[None, :])
    a, v = float(aucs[0]), max(float(cov[0, 0]), 0.0)
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(v)
    return DeLongAUC(a, v, float(max(0.0, a - half)), float(min(1.0, a + half)))


@dataclass(frozen=True)
class DeLongPaired:
    """AUC(a) - AUC(b) on the same items: DeLong's variance of the difference, CI, z and two-sided p."""

    auc_a: float
    auc_b: float
    diff: float
    variance: float
    diff_lo: float
    diff_hi: float
    z: float
    p_value: float


def delong_paired_test(
    labels: Any, scores_a: Any, scores_b: Any, *, confidence: float = 0.95
) -> DeLongPaired:
    """DeLong's test of two correlated AUCs (two scores on the same items)."""
    y, a = _check(np.asarray(labels), np.asarray(scores_a))
    _, b = _check(y, np.asarray(scores_b))
    if min((y == 1).sum(), (y == 0).sum()) < 2:
        raise ValueError("DeLong's test needs at least 2 members and 2 non-members")
    aucs, cov = _delong_cov(y, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0)
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(var)
    if var == 0.0:  # identical rankings (or a degenerate design): no evidence of a difference
        z, p = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    else:
        z = diff / math.sqrt(var)
        p = float(2 * stats.norm.sf(abs(z)))
    return DeLongPaired(float(aucs[0]), float(aucs[1]), diff, var, diff - half, diff + half, z, p)


# --------------------------------------------------------------------------- one score's report


@dataclass(frozen=True)
class ScoreEval:
    """Everything reported for one score: AUC with CIs and TPR at low FPR with counts."""

    auc: float
    auc_lo: float
    auc_hi: float
    tpr: dict[float, float]
    n_members: int
    n_nonmembers: int
    tpr_detail: dict[float, TprAtFpr] = field(default_factory=dict)
    auc_delong_lo: float = math.nan
    auc_delong_hi: float = math.nan

    def ci_contains(self, value: float = 0.5) -> bool:
        return self.auc_lo <= value <= self.auc_hi

    def as_row(self) -> dict[str, Any]:
        """Flat columns: auc, auc_lo, auc_hi, n_members, n_nonmembers, auc_delong_lo/hi, and per FPR bound
        tpr_at_0.1pct_fpr (NaN when unresolved) with _lo, _hi, _tp, _fp and _resolved."""
        row: dict[str, Any] = {
            "auc": self.auc, "auc_lo": self.auc_lo, "auc_hi": self.auc_hi,
            "n_members": self.n_members, "n_nonmembers": self.n_nonmembers,
            "auc_delong_lo": self.auc_delong_lo, "auc_delong_hi": self.auc_delong_hi,
        }  # fmt: skip
        for f, t in self.tpr.items():
            col = tpr_column(f)
            d = self.tpr_detail.get(f)
            row[col] = t
            row[f"{col}_lo"] = d.lo if d else math.nan
            row[f"{col}_hi"] = d.hi if d else math.nan
            row[f"{col}_tp"] = d.tp if d else math.nan
            row[f"{col}_fp"] = d.fp if d else math.nan
            row[f"{col}_resolved"] = self.n_nonmembers >= min_nonmembers(f)
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
    resamples: StratifiedResamples | None = None,
) -> ScoreEval:
    """AUC, its stratified bootstrap CI and DeLong CI, and TPR at each FPR bound with counts.

    ``resamples``: bootstrap draws shared by every score on these items (and
    labels, in this order); without it they are drawn from ``seed``, which gives
    the same draws, so sharing changes speed, not results.
    """
    y, s = _check(np.asarray(labels), np.asarray(scores))
    lo, hi = bootstrap_auc_ci(y, s, n_resamples=n_resamples, confidence=confidence, seed=seed,
                              resamples=resamples)  # fmt: skip
    detail = tpr_at_fpr_detail(y, s, fprs, confidence=confidence)
    dl = delong_auc(y, s, confidence=confidence)
    return ScoreEval(
        auc(y, s), lo, hi, {f: d.tpr for f, d in detail.items()}, int((y == 1).sum()),
        int((y == 0).sum()), detail, dl.lo, dl.hi,
    )  # fmt: skip


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
    resamples: StratifiedResamples | None = None,
) -> PairedComparison:
    """Paired stratified bootstrap of AUC(a) - AUC(b) (the same resampled items for both scores).

    The p-value tests AUC(a) = AUC(b): twice the smaller tail of the bootstrap
    distribution of the difference around zero, with the +1 correction so that
    it is never exactly zero. :func:`delong_paired_test` is the analytic
    counterpart.
    """
    y, a = _check(np.asarray(labels), np.asarray(scores_a))
    _, b = _check(y, np.asarray(scores_b))
    r = _resamples_for(y, resamples, n_resamples, seed)
    diffs = r.aucs(a) - r.aucs(b)
    observed = auc(y, a) - auc(y, b)
    alpha = 1 - confidence
    lo, hi = (float(q) for q in np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))
    if np.allclose(diffs, 0) and observed == 0:
        p = 1.0
    else:
        tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
        p = min(1.0, 2 * (tail + 1) / (r.n_resamples + 1))
    return PairedComparison(auc(y, a), auc(y, b), observed, lo, hi, float(p))


def holm(p_values: Any) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    NaN p-values (tests that could not be run) stay NaN and do not count
    towards m: a test that was never made cannot make the others stricter.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = ~np.isnan(p)
    q = p[finite]
    m = q.size
    order = np.argsort(q, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adjusted, 1.0)
    out[finite] = res
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
    """Pearson and Spearman correlation with paired percentile-bootstrap CIs.

    A constant vector has no correlation with anything: r and its CI are NaN
    (not 0, which would read as a measured absence of correlation).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError("correlation needs two equal-length vectors of at least 3 values")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        nan = math.nan
        return Correlation(nan, nan, nan, nan, nan, nan, int(x.size))

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
