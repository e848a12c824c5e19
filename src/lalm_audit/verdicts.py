"""Every verdict lalm-audit prints, each with one rule, in one place.

A verdict is a word an auditor acts on, so each one here has a stated rule, a
false-positive rate bounded by ``verdicts.alpha`` (measured by
``benchmarks/bench_calibration.py``) and, where the data cannot decide, a
third state that says so instead of guessing. Every stage, table, figure and
the README take their words from these functions.

**Blind shift** (:func:`shift_verdict`; the blind stage on a dataset, the
clean-split stage on a retained subset). Inputs: the out-of-fold AUC of every
blind check (feature group x classifier) and the same CV refit on label
shuffles (the permutation null: it includes the refit variance that a
bootstrap of fixed out-of-fold scores ignores).

- *shifted*: the family-wise permutation test rejects "no shift": the largest
  AUC over all checks exceeds the largest AUC of the shuffled refits often
  enough, p = (1 + #{shuffles with max >= observed max}) / (1 + shuffles)
  <= alpha. Taking the maximum over checks handles their multiplicity
  (Westfall-Young); the p-value is exact for any number of shuffles.
- *clean*: equivalence (an intersection-union test): every check's AUC,
  corrected for the CV's own offset under the null (the mean shuffled AUC:
  cross-validation reads slightly below 0.5 on data without signal), is below
  ``0.5 + margin`` with confidence 1 - alpha, using the check's null standard
  deviation and a t quantile for the finite number of shuffles. Each check is
  tested at level alpha; "clean" needs all of them, which keeps the family at
  alpha without a correction.
- *inconclusive*: neither: no shift detected, but too few items to certify one
  below the margin. The sentence gives the smallest shift this size detects
  (power ``verdicts.power``) and roughly how many items would certify.

What the number cannot show: the margin is on the AUC a classifier trained on
this many items reaches (the CV's AUC), not on the population AUC of the best
possible classifier; features the blind groups do not compute are not checked.

**Membership signal of a learned score** (:func:`learned_signal_verdict`; the
aggregated attack): the same permutation logic for one cross-validated score.
A far-below-chance AUC (CV anti-learning on noise) is never a signal.

**Correlation with blind artifacts** (:func:`correlation_verdict`): reads the
raw AUC, the confound-adjusted AUC and the gain test together, and says *not
identifiable* where the data cannot separate membership from shift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lalm_audit.evaluation import holm

SHIFTED, CLEAN, INCONCLUSIVE = "shifted", "clean", "inconclusive"
STATES = (SHIFTED, CLEAN, INCONCLUSIVE)


def permutation_p(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value, (1 + #{null >= observed}) / (1 + B): exact, never 0."""
    null = np.asarray(null, dtype=float)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size))


@dataclass(frozen=True)
class ShiftVerdict:
    """The blind verdict of one dataset or split (see the module docstring for the rule)."""

    state: str
    p_value: float
    worst: str
    auc: float
    auc_ucb: float
    margin: float
    alpha: float
    power: float
    detectable_auc: float
    items_to_certify: int
    checks: int
    shuffles: int
    n_members: int
    n_nonmembers: int
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_names(df: pd.DataFrame) -> pd.Series:
    return df["group"].astype(str) + "/" + df["classifier"].astype(str)


