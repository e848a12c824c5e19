"""Calibration benchmark: how often each verdict fires on simulated worlds whose truth is known.

Every simulation builds a world of :mod:`lalm_audit.simulate` and runs it
through the real stage functions:

- blind worlds: ``blind.cross_validate`` (every check + its label-permutation
  null) and ``verdicts.shift_verdict`` -> shifted / clean / inconclusive;
- model worlds: ``mia.aggregate_attack`` + ``mia.aggregate_null`` and
  ``verdicts.learned_signal_verdict`` (the aggregated attack's "signal"),
  then (every simulation of a null model world, the first ``--correlation-sims``
  of the others) ``correlation.confound_adjusted`` on the aggregate's score and
  ``verdicts.correlation_verdict`` ("membership signal beyond the blind
  artifacts"). The null model worlds: a model with no signal at all, and one
  whose scores read a recording shift the blind features also see, on a split
  treated as clean (the blind stage missed the shift: the correlation
  verdict's hardest case); there the aggregate's "signal" is true (the classes
  differ), and only "membership signal beyond" is a false positive.

Printed for each (world, verdict, size): the rate at which the verdict fired,
with a Clopper-Pearson 95% Monte-Carlo interval, and what it should be: a
false-positive rate at most ``alpha`` (the verdict is wrong in that world) or
a power (the verdict is right there; no nominal value). "clean" is wrong on a
world whose population AUC is at or above 0.5 + margin. A false-positive row
whose whole interval lies above ``alpha`` is flagged ``ABOVE NOMINAL``.

    .venv/bin/python benchmarks/bench_calibration.py                # defaults (~20 min on 2 cores)
    .venv/bin/python benchmarks/bench_calibration.py --quick        # a smoke run (< 2 min)
    .venv/bin/python benchmarks/bench_calibration.py --sizes 120,1000,5000 --large-sims 10 --out t.md

Simulations at the demo's size (60 per class) use ``--null-sims`` (the text
null world, about twice as slow: ``--slow-sims``) / ``--power-sims``; larger
sizes measure power only, with ``--large-sims`` per shifted world, and the
output says so. Cost measured (CPU seconds per simulation, 3 folds, 19
shuffles, on a loaded 2-core machine): 3.5-3.7 for the acoustic blind worlds,
5.6-7.2 for the text ones, 0.6-0.9 for the model worlds at n = 120; 3.5-10 for
the blind worlds at n = 1,000. The defaults add up to about 2,500 CPU seconds:
about 20 minutes on 2 cores. ``--raw`` keeps every finished chunk, so a long
run can be cut short and resumed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker process

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import binomtest

from lalm_audit import blind, mia, simulate, verdicts
from lalm_audit import evaluation as ev
from lalm_audit.config import BlindConfig, EvaluationConfig, VerdictsConfig
from lalm_audit.correlation import confound_adjusted

DEMO_N = 120  # the demo's size: 60 members + 60 non-members

FALSE_POSITIVE, POWER = "false positive", "power"
#: one simulation's record (blind worlds fill state..detectable_auc, model worlds agg_state, correlation)
RAW_COLUMNS = [
    "world", "n", "sim", "true_auc", "p_value", "auc", "state", "auc_ucb", "detectable_auc",
    "agg_state", "correlation", "cpu_s", "shifted", "seconds",
]  # fmt: skip


@dataclass(frozen=True)
class WorldSpec:
    """A world of :mod:`lalm_audit.simulate` as the benchmark runs it."""

    name: str
    make: Callable[..., simulate.World]
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = "blind"  # "blind": shift verdict; "model": aggregate + correlation verdicts
    null: bool = False  # True: nothing to find (a verdict that fires is a false positive)
    slow: bool = (
        False  # a null world with text (TF-IDF): --slow-sims simulations instead of --null-sims
    )


BLIND_WORLDS = (
    WorldSpec("no shift", simulate.null_world, null=True),
    WorldSpec(
        "speaker-clustered, no shift", simulate.speaker_world, {"items_per_speaker": 10}, null=True
    ),
    WorldSpec("repeated transcripts, no shift", simulate.repeated_text_world, null=True, slow=True),
    WorldSpec("shift, AUC 0.6", simulate.shifted_world, {"auc": 0.6}),
    WorldSpec("shift, AUC 0.7", simulate.shifted_world, {"auc": 0.7}),
    WorldSpec("closed vocabulary split by class", simulate.closed_vocabulary_world),
)
MODEL_WORLDS = (
    WorldSpec("no-signal model", simulate.no_signal_model, kind="model", null=True),
    WorldSpec("memorizing model, AUC 0.7", simulate.memorizing_model, {"auc": 0.7}, kind="model"),
    # no membership, but scores that read a shift the blind baseline did not flag (the split is
    # treated as clean): the correlation verdict's false positive in its hardest case
    WorldSpec(
        "shift-reading model, blind AUC 0.7",
        simulate.shift_reading_model,
        {"auc": 0.7},
        kind="model",
        null=True,
    ),
)


@dataclass(frozen=True)
class Settings:
    blind: BlindConfig
    evaluation: EvaluationConfig
    verdicts: VerdictsConfig
    agg_folds: int
    seed: int


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        blind=BlindConfig(
            folds=args.folds,
            gbt={"max_iter": args.gbt_iter, "max_bins": 32},
            permutation_control={"shuffles": args.shuffles},
            top_features=1,  # explanations are switched off per call (explain_top=0)
        ),
        evaluation=EvaluationConfig(bootstrap=args.bootstrap),
        verdicts=VerdictsConfig(
            alpha=args.alpha, margin=args.margin, aggregate_shuffles=args.agg_shuffles
        ),
        agg_folds=args.agg_folds,
        seed=args.seed,
    )


def sim_seed(base: int, world: str, n: int, sim: int) -> int:
    """One seed per (world, size, simulation), independent of the order simulations run in."""
    return blind.derive_seed(base, world, n, sim)


# --------------------------------------------------------------------------- one simulation


def run_blind(spec: WorldSpec, n: int, sim: int, s: Settings) -> dict[str, Any]:
    cpu = time.process_time()
    seed = sim_seed(s.seed, spec.name, n, sim)
    w = spec.make(n, seed=seed, **spec.kwargs)
    res = blind.cross_validate(w.fs, s.blind, s.evaluation, seed=seed, explain_top=0)
    v = verdicts.shift_verdict(res.metrics, res.null, s.verdicts)
    return {
        "world": spec.name, "n": n, "sim": sim, "true_auc": w.auc, "state": v.state,
        "p_value": v.p_value, "auc": v.auc, "auc_ucb": v.auc_ucb, "detectable_auc": v.detectable_auc,
        "cpu_s": time.process_time() - cpu,
    }  # fmt: skip


def run_model(spec: WorldSpec, n: int, sim: int, s: Settings, correlation: bool) -> dict[str, Any]:
    cpu = time.process_time()
    seed = sim_seed(s.seed, spec.name, n, sim)
    w = spec.make(n, seed=seed, **spec.kwargs)
    wide = mia.wide_scores(w.scores)
    labels = w.labels
    agg = mia.aggregate_attack(wide, labels, folds=s.agg_folds, seed=seed)
    y = labels.loc[agg.index].to_numpy()
    auc = float(ev.auc(y, agg.to_numpy()))
    null = mia.aggregate_null(
        wide, labels, folds=s.agg_folds, seed=seed, shuffles=s.verdicts.aggregate_shuffles
    )
    v = verdicts.learned_signal_verdict(auc, null, s.verdicts)
    out = {
        "world": spec.name, "n": n, "sim": sim, "true_auc": w.score_auc, "shifted": w.shifted,
        "agg_state": v.state,
        "p_value": v.p_value, "auc": auc, "correlation": None,
    }  # fmt: skip
    if correlation:
        # the correlation stage's reading of the aggregate on this (unshifted) split: the blind
        # artifacts regressed out inside folds, the gain of blind + score over blind alone
        fs = w.fs.subset(np.asarray(agg.index, dtype=object))
        folds = blind.stratified_folds(y, s.blind.folds, seed)
        pre = _preprocessor(fs, s.blind)
        adj = confound_adjusted(
            agg.to_numpy(), y, fs.frame, pre, folds=folds,
            n_resamples=s.evaluation.bootstrap, seed=seed,
        )  # fmt: skip
        row = {**adj, "p_perm": v.p_value, "confounded": False}
        out["correlation"] = verdicts.correlation_verdict(row, s.verdicts.alpha)
    out["cpu_s"] = time.process_time() - cpu
    return out


def _preprocessor(fs: Any, cfg: BlindConfig) -> Callable[[], Any]:
    cols = blind.group_columns(fs, blind.COMBINED)
    return lambda: blind.make_preprocessor(cols, "logistic", cfg)


# --------------------------------------------------------------------------- the table


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def rate_row(
    world: str, verdict: str, n: int, hits: np.ndarray, kind: str, alpha: float
) -> dict[str, Any]:
    k, m = int(np.sum(hits)), len(hits)
    lo, hi = clopper_pearson(k, m)
    nominal = f"<= {alpha:g} ({kind})" if kind == FALSE_POSITIVE else POWER
    flag = " ABOVE NOMINAL" if kind == FALSE_POSITIVE and lo > alpha else ""
    return {
        "world": world, "verdict": verdict, "n": n, "sims": m, "rate": k / m,
        "95% MC CI": f"[{lo:.3f}, {hi:.3f}]", "nominal": nominal + flag,
        "kind": kind, "ci_lo": lo, "ci_hi": hi,
    }  # fmt: skip


def blind_rows(df: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    """'shifted' and 'clean' rates per world and size, each marked false positive or power."""
    alpha, margin = s.verdicts.alpha, s.verdicts.margin
    rows = []
    for (world, n), g in df.groupby(["world", "n"], sort=False):
        true_auc = float(g["true_auc"].iloc[0])
        shifted_kind = FALSE_POSITIVE if true_auc == 0.5 else POWER
        rows.append(
            rate_row(world, "shifted", n, g["state"] == verdicts.SHIFTED, shifted_kind, alpha)
        )
        if true_auc == 0.5:
            clean_kind = POWER  # certifying a world without a shift
        elif true_auc >= 0.5 + margin - 1e-9:
            clean_kind = FALSE_POSITIVE
        else:
            continue  # a shift below the margin: "clean" is right there, neither row applies
        rows.append(rate_row(world, "clean", n, g["state"] == verdicts.CLEAN, clean_kind, alpha))
    return rows


def model_rows(df: pd.DataFrame, s: Settings) -> list[dict[str, Any]]:
    alpha = s.verdicts.alpha
    rows = []
    for (world, n), g in df.groupby(["world", "n"], sort=False):
        kind = FALSE_POSITIVE if float(g["true_auc"].iloc[0]) == 0.5 else POWER
        # scores that read a real shift make the classes distinguishable: the aggregate's
        # "signal" is then true (power), only a membership reading of it is false
        shifted = "shifted" in g and bool(g["shifted"].fillna(False).astype(bool).iloc[0])
        agg_kind = POWER if shifted else kind
        rows.append(
            rate_row(world, "aggregate: signal", n, g["agg_state"] == "signal", agg_kind, alpha)
        )
        c = g["correlation"].dropna()
        if len(c):
            hits = c.map(verdicts.is_membership_signal).to_numpy(bool)
            rows.append(rate_row(world, "correlation: membership signal", n, hits, kind, alpha))
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = ["world", "verdict", "n", "sims", "rate", "95% MC CI", "nominal"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append(
            f"| {r['world']} | {r['verdict']} | {r['n']} | {r['sims']} | {r['rate']:.3f} | "
            f"{r['95% MC CI']} | {r['nominal']} |"
        )
    return "\n".join(lines)


def detectable_table(df: pd.DataFrame) -> str:
    """The smallest shift each size detects (what every 'clean' / 'inconclusive' sentence states),
    and a check of the whole null distribution of the permutation p-value: without a shift it is
    uniform on {1/(B+1), ..., 1}, so about half the p-values are <= 0.5 (a test can keep its level
    at alpha by luck of the tail while its null is wrong everywhere else)."""
    lines = [
        "| world | n | median worst-check AUC | median detectable AUC (80% power) | clean / inconclusive / shifted "
        "| share of p <= 0.5 (no shift: about 0.5) |",
        "|---|---|---|---|---|---|",
    ]
    for (world, n), g in df.groupby(["world", "n"], sort=False):
        counts = g["state"].value_counts()
        states = " / ".join(
            str(int(counts.get(x, 0)))
            for x in (verdicts.CLEAN, verdicts.INCONCLUSIVE, verdicts.SHIFTED)
        )
        lines.append(
            f"| {world} | {n} | {g['auc'].median():.3f} | {g['detectable_auc'].median():.3f} | {states} "
            f"| {(g['p_value'] <= 0.5 + 1e-9).mean():.2f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", default=f"{DEMO_N},1000", help="comma-separated item counts (half members)"
    )
    ap.add_argument("--null-sims", type=int, default=200, help="simulations per null world at the demo's size")  # fmt: skip
    ap.add_argument("--slow-sims", type=int, default=50, help="simulations per slow null world (text, TF-IDF) at the demo's size")  # fmt: skip
    ap.add_argument("--power-sims", type=int, default=30, help="simulations per shifted world at the demo's size")  # fmt: skip
    ap.add_argument("--large-sims", type=int, default=10, help="simulations per shifted world at each size above the demo's (power only)")  # fmt: skip
    ap.add_argument("--correlation-sims", type=int, default=30, help="simulations (per model world and size) that also run the confound adjustment")  # fmt: skip
    ap.add_argument(
        "--shuffles", type=int, default=19, help="label shuffles of the blind permutation null"
    )
    ap.add_argument(
        "--agg-shuffles", type=int, default=19, help="label shuffles of the aggregate's null"
    )
    ap.add_argument("--folds", type=int, default=3, help="blind CV folds")
    ap.add_argument("--agg-folds", type=int, default=3, help="aggregated attack CV folds")
    ap.add_argument("--gbt-iter", type=int, default=20, help="boosting rounds of the blind trees")
    ap.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples of each CI")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--margin", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=20260)
    ap.add_argument(
        "--jobs", type=int, default=2, help="worker processes (simulations run in parallel)"
    )
    ap.add_argument(
        "--worlds", default="", help="comma-separated substrings: run only matching worlds"
    )
    ap.add_argument("--out", type=Path, help="also write the Markdown report here")
    ap.add_argument(
        "--readme", type=Path, help="also fill this README's <!-- calibration:demo --> block"
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="no simulation: the table of the results in --raw (give the settings flags of that run: "
        "the header prints them)",
    )
    ap.add_argument("--chunk", type=int, default=20, help="simulations per chunk (see --raw)")
    ap.add_argument(
        "--raw", type=Path, help="per-simulation results (CSV): appended, and resumed from"
    )
    ap.add_argument(
        "--quick", action="store_true", help="a smoke run: few simulations, demo size only"
    )
    if "--quick" in (sys.argv[1:] if argv is None else argv):  # flags given beside it still win
        ap.set_defaults(
            sizes=str(DEMO_N),
            null_sims=6,
            slow_sims=4,
            power_sims=4,
            large_sims=0,
            correlation_sims=2,
        )
    args = ap.parse_args(argv)
    return args


def plan(args: argparse.Namespace) -> list[tuple[WorldSpec, int, int]]:
    sizes = [int(x) for x in str(args.sizes).split(",") if x.strip()]
    keep = [x.strip().lower() for x in args.worlds.split(",") if x.strip()]
    todo = []
    for spec in (*BLIND_WORLDS, *MODEL_WORLDS):
        if keep and not any(k in spec.name.lower() for k in keep):
            continue
        for n in sizes:
            if n <= DEMO_N:
                sims = (
                    args.power_sims
                    if not spec.null
                    else args.slow_sims
                    if spec.slow
                    else args.null_sims
                )
            else:  # larger sizes measure power: what is there to find
                sims = 0 if spec.null else args.large_sims
            todo += [(spec, n, i) for i in range(sims)]
    return todo


def append_raw(path: Path, df: pd.DataFrame) -> None:
    """Append a finished chunk; a file written by an older version (other columns) is rewritten whole."""
    if path.exists():
        header = pd.read_csv(path, nrows=0).columns.tolist()
        if header != df.columns.tolist():
            pd.concat([pd.read_csv(path), df], ignore_index=True).to_csv(path, index=False)
            return
    df.to_csv(path, mode="a", header=not path.exists(), index=False)


def simulate_all(args: argparse.Namespace, s: Settings) -> pd.DataFrame:
    """Every planned simulation, in chunks of ``--chunk`` per (world, size), parallel within a chunk.

    Sizes run smallest first and, within a size, chunks go round-robin over
    the worlds (the first chunk of every world, then the second, ...), so a run
    cut short has measured every world at the demo's size. With
    ``--raw``, each finished chunk is appended to that CSV at once and
    simulations already there are not run again (a rerun resumes).
    """
    done = pd.read_csv(args.raw) if args.raw and args.raw.exists() else pd.DataFrame()
    have = set(zip(done["world"], done["n"], done["sim"], strict=True)) if len(done) else set()
    frames = [done] if len(done) else []
    if args.report_only:
        if not len(done):
            raise SystemExit(
                f"--report-only needs the results of an earlier run in --raw (got {args.raw})"
            )
        return done
    per: dict[tuple[str, int], list[tuple[WorldSpec, int, int]]] = {}
    for spec, n, i in plan(args):
        if (spec.name, n, i) not in have:
            per.setdefault((spec.name, n), []).append((spec, n, i))
    # smaller sizes first; within a size, round-robin over the worlds
    chunks = sorted(
        ((key, j, items[j * args.chunk : (j + 1) * args.chunk])
         for key, items in per.items() for j in range((len(items) + args.chunk - 1) // args.chunk)),
        key=lambda c: (c[0][1], c[1]),
    )  # fmt: skip
    for (name, n), _, items in chunks:
        t0 = time.perf_counter()
        out = Parallel(n_jobs=args.jobs, batch_size=1)(
            delayed(run_blind)(spec, n, i, s)
            if spec.kind == "blind"
            else delayed(run_model)(spec, n, i, s, spec.null or i < args.correlation_sims)
            for spec, n, i in items
        )
        df = pd.DataFrame(out, columns=RAW_COLUMNS[:-1])
        df["seconds"] = (time.perf_counter() - t0) / len(items)
        print(f"{name}, n={n}: simulations {items[0][2]}..{items[-1][2]}, {df['seconds'].iloc[0]:.1f} s "
              "each (wall / simulations)", file=sys.stderr, flush=True)  # fmt: skip
        if args.raw:
            args.raw.parent.mkdir(parents=True, exist_ok=True)
            append_raw(args.raw, df)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rate_rows(
    allres: pd.DataFrame, s: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """The blind and the model simulations apart, and every rate row of both."""
    is_blind = (
        allres["state"].notna() if "state" in allres else pd.Series(False, index=allres.index)
    )
    bdf, mdf = allres[is_blind], allres[~is_blind]
    rows = (blind_rows(bdf, s) if len(bdf) else []) + (model_rows(mdf, s) if len(mdf) else [])
    return bdf, mdf, rows


README_BLOCK = re.compile(
    r"(<!-- calibration:demo -->\n)(?P<body>.*?)(<!-- /calibration:demo -->)", re.S
)


def readme_block(allres: pd.DataFrame, s: Settings) -> str:
    """What the README shows of a run: the demo-size table and one line on the larger sizes.

    Written into the README by ``--readme`` and compared with it by the test suite
    (tests/unit/test_bench_calibration.py), so the README's rates are always a run's.
    """
    bdf, _, rows = rate_rows(allres, s)
    demo = [r for r in rows if r["n"] == DEMO_N]
    fp = [r for r in demo if r["kind"] == FALSE_POSITIVE]
    worst = max(fp, key=lambda r: r["rate"]) if fp else None
    lines = [f"At the demo's size ({DEMO_N} items):", "", markdown(demo), ""]
    if worst is not None:
        lines.append(
            f"Largest false-positive rate at this size: {worst['rate']:.3f} {worst['95% MC CI']} "
            f"({worst['world']}, {worst['verdict']}; nominal {s.verdicts.alpha:g}); rows whose whole "
            f"interval lies above nominal: {sum(r['ci_lo'] > s.verdicts.alpha for r in fp)}."
        )
    large = [r for r in rows if r["n"] > DEMO_N and r["kind"] == POWER]
    if large:
        by_n = {}
        for r in large:
            by_n.setdefault(r["n"], []).append(r)
        lines.append(
            "Power above the demo's size (few simulations each, power only): "
            + "; ".join(
                f"n = {n}: "
                + ", ".join(
                    f"{r['world']} ({r['verdict']}) {r['rate']:.2f} of {r['sims']}" for r in rs
                )
                for n, rs in sorted(by_n.items())
            )
            + "."
        )
    if len(bdf):
        med = bdf.groupby("n")["detectable_auc"].median()
        lines.append(
            "Median smallest detectable blind AUC (80% power): "
            + ", ".join(f"{v:.2f} at {n} items" for n, v in med.items())
            + "."
        )
    return "\n".join(lines) + "\n"


def write_readme(path: Path, block: str) -> None:
    text = path.read_text()
    if not README_BLOCK.search(text):
        raise SystemExit(
            f"{path}: no <!-- calibration:demo --> ... <!-- /calibration:demo --> block to fill"
        )
    path.write_text(README_BLOCK.sub(lambda m: m.group(1) + block + m.group(3), text, count=1))


def run(args: argparse.Namespace) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    s = settings_from(args)
    t0 = time.perf_counter()
    allres = simulate_all(args, s)
    wall = time.perf_counter() - t0
    bdf, mdf, rows = rate_rows(allres, s)
    todo = list(zip(allres["world"], allres["n"], strict=True))
    b = s.blind
    sizes = sorted({n for _, n in todo})
    lines = [
        "# Calibration of the verdicts on simulated worlds",
        "",
        (
            f"{len(todo)} simulations read from {args.raw.name} ({allres['seconds'].sum():.0f} s of "
            f"wall time when they ran); seed {args.seed}."
            if args.report_only
            else f"{len(todo)} simulations ({allres['seconds'].sum():.0f} s of wall time at {args.jobs} "
            f"worker(s), {wall:.0f} s in this run); seed {args.seed}."
        ),
        f"Blind CV: {b.folds} folds, classifiers {b.classifiers} (trees on {b.gbt_groups}, "
        f"{b.gbt.max_iter} rounds), groups per world as in lalm_audit.simulate, "
        f"{b.permutation_control.shuffles} label shuffles per simulation; bootstrap {s.evaluation.bootstrap}.",
        f"Aggregated attack: {s.agg_folds}-fold CV, {s.verdicts.aggregate_shuffles} label shuffles; "
        f"confound adjustment on every simulation of a null model world (its false-positive rate) and "
        f"on the first {args.correlation_sims} of each other model world.",
        f"Verdicts: alpha {s.verdicts.alpha}, margin {s.verdicts.margin} (clean: every check's AUC below "
        f"{0.5 + s.verdicts.margin:g} with {1 - s.verdicts.alpha:.0%} confidence).",
        f"Planned simulations per world at n = {DEMO_N}: {args.null_sims} (null worlds; "
        f"{args.slow_sims} for the slow text world), {args.power_sims} (shifted worlds)"
        + (
            f"; at n = {', '.join(str(n) for n in sizes if n > DEMO_N)}: {args.large_sims} per shifted "
            "world (subsampled, power only: each costs several times more)"
            if any(n > DEMO_N for n in sizes)
            else ""
        )
        + ". The sims column is what ran.",
        "CPU seconds per simulation (mean): "
        + "; ".join(
            f"{w} n={n}: {g['cpu_s'].mean():.1f}"
            for (w, n), g in allres.groupby(["world", "n"], sort=False)
        )
        + ".",
        "",
        markdown(rows),
        "",
    ]
    if len(bdf):
        lines += ["Blind verdicts in detail:", "", detectable_table(bdf), ""]
    fp = [r for r in rows if r["kind"] == FALSE_POSITIVE]
    above = [r for r in fp if r["ci_lo"] > s.verdicts.alpha]
    lines.append(
        f"False-positive rows: {len(fp)}; above nominal (whole 95% MC interval above alpha): "
        + (
            ", ".join(f"{r['world']} / {r['verdict']} / n={r['n']}" for r in above)
            if above
            else "none"
        )
        + "."
    )
    return "\n".join(lines) + "\n", bdf, mdf


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report, bdf, mdf = run(args)
    sys.stdout.write(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    if args.readme:
        write_readme(args.readme, readme_block(pd.concat([bdf, mdf]), settings_from(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
