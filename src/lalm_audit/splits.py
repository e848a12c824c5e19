"""Clean splits: member/non-member subsets on which a blind classifier is at chance.

Two selection methods work from the blind classifier's out-of-fold
predictions (one row per item: ``item_id``, ``label``, ``prob``):

- :func:`filter_confident` (the paper's way): repeatedly drop the items the
  classifier places most confidently on their own side (members it is surest
  are members, non-members it is surest are not), until what is left is at
  chance, then balance the classes by random subsampling;
- :func:`match_nearest` (the causal-inference way): 1:1 nearest-neighbour
  matching of members to non-members on the blind logit, without replacement,
  within a caliper (a fraction of the logit's standard deviation).

Neither grades its own homework: the predictions that chose the items must not
be the ones that certify them. :func:`verify` (in the stage module) re-runs the
whole blind cross-validation with a new seed on the retained items only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lalm_audit import verdicts
from lalm_audit.evaluation import evaluate
from lalm_audit.layout import RESULTS, Layout

log = logging.getLogger(__name__)


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
    gap_sd: float = 0.0,
    n_resamples: int = 500,
    seed: int = 0,
) -> Selection:
    """Drop the items placed most confidently on their own side, then balance the classes at random.

    Confidence on its own side is the blind logit for a member and minus the
    logit for a non-member; each step drops the ``step_fraction`` most
    confident items of the dataset, whichever class they belong to, until
    the retained items are at chance (:func:`chance_check`). The larger class
    is then subsampled at random (seeded) to the size of the smaller one.

    Dropping members and non-members in lockstep would remove, for every
    contaminating non-member, a member chosen by noise in the classifier's
    scores; a fresh classifier then finds the reverse shift that this
    selection created. Random balancing adds no such bias.

    Stops (``reached_chance=False``) when a class would fall below ``min_per_class``.
    """
    df = oof[["item_id", "label", "prob"]].copy()
    lg = logit(df["prob"].to_numpy())
    df["confidence"] = np.where(df["label"].to_numpy() == 1, lg, -lg)
    ranked = df.sort_values(["confidence", "item_id"], ascending=[False, True]).reset_index(
        drop=True
    )
    step = max(1, round(step_fraction * len(df)))
    trace, dropped = [], 0
    while True:
        kept = ranked.iloc[dropped:]
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
                "dropped": dropped,
                "n_members": int((y == 1).sum()),
                "n_nonmembers": int((y == 0).sum()),
                **stats,
            }
        )
        nxt = ranked.iloc[dropped + step :]["label"].to_numpy()
        if ok or min((nxt == 1).sum(), (nxt == 0).sum()) < min_per_class:
            break
        dropped += step
    return Selection(_balance(kept, seed), pd.DataFrame(trace), bool(ok))


def _balance(kept: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Subsample the larger class at random to the size of the smaller one."""
    rng = np.random.default_rng(seed)
    n = int(kept["label"].value_counts().min())
    parts = []
    for _label, grp in kept.groupby("label", sort=True):
        grp = grp.sort_values("item_id")
        parts.append(
            grp.iloc[np.sort(rng.choice(len(grp), size=n, replace=False))] if len(grp) > n else grp
        )
    return (
        pd.concat(parts)[["item_id", "label", "prob"]].sort_values("item_id").reset_index(drop=True)
    )


