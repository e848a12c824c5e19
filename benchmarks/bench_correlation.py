"""Correlation-stage benchmark: the confound adjustment with shared per-fold fits vs one fit per score.

``correlation.adjust_many`` regresses every score on the blind side in each outer fold: a
nearest-neighbour regression on the blind propensity, then a ridge on the blind features.
Until this change it refit both once per score (``shared_fits=False``, still callable, timed
here as the baseline); now one neighbour search and one multi-target ``RidgeCV`` (a penalty
per score, the decomposition of the blind matrix shared) serve every score of the split.

Prints, measured in the same run on this machine, per size (items per class): the wall time
of both paths over all folds, the ratio, and the largest difference between their residuals
(they agree to rounding). The blind matrix is shaped like the text group's: word 1-2-gram
TF-IDF of synthetic transcripts (a 2,000-word vocabulary, 8-15 words each) beside 20 numeric
columns, densified as the stage does; ``--scores`` scores per split (the demo's correlation
stage adjusts 5: four targets and the aggregate).

    .venv/bin/python benchmarks/bench_correlation.py                     # 500 and 1,500 per class
    .venv/bin/python benchmarks/bench_correlation.py --sizes 2500 --scores 5
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread, as the workflow's correlation job runs

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import StandardScaler

from lalm_audit.correlation import adjust_many
from lalm_audit.io import machine_identity


def world(
    n: int, n_scores: int, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n), np.zeros(n)].astype(int)
    vocab = np.array([f"w{i}" for i in range(2000)])
    text = [" ".join(rng.choice(vocab, rng.integers(8, 16))) for _ in range(2 * n)]
    num = rng.normal(size=(2 * n, 20)) + 0.3 * y[:, None] * (np.arange(20) < 3)
    X = pd.DataFrame(num, columns=[f"x{i}" for i in range(20)]).assign(text=text)
    scores = {
        f"s{j}": 0.5 * num[:, j % 3] + 0.4 * y * (j % 2) + rng.normal(size=2 * n)
        for j in range(n_scores)
    }
    return scores, y, X


def preprocessor() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), [f"x{i}" for i in range(20)]),
            ("txt", TfidfVectorizer(ngram_range=(1, 2), min_df=2), "text"),
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="500,1500", help="comma-separated items per class")
    ap.add_argument("--scores", type=int, default=5, help="scores adjusted per split")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(f"machine: {machine_identity()}; python {platform.python_version()}; 1 thread")
    print(f"{a.scores} scores per split, {a.folds} outer folds\n")
    print("| items per class | per-score fits (s) | shared fits (s) | ratio | max residual diff |")
    print("|---|---|---|---|---|")
    for n in (int(x) for x in a.sizes.split(",")):
        scores, y, X = world(n, a.scores, a.seed)
        times, out = [], []
        for shared in (False, True):
            t0 = time.perf_counter()
            out.append(adjust_many(scores, y, X, preprocessor, folds=a.folds, seed=a.seed,
                                   shared_fits=shared))  # fmt: skip
            times.append(time.perf_counter() - t0)
        diff = max(float(np.abs(out[0][0][k] - out[1][0][k]).max()) for k in scores)
        print(
            f"| {n:,} | {times[0]:.1f} | {times[1]:.1f} | {times[0] / times[1]:.2f}x | {diff:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