def shift_verdict(
    metrics: pd.DataFrame, null: pd.DataFrame, cfg: Any, *, what: str = "members and non-members"
) -> ShiftVerdict:
    """Shifted / clean / inconclusive from the blind checks and their permutation null.

    ``metrics``: one row per check with ``group``, ``classifier``, ``auc``,
    ``n_members``, ``n_nonmembers`` (rows with ``control != 'blind'`` are
    ignored); ``null``: ``run``, ``group``, ``classifier``, ``auc`` of the
    label-shuffled refits (every check in every run). ``cfg``: the
    ``verdicts`` config (``alpha``, ``margin``, ``power``).
    """
    m = metrics[metrics["control"] == "blind"] if "control" in metrics else metrics
    if not len(m):
        raise ValueError("a shift verdict needs at least one blind check")
    obs = pd.Series(m["auc"].to_numpy(float), index=_check_names(m))
    n1, n0 = int(m["n_members"].iloc[0]), int(m["n_nonmembers"].iloc[0])
    alpha, margin, power = float(cfg.alpha), float(cfg.margin), float(cfg.power)
    null = null.assign(check=_check_names(null))
    wide = null.pivot_table(index="run", columns="check", values="auc", aggfunc="first")
    missing = sorted(set(obs.index) - set(wide.columns))
    if missing or wide.shape[0] < 2:
        raise ValueError(
            f"the permutation null must refit every check at least twice (missing: {missing}, "
            f"runs: {wide.shape[0]}); set blind.permutation_control.enabled and shuffles >= 2"
        )
    wide = wide[list(obs.index)].dropna()
    b = int(wide.shape[0])
    p = permutation_p(float(obs.max()), wide.max(axis=1).to_numpy())
    mean0, sd0 = wide.mean(axis=0), wide.std(axis=0, ddof=1).clip(lower=1e-6)
    t = float(stats.t.ppf(1 - alpha, df=b - 1))
    ucb = (0.5 + (obs - mean0) + t * sd0).clip(upper=1.0)
    worst = str(obs.idxmax())
    z_pow = float(stats.norm.ppf(power))
    sd_typ = float(sd0.median())
    # the family test detects a check whose AUC clears the null's upper quantile of the max;
    # with power `power` when its own spread puts it there that often
    q_max = float(np.quantile(wide.max(axis=1).to_numpy() - float(mean0.mean()), 1 - alpha))
    detectable = min(1.0, 0.5 + q_max + z_pow * sd_typ)
    # the spread of an AUC scales as 1/sqrt(n): items per class that would certify the margin
    # on data without a shift (the UCB of the worst of the checks at its typical null excess)
    need_sd = margin / (t + z_pow + 1.0)
    n_small = min(n1, n0)
    to_certify = math.ceil(n_small * (float(sd0.max()) / need_sd) ** 2)
    clean = bool((ucb < 0.5 + margin).all())
    shifted = p <= alpha and not clean
    state = CLEAN if clean else SHIFTED if shifted else INCONCLUSIVE
    pct = f"{1 - alpha:.0%}"
    det = f"this size ({n1} / {n0} items) detects a shift of AUC {detectable:.2f} with {power:.0%} power"
    if state == SHIFTED:
        sentence = (
            f"shifted: {what} are separable without any model (best check {worst}: AUC "
            f"{obs.max():.3f}; permutation p = {p:.2g} over {b} shuffles, family-wise over "
            f"{len(obs)} checks)"
        )
    elif state == CLEAN:
        sentence = (
            f"clean: every blind check's AUC is below {0.5 + margin:.2f} (0.5 + margin) with {pct} "
            f"confidence (largest upper bound {ucb.max():.3f}, {ucb.idxmax()}); {det}"
        )
        if p <= alpha:
            sentence += f"; a shift below the margin is detectable (p = {p:.2g})"
    else:
        sentence = (
            f"inconclusive: no shift detected (p = {p:.2g} over {b} shuffles), but too few items to "
            f"certify one below AUC {0.5 + margin:.2f} (largest upper bound {ucb.max():.3f}, "
            f"{ucb.idxmax()}); {det}; about {to_certify} items per class would certify the margin"
        )
    return ShiftVerdict(
        state=state, p_value=p, worst=worst, auc=float(obs.max()), auc_ucb=float(ucb.max()),
        margin=margin, alpha=alpha, power=power, detectable_auc=float(detectable),
        items_to_certify=to_certify, checks=len(obs), shuffles=b, n_members=n1,
        n_nonmembers=n0, sentence=sentence,
    )  # fmt: skip


def state_word(state: str) -> str:
    """How tables print a split's blind state."""
    return {SHIFTED: "SHIFTED", CLEAN: "clean", INCONCLUSIVE: "inconclusive"}.get(state, str(state))


# --------------------------------------------------------------------------- learned scores (the aggregate)


@dataclass(frozen=True)
class SignalVerdict:
    state: str  # "signal" / "no signal"
    p_value: float
    auc: float
    null_mean: float
    null_sd: float
    shuffles: int
    sentence: str


def learned_signal_verdict(auc: float, null_aucs: np.ndarray, cfg: Any) -> SignalVerdict:
    """Membership signal of a cross-validated score: permutation p of its AUC against label-shuffled refits.

    One-sided: an AUC far below chance (a CV fit to noise anti-learns) is never a signal.
    """
    null = np.asarray(null_aucs, dtype=float)
    p = permutation_p(auc, null)
    sig = p <= cfg.alpha
    mean0, sd0 = float(null.mean()), float(null.std(ddof=1)) if null.size > 1 else float("nan")
    txt = (
        f"AUC {auc:.3f}, permutation p = {p:.2g} over {null.size} label-shuffled refits "
        f"(their AUC {mean0:.3f} +- {sd0:.3f})"
    )
    return SignalVerdict(
        "signal" if sig else "no signal", p, float(auc), mean0, sd0, int(null.size),
        ("above chance: " if sig else "no signal: ") + txt,
    )  # fmt: skip


# --------------------------------------------------------------------------- correlation with blind artifacts

SPURIOUS = "SPURIOUS"
NOT_IDENTIFIABLE = "NOT IDENTIFIABLE"
BEYOND = "membership signal beyond the blind artifacts"