def match_nearest(
    oof: pd.DataFrame,
    *,
    caliper_sd: float = 0.2,
    min_per_class: int,
    tail_q: float = 0.05,
    tail_alpha: float = 0.01,
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
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(mem))

    def pair_up(limit: float) -> list[tuple[int, int, float]]:
        free = np.ones(len(non), dtype=bool)
        out: list[tuple[int, int, float]] = []
        for i in order:
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
            if best >= 0 and best_d <= limit:
                free[best] = False
                out.append((i, best, best_d))
        return out

    pairs = pair_up(caliper)
    within_caliper = len(pairs)
    if within_caliper < max(min_per_class, 2):
        # too few pairs within the caliper: keep the closest pairs of the minimum size instead, so the
        # verdict can state how shifted the best subset of that size still is (it cannot be called clean)
        pairs = sorted(pair_up(np.inf), key=lambda t: t[2])[: max(min_per_class, 2)]
    kept = pd.concat([mem.iloc[[p[0] for p in pairs]], non.iloc[[p[1] for p in pairs]]])[
        ["item_id", "label", "prob"]
    ]
    kept = kept.sort_values("item_id").reset_index(drop=True)
    n = len(pairs)
    # pairs within a caliper: the extremes of the two classes are as close as the caliper allows already
    ok, stats = chance_check(kept["label"].to_numpy(), kept["prob"].to_numpy(), tail_q=tail_q, tail_alpha=tail_alpha,
                             gap_sd=np.inf, n_resamples=n_resamples, seed=seed)  # fmt: skip
    ok = ok and within_caliper >= max(min_per_class, 2)
    trace = pd.DataFrame([{"caliper": caliper, "pairs_within_caliper": within_caliper, "n_members": n,
                           "n_nonmembers": n, **stats}])  # fmt: skip
    return Selection(kept, trace, ok)


# --------------------------------------------------------------------------- the stage: select, re-verify, verdict


@dataclass(frozen=True)
class Verification:
    """A fresh blind CV on the retained items: every check, its permutation null, the shift verdict."""

    metrics: (
        pd.DataFrame
    )  # one row per (group, classifier): auc, auc_lo, auc_hi, p_perm, null_sd, ...
    verdict: Any  # lalm_audit.verdicts.ShiftVerdict
    worst: dict[str, float | str]  # the check with the largest AUC
    seed: int

    @property
    def at_chance(self) -> bool:
        """Not detectably shifted (clean or inconclusive)."""
        return self.verdict.state != verdicts.SHIFTED


def verify(fs: Any, cfg: Any, *, seed: int) -> tuple[Verification, Any]:
    """Re-run the whole blind CV (every check, its permutation null, new ``seed``) on ``fs``.

    The verdict is :func:`lalm_audit.verdicts.shift_verdict`: *shifted* when
    the family-wise permutation test finds a shift, *clean* when every check
    is below ``0.5 + verdicts.margin`` with confidence, *inconclusive*
    otherwise.
    """
    from lalm_audit.blind import BLIND, cross_validate

    res = cross_validate(fs, cfg.blind, cfg.evaluation, seed=seed, control=True, explain_top=0)
    m = res.metrics[res.metrics["control"] == BLIND].copy()
    v = res.verdict(cfg.verdicts, what="the retained members and non-members")
    w = m.loc[m["auc"].idxmax()]
    worst = {"group": str(w["group"]), "classifier": str(w["classifier"]), "auc": float(w["auc"]),
             "auc_lo": float(w["auc_lo"]), "auc_hi": float(w["auc_hi"]), "auc_ucb": v.auc_ucb,
             "p_value": v.p_value}  # fmt: skip
    return Verification(m.reset_index(drop=True), v, worst, seed), res


@dataclass(frozen=True)
class CleanSplit:
    method: str
    kept: pd.DataFrame  # item_id, label
    verdict: str
    at_chance: bool
    rounds: pd.DataFrame
    verification: Verification
    summary: dict[str, Any]


def _select(method: str, oof: pd.DataFrame, cfg: Any, min_per_class: int, seed: int) -> Selection:
    s = cfg.splits
    if method == "filter":
        f = s.filter
        return filter_confident(oof, min_per_class=min_per_class, step_fraction=f.step_fraction, tail_q=f.tail_q,
                                tail_alpha=f.tail_alpha, gap_sd=f.gap_sd, n_resamples=cfg.evaluation.bootstrap, seed=seed)  # fmt: skip
    return match_nearest(oof, caliper_sd=s.match.caliper_sd, min_per_class=min_per_class, tail_q=s.filter.tail_q,
                         tail_alpha=s.filter.tail_alpha, n_resamples=cfg.evaluation.bootstrap, seed=seed)  # fmt: skip


def _selection_oof(res: Any, selection: str) -> tuple[pd.DataFrame, str]:
    """Out-of-fold predictions that choose items, and which check they come from."""
    from lalm_audit.blind import BLIND, COMBINED

    m = res.metrics[res.metrics["control"] == BLIND]
    if selection == "combined" and COMBINED in set(m["group"]):
        row = m[(m["group"] == COMBINED) & m["stronger"]].iloc[0]
    else:  # the check that sees the shift best: its predictions place the shifted items most confidently
        row = m.loc[m["auc"].idxmax()]
    group, clf = str(row["group"]), str(row["classifier"])
    return res.scores(group, clf)[["item_id", "label", "prob"]], f"{group}/{clf}"


