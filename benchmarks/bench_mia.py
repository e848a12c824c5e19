"""MIA evaluation benchmark: ``mia.evaluate_split`` before and after the shared, rank-based bootstrap.

Prints, measured in the same run on this machine, for each size (items per
class) on a synthetic long score table of ``--indicators`` (slice, indicator)
scores shaped like the real one (388 on the demo):

- after: the whole ``evaluate_split`` (every indicator's AUC with its
  stratified bootstrap CI, DeLong CI and TPR at low FPR with counts, plus the
  aggregated attack), and the aggregated attack's own share;
- before: the former per-indicator evaluation (``scipy.stats.bootstrap`` over
  the Mann-Whitney U statistic, as ``evaluation.evaluate`` did until this
  change, kept callable below as ``legacy_evaluate``), timed on
  ``--before-indicators`` of the indicators and scaled to all of them (it is
  linear in the number of indicators: each one redrew and re-sorted its own
  resamples), plus the same aggregated attack;
- the ratio, and whether both paths give the same CIs (they should be
  bit-identical: the same seed gives the same draws).

    .venv/bin/python benchmarks/bench_mia.py                          # 1,000 and 5,000 per class
    .venv/bin/python benchmarks/bench_mia.py --sizes 1000 --before-indicators 0   # time all of the old loop

Target (issue 11): the statistics stages at 5,000 items per class cost <= 20% of the model passes.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread, as the workflow's mia job runs

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_curve

from lalm_audit import mia
from lalm_audit.evaluation import _auc_mwu, _check, auc

SLICES = ("audio", "prompt", "response", "prompt+response")


def legacy_evaluate(
    labels: Any,
    scores: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    fprs: tuple[float, ...] = (0.001, 0.01, 0.05),
    seed: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """The former ``evaluation.evaluate``: scipy's bootstrap of the Mann-Whitney AUC, TPR from roc_curve."""
    y, s = _check(np.asarray(labels), np.asarray(scores))
    pos, neg = s[y == 1], s[y == 0]
    res = stats.bootstrap((pos, neg), _auc_mwu, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", vectorized=True, rng=np.random.default_rng(seed))  # fmt: skip
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return {"auc": auc(y, s), "auc_lo": float(res.confidence_interval.low),
            "auc_hi": float(res.confidence_interval.high),
            "tpr": {f: float(tpr[fpr <= f + 1e-12].max()) for f in fprs}}  # fmt: skip


def synthetic_scores(
    n_per_class: int, n_indicators: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series]:
    """Long table item x (slice, indicator): correlated indicator families, a few with membership signal."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_class
    ids = np.array([f"it{i:06d}" for i in range(n)])
    y = np.r_[np.ones(n_per_class), np.zeros(n_per_class)].astype(int)
    latent = rng.normal(size=(n, 8)) + 0.3 * y[:, None]  # eight shared factors, shifted for members
    per_slice = -(-n_indicators // len(SLICES))
    frames = []
    k = 0
    for sl in SLICES:
        for j in range(per_slice):
            if k == n_indicators:
                break
            score = latent[:, j % 8] * rng.uniform(0.2, 1.0) + rng.normal(size=n)
            if j % 5 == 0:
                score = np.round(score, 1)  # ties, as clamped or discrete indicators have
            frames.append(
                pd.DataFrame(
                    {"item_id": ids, "slice": sl, "indicator": f"ind_{j:03d}", "score": score}
                )
            )
            k += 1
    return pd.concat(frames, ignore_index=True), pd.Series(y, index=ids)


def run_size(
    n_per_class: int, n_indicators: int, before_k: int, settings: mia.EvalSettings
) -> dict[str, Any]:
    scores, labels = synthetic_scores(n_per_class, n_indicators)
    agg_time = []
    real_agg = mia.aggregate_attack

    def timed_agg(*a: Any, **kw: Any) -> pd.Series:
        t = time.perf_counter()
        out = real_agg(*a, **kw)
        agg_time.append(time.perf_counter() - t)
        return out

    mia.aggregate_attack = timed_agg
    try:
        t0 = time.perf_counter()
        metrics, _, _ = mia.evaluate_split(scores, labels, None, settings)
        after = time.perf_counter() - t0
    finally:
        mia.aggregate_attack = real_agg
    agg = agg_time[0]

    # the former loop body on the first before_k indicators (0: all), exactly as evaluate_split ran it
    groups = list(scores.groupby(["slice", "indicator"], sort=True))
    k = len(groups) if before_k <= 0 else min(before_k, len(groups))
    t0 = time.perf_counter()
    legacy = {}
    for key, grp in groups[:k]:
        y = labels.loc[grp["item_id"]].to_numpy()
        legacy[key] = legacy_evaluate(y, grp["score"].to_numpy(), n_resamples=settings.n_resamples,
                                      confidence=settings.confidence, fprs=settings.fprs, seed=settings.seed)  # fmt: skip
    per_indicator_before = (time.perf_counter() - t0) / k
    before_loop = per_indicator_before * (len(groups) + 1)  # + the aggregate's own evaluation
    m = metrics.set_index(["slice", "indicator"])
    same = all(
        (m.loc[key, "auc_lo"], m.loc[key, "auc_hi"]) == (v["auc_lo"], v["auc_hi"])
        for key, v in legacy.items()
    )
    close = max(max(abs(m.loc[key, "auc_lo"] - v["auc_lo"]), abs(m.loc[key, "auc_hi"] - v["auc_hi"]))
                for key, v in legacy.items())  # fmt: skip
    return {
        "n_per_class": n_per_class, "indicators": len(groups), "after_s": after, "aggregate_s": agg,
        "after_loop_s": after - agg, "before_loop_s": before_loop, "before_s": before_loop + agg,
        "before_measured": k, "same_ci": same, "max_ci_diff": close,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="items per class")
    ap.add_argument("--indicators", type=int, default=388)
    ap.add_argument(
        "--before-indicators",
        type=int,
        default=8,
        help="indicators the old path is timed on, scaled to all (0: time all of them)",
    )
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--folds", type=int, default=10)
    args = ap.parse_args()
    settings = mia.EvalSettings(n_resamples=args.resamples, folds=args.folds, seed=0)
    print(f"# mia evaluate_split, {args.indicators} indicators, {args.resamples} bootstrap resamples, "
          f"{args.folds}-fold aggregate; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")  # fmt: skip
    print(
        "| items per class | before (s) | after (s) | ratio | indicator loop before / after (s) | loop ratio "
        "| aggregate (s, both) | old path timed on | same CIs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        r = run_size(n, args.indicators, args.before_indicators, settings)
        timed = (
            "all"
            if r["before_measured"] == r["indicators"]
            else f"{r['before_measured']} of {r['indicators']}"
        )
        same = "yes" if r["same_ci"] else f"no, max diff {r['max_ci_diff']:.2g}"
        print(f"| {n:,} | {r['before_s']:.1f} | {r['after_s']:.1f} | {r['before_s'] / r['after_s']:.1f}x "
              f"| {r['before_loop_s']:.1f} / {r['after_loop_s']:.1f} | {r['before_loop_s'] / r['after_loop_s']:.1f}x "
              f"| {r['aggregate_s']:.1f} | {timed} | {same} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