def correlation_verdict(r: Mapping[str, Any], alpha: float = 0.05) -> str:
    """What an indicator's signal is, from its raw AUC, its confound-adjusted AUC and the gain test.

    Rule (``r``: a row of the correlation stage's adjusted table):

    - raw AUC CI contains 0.5 (or, for a learned score, its permutation p > alpha): *no signal*;
      entirely below 0.5: *below chance* (higher = member: not a membership signal);
    - on a split the blind baseline calls *shifted*: *SPURIOUS* when neither the adjusted AUC
      (CI above 0.5) nor the gain of blind + score over blind alone (p <= alpha) shows anything
      beyond the artifacts, otherwise *NOT IDENTIFIABLE*: something beyond what the blind features
      explain, but on a shifted split it cannot be told from a shift the features miss;
    - otherwise: *membership signal beyond the blind artifacts* when both the adjusted AUC and the
      gain say so, *SPURIOUS* when neither does, *NOT IDENTIFIABLE* when they disagree.
    """
    corr = r.get("pearson_r")
    rtxt = f"; r = {corr:+.2f} with the blind logit" if corr is not None and pd.notna(corr) else ""
    p_perm = r.get("p_perm")
    if p_perm is not None and pd.notna(p_perm):
        raw_sig, below = p_perm <= alpha, False
        if not raw_sig:
            return f"no signal (permutation p = {p_perm:.2g}{rtxt})"
    else:
        raw_sig, below = r["auc_lo"] > 0.5, r["auc_hi"] < 0.5
        if below:
            return f"below chance: not a membership signal (AUC CI below 0.5{rtxt})"
        if not raw_sig:
            return f"no signal (AUC CI contains 0.5{rtxt})"
    if pd.isna(r.get("adjusted_auc")):
        return f"signal above chance (not adjusted){rtxt}"
    adj_sig = bool(r["adjusted_lo"] > 0.5)
    gain_p = r.get("gain_p")
    gain_sig = bool(pd.notna(gain_p) and gain_p <= alpha and r.get("gain", 0) > 0)
    evidence = (
        f"adjusted AUC {r['adjusted_auc']:.3f} [{r['adjusted_lo']:.3f}, {r['adjusted_hi']:.3f}], "
        f"gain p = {gain_p:.2g}{rtxt}"
        if pd.notna(gain_p)
        else f"adjusted AUC {r['adjusted_auc']:.3f}{rtxt}"
    )
    if not adj_sig and not gain_sig:
        return f"{SPURIOUS}: above chance, explained by the blind artifacts ({evidence})"
    if r.get("confounded"):
        return (
            f"{NOT_IDENTIFIABLE}: signal beyond what the blind features explain, but the blind baseline "
            f"separates this split, so it cannot be told from a shift the features miss: audit a clean "
            f"split ({evidence})"
        )
    if adj_sig and gain_sig:
        return f"{BEYOND} ({evidence})"
    return (
        f"{NOT_IDENTIFIABLE}: the adjusted AUC and the gain test disagree about what the blind "
        f"artifacts explain ({evidence})"
    )


def is_membership_signal(verdict: str) -> bool:
    return verdict.startswith(BEYOND)


# --------------------------------------------------------------------------- the audit as a whole


def audit_wide_line(p_values: Any, signals: Any, alpha: float, shuffles: int) -> str:
    """What the audit's aggregate tests say together: each verdict is at level ``alpha`` on its own.

    Every (model, dataset, response, split) row gets its own permutation verdict, so an audit
    of N rows where no model saw any member still reads "signal" about ``N * alpha`` times.
    This line counts them, states that expectation, and gives the Holm adjustment over the
    audit's tests (:func:`lalm_audit.evaluation.holm`, step-down): the family-wise reading of
    the same p-values.
    A permutation p is never below ``1 / (shuffles + 1)``, so Holm can keep a row only when
    ``N / (shuffles + 1) <= alpha``; the line says how many shuffles that needs.
    """
    p = np.asarray(p_values, dtype=float)
    sig = np.asarray(signals, dtype=bool)
    ok = ~np.isnan(p)
    n = int(ok.sum())
    if n == 0:
        return "No aggregate permutation test in this audit."
    kept = int((holm(p[ok]) <= alpha).sum())
    line = (
        f"Audit-wide: {int(sig[ok].sum())} of {n} aggregate tests read 'signal' at alpha = {alpha:g}, "
        f"each on its own; with no membership signal anywhere about {n * alpha:.1f} would by chance. "
        f"Holm over the audit's {n} tests keeps {kept}"
    )
    need = math.ceil(n / alpha) - 1
    if shuffles < need:
        line += (
            f" (with {shuffles} shuffles no p-value can fall below {1 / (shuffles + 1):.2g}: "
            f"a family-wise reading needs verdicts.aggregate_shuffles >= {need})"
        )
    return line + "."


NOT_CHECKED = "no blind-baseline check was run for this evaluation"


def status_word(r: Any) -> str:
    """The blind-baseline word of an MIA headline row (``mia.mark_confounded``): "not checked",
    "CONFOUNDED" (the split's blind baseline separates), "clean" (certified within the margin),
    "uncertified" (inconclusive) or "at chance"."""
    if (
        "confounded" not in r
        or pd.isna(r.get("confounded"))
        or r.get("blind_verdict") == NOT_CHECKED
    ):
        return "not checked"
    if r["confounded"]:
        return "CONFOUNDED"
    state = str(r.get("blind_verdict", "")).split(":", 1)[0]
    return {"clean": "clean", "inconclusive": "uncertified"}.get(state, "at chance")