def clean_split(fs: Any, blind: Any, cfg: Any, method: str, *, dataset: str = "") -> CleanSplit:
    """Select with one set of out-of-fold predictions, certify with another, for up to ``max_rounds``.

    Round r selects items with the predictions of the previous CV (round 0:
    the blind stage's own CV, seed ``cfg.seed``), then re-verifies on the
    retained items with a fresh CV under a new seed. A failed verification's
    predictions choose the next round's items, and a new CV certifies those:
    the predictions that certify a split never chose its items.
    """
    from lalm_audit.blind import derive_seed

    s = cfg.splits
    labels = fs.labels
    min_per_class = max(
        s.min_items_per_class,
        int(np.ceil(s.min_fraction * min((labels == 1).sum(), (labels == 0).sum()))),
    )
    oof, selected_by = _selection_oof(blind, s.selection)
    selection_seed = cfg.seed
    current = fs
    rounds: list[dict[str, Any]] = []
    ver: Verification | None = None
    for r in range(s.max_rounds):
        sel = _select(method, oof, cfg, min_per_class, derive_seed(cfg.seed, "select", method, r))
        current = fs.subset(sel.kept["item_id"].to_numpy(dtype=object))
        verify_seed = derive_seed(cfg.seed, "verify", method, r)
        ver, res = verify(current, cfg, seed=verify_seed)
        y = current.labels
        rounds.append({
            "round": r, "selected_with_seed": selection_seed, "selected_by": selected_by, "verified_with_seed": verify_seed,
            "n_members": int((y == 1).sum()), "n_nonmembers": int((y == 0).sum()),
            "selection_reached_chance": sel.reached_chance, "verified_at_chance": ver.at_chance,
            "verified_state": ver.verdict.state, "verified_p": ver.verdict.p_value,
            **{f"worst_{k}": v for k, v in ver.worst.items()},
        })  # fmt: skip
        log.info("%s %s round %d: kept %d/%d items; re-verified worst check %s/%s AUC %.3f [%.3f, %.3f] -> %s",
                 dataset, method, r, len(current), len(fs), ver.worst["group"], ver.worst["classifier"],
                 ver.worst["auc"], ver.worst["auc_lo"], ver.worst["auc_hi"], ver.verdict.state)  # fmt: skip
        if ver.at_chance:
            break
        if min((y == 1).sum(), (y == 0).sum()) <= min_per_class:
            break  # nothing left to drop
        # the verifier becomes the selector: its check that sees the shift best chooses the next items
        oof, selected_by = _selection_oof(res, "most_separating")
        selection_seed = verify_seed
    assert ver is not None
    w = ver.worst
    v = ver.verdict
    if v.state == verdicts.SHIFTED:
        verdict = (f"not auditable free of distribution shift: best retained subset ({len(current)} items) still has "
                   f"blind AUC {w['auc']:.3f} ({w['group']}/{w['classifier']}, permutation p = {v.p_value:.2g}); "
                   "MIA results on this dataset are confounded")  # fmt: skip
    else:
        verdict = f"{v.sentence} (fresh blind CV on the {len(current)} retained items)"
    y0, y1 = labels, current.labels
    summary = {
        "dataset": dataset, "method": method, "at_chance": ver.at_chance, "state": v.state, "verdict": verdict,
        "verdict_rule": v.as_dict(),
        "members_before": int((y0 == 1).sum()), "nonmembers_before": int((y0 == 0).sum()),
        "members_after": int((y1 == 1).sum()), "nonmembers_after": int((y1 == 0).sum()),
        "min_items_per_class": int(min_per_class), "rounds": len(rounds), "verify_seed": ver.seed,
        "worst_check": w,
    }  # fmt: skip
    kept = (
        current.items[["item_id", "label"]]
        .astype({"label": "int8"})
        .sort_values("item_id")
        .reset_index(drop=True)
    )
    return CleanSplit(method, kept, verdict, ver.at_chance, pd.DataFrame(rounds), ver, summary)


def before_after(blind_metrics: pd.DataFrame, verification: Verification) -> pd.DataFrame:
    """Blind AUC per group (reported classifier before; worst classifier after) for the before/after figure."""
    from lalm_audit.blind import BLIND

    before = blind_metrics[(blind_metrics["control"] == BLIND) & blind_metrics["stronger"]]
    after = verification.metrics.loc[verification.metrics.groupby("group")["auc"].idxmax()]
    cols = ["group", "auc", "auc_lo", "auc_hi"]
    return pd.concat(
        [before[cols].assign(when="before"), after[cols].assign(when="after")], ignore_index=True
    )


def run_splits(cfg: Any, dataset: str, *, results: str | Path = RESULTS) -> list[CleanSplit]:
    """The clean-split stage for one dataset: every configured method, its files, a status table
    (at ``Layout(results).split(dataset, method, ...)`` and ``.split_status(dataset)``)."""
    from lalm_audit import io
    from lalm_audit.blind import BLIND, load_blind
    from lalm_audit.features import load_features
    from lalm_audit.render.mia_figures import before_after_figure
    from lalm_audit.render.style import save
    from lalm_audit.schemas import CLEAN_SPLIT, SPLIT_STATUS

    lay = Layout(str(results))
    fs = load_features(dataset, cfg.features.groups, results=results)
    blind = load_blind(dataset, results)
    prov = io.provenance("splits", cfg, dataset=dataset)
    m = blind.metrics
    full_v = blind.verdict(cfg.verdicts)
    full = m[(m["control"] == BLIND) & (m["group"] == full_v.worst.split("/")[0])
             & (m["classifier"] == full_v.worst.split("/")[1])].iloc[0]  # fmt: skip
    status = [{"split": "full", "at_chance": full_v.state != verdicts.SHIFTED, "state": full_v.state,
               "n_members": int(full["n_members"]), "n_nonmembers": int(full["n_nonmembers"]),
               "blind_auc": float(full["auc"]), "blind_lo": float(full["auc_lo"]), "blind_hi": float(full["auc_hi"]),
               "p_value": full_v.p_value, "auc_ucb": full_v.auc_ucb, "detectable_auc": full_v.detectable_auc,
               "verdict": (f"confounded: {full_v.sentence}" if full_v.state == verdicts.SHIFTED
                           else f"{full_v.sentence} (full dataset)")}]  # fmt: skip
    splits = []
    for method in cfg.splits.methods:
        cs = clean_split(fs, blind, cfg, method, dataset=dataset)
        splits.append(cs)
        io.write_table(
            cs.kept,
            lay.split(dataset, method, ".parquet"),
            schema=CLEAN_SPLIT,
            prov={**prov, "method": method, "verdict": cs.verdict},
        )
        io.write_table(
            cs.verification.metrics,
            lay.split(dataset, method, ".verification.parquet"),
            prov={**prov, "method": method},
        )
        io.write_table(
            cs.rounds,
            lay.split(dataset, method, ".rounds.parquet"),
            prov={**prov, "method": method},
        )
        io.write_json({**cs.summary, "provenance": prov}, lay.split(dataset, method, ".json"))
        save(before_after_figure(before_after(m, cs.verification), title=f"{dataset}: blind AUC before / after '{method}'"),
             lay.split(dataset, method, ".before_after.png"),
             lay.split(dataset, method, ".before_after.pdf"))  # fmt: skip
        w = cs.summary["worst_check"]
        v = cs.verification.verdict
        status.append({"split": method, "at_chance": cs.at_chance, "state": v.state,
                       "n_members": cs.summary["members_after"], "n_nonmembers": cs.summary["nonmembers_after"],
                       "blind_auc": w["auc"], "blind_lo": w["auc_lo"], "blind_hi": w["auc_hi"],
                       "p_value": v.p_value, "auc_ucb": v.auc_ucb, "detectable_auc": v.detectable_auc,
                       "verdict": cs.verdict})  # fmt: skip
        log.info("%s / %s: %s", dataset, method, cs.verdict)
    io.write_table(pd.DataFrame(status), lay.split_status(dataset), schema=SPLIT_STATUS, prov=prov)
    return splits
