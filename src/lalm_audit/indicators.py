"""Membership indicators, computed from stored per-token statistics only (no model).

Each indicator is one small function of a slice's per-position arrays (see
``schemas.TOKEN_STAT_COLUMNS``) registered with :func:`indicator`; families
with parameters (K%, Renyi order) expand into one named indicator per value,
e.g. ``min_k_20`` or ``renyi_2_max_k_10``. Sign convention (``metrics.md``):
every score is **higher = more likely a member**; entropies are negated.

Target-based indicators (they read the log-probability of the actual next
token) are computed on text slices only; target-free ones (entropies,
probability gap) on every slice, ``audio`` included.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

Stats = Mapping[str, np.ndarray]  # per-position arrays of one slice (TOKEN_STAT_COLUMNS) + "text"

TEXT_SLICES = ("prompt", "response", "prompt+response")
ALL_SLICES = ("audio", *TEXT_SLICES)
RENYI_ORDERS = {"05": "renyi_05", "1": "renyi_1", "2": "renyi_2", "inf": "renyi_inf"}
SIGMA_FLOOR = 1e-6  # Min-K%++ divides by sigma_t; a near-deterministic position has sigma ~ 0


@dataclass(frozen=True)
class Indicator:
    """A named score of one slice; ``fn(stats) -> float``."""

    name: str
    family: str
    fn: Callable[[Stats], float]
    target_based: bool
    params: dict[str, Any] = field(default_factory=dict)

    def valid_on(self, slice_name: str) -> bool:
        return slice_name in TEXT_SLICES if self.target_based else True


def n_extreme(k: float, t: int) -> int:
    """How many of T values the "lowest K%" takes: max(1, floor(K/100 * T))."""
    return max(1, int(np.floor(k / 100.0 * t)))


def lowest_mean(x: np.ndarray, k: float) -> float:
    return float(np.mean(np.partition(x, n_extreme(k, x.size) - 1)[: n_extreme(k, x.size)]))


def highest_mean(x: np.ndarray, k: float) -> float:
    return -lowest_mean(-x, k)


# --------------------------------------------------------------------------- the registry

FAMILIES: dict[str, Callable[..., list[Indicator]]] = {}


def family(name: str) -> Callable[[Callable[..., list[Indicator]]], Callable[..., list[Indicator]]]:
    """Register a family: a function (k_grid) -> indicators. A new indicator = one function + a test."""

    def deco(fn: Callable[..., list[Indicator]]) -> Callable[..., list[Indicator]]:
        FAMILIES[name] = fn
        return fn

    return deco


@family("loss")
def _loss(k_grid: Iterable[float]) -> list[Indicator]:
    # mean log-likelihood of the slice = -log perplexity
    return [Indicator("loss", "loss", lambda s: float(np.mean(s["logp"])), True)]


def zlib_bytes(text: str) -> int:
    return len(zlib.compress(text.encode("utf-8")))


@family("zlib")
def _zlib(k_grid: Iterable[float]) -> list[Indicator]:
    def score(s: Stats) -> float:
        return float(np.mean(s["logp"])) / max(1, zlib_bytes(str(s["text"])))

    return [Indicator("zlib", "zlib", score, True)]


@family("min_k")
def _min_k(k_grid: Iterable[float]) -> list[Indicator]:
    return [
        Indicator(f"min_k_{k:g}", "min_k", lambda s, k=k: lowest_mean(s["logp"], k), True, {"k": k})
        for k in k_grid
    ]


@family("max_k")
def _max_k(k_grid: Iterable[float]) -> list[Indicator]:
    return [
        Indicator(
            f"max_k_{k:g}", "max_k", lambda s, k=k: highest_mean(s["logp"], k), True, {"k": k}
        )
        for k in k_grid
    ]


def min_k_pp_z(s: Stats) -> np.ndarray:
    """(l_t - mu_t) / sigma_t, the Min-K%++ per-token score."""
    return (s["logp"] - s["mink_mu"]) / np.maximum(s["mink_sigma"], SIGMA_FLOOR)


@family("min_k_pp")
def _min_k_pp(k_grid: Iterable[float]) -> list[Indicator]:
    return [
        Indicator(
            f"min_k_pp_{k:g}",
            "min_k_pp",
            lambda s, k=k: lowest_mean(min_k_pp_z(s), k),
            True,
            {"k": k},
        )
        for k in k_grid
    ]


def _renyi_extreme(col: str, k: float, largest: bool) -> Callable[[Stats], float]:
    # K = 0: the single extreme position (n_extreme gives 1); K = 100: the mean of all.
    if largest:
        return lambda s: -highest_mean(s[col], k)
    return lambda s: -lowest_mean(s[col], k)


@family("renyi")
def _renyi(k_grid: Iterable[float]) -> list[Indicator]:
    return [
        Indicator(f"renyi_{a}_{side}_k_{k:g}", f"renyi_{side}_k", _renyi_extreme(col, k, side == "max"), False,
                  {"alpha": a, "k": k})
        for a, col in RENYI_ORDERS.items()
        for k in k_grid
        for side in ("max", "min")
    ]  # fmt: skip


@family("mod_entropy")
def _mod_entropy(k_grid: Iterable[float]) -> list[Indicator]:
    # modified entropy and modified Renyi read p(y_t): target-based
    return [
        Indicator("mod_entropy", "mod_entropy", lambda s: -float(np.mean(s["mod_entropy"])), True),
        Indicator(
            "mod_renyi_05",
            "mod_renyi",
            lambda s: -float(np.mean(s["mod_renyi_05"])),
            True,
            {"alpha": "05"},
        ),
        Indicator(
            "mod_renyi_2",
            "mod_renyi",
            lambda s: -float(np.mean(s["mod_renyi_2"])),
            True,
            {"alpha": "2"},
        ),
    ]


@family("max_prob_gap")
def _max_prob_gap(k_grid: Iterable[float]) -> list[Indicator]:
    return [
        Indicator("max_prob_gap", "max_prob_gap", lambda s: float(np.mean(s["prob_gap"])), False)
    ]


def build_indicators(
    families: Iterable[str] | None = None,
    k_grid: Iterable[float] = (0, 5, 10, 20, 30, 40, 50, 60, 100),
) -> list[Indicator]:
    """Expand the registered families (all by default) over the K grid."""
    names = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown indicator families {unknown}; known: {sorted(FAMILIES)}")
    k = sorted({float(x) for x in k_grid})
    return [ind for f in names for ind in FAMILIES[f](k)]


# --------------------------------------------------------------------------- from stored statistics


def slice_stats(
    rows: pd.DataFrame, slice_name: str, columns: Iterable[str]
) -> dict[str, Any] | None:
    """The arrays of one item's slice; ``prompt+response`` concatenates the two slices in order."""
    parts = slice_name.split("+")
    picked = [rows.loc[p] for p in parts if p in rows.index]
    if len(picked) != len(parts) or sum(int(r["n_tokens"]) for r in picked) == 0:
        return None
    out: dict[str, Any] = {
        c: np.concatenate([np.asarray(r[c], dtype=np.float64) for r in picked]) for c in columns
    }
    out["text"] = "".join(str(r["text"]) for r in picked)
    return out


def compute_scores(
    token_stats: pd.DataFrame,
    indicators: list[Indicator],
    slices: Iterable[str] = ALL_SLICES,
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long table (item_id, slice, indicator, score) from a TOKEN_STATS table.

    ``reference``: the same items' TOKEN_STATS under a reference model; adds
    ``ref_loss_diff`` = loss(target) - loss(reference) on text slices.
    An item whose slice is empty gets no row for that slice (recorded by the
    caller as a missing score, never imputed).
    """
    from lalm_audit.schemas import TOKEN_STAT_COLUMNS

    cols = list(TOKEN_STAT_COLUMNS)
    slices = list(slices)
    records: list[tuple[str, str, str, float]] = []
    ref_groups = (
        dict(tuple(reference.set_index("slice").groupby("item_id")))
        if reference is not None
        else {}
    )
    for item_id, rows in token_stats.set_index("slice").groupby("item_id", sort=True):
        for sl in slices:
            st = slice_stats(rows, sl, cols)
            if st is None:
                continue
            for ind in indicators:
                if ind.valid_on(sl):
                    records.append((item_id, sl, ind.name, ind.fn(st)))
            if sl in TEXT_SLICES and item_id in ref_groups:
                ref = slice_stats(ref_groups[item_id], sl, ["logp"])
                if ref is not None:
                    records.append(
                        (
                            item_id,
                            sl,
                            "ref_loss_diff",
                            float(np.mean(st["logp"]) - np.mean(ref["logp"])),
                        )
                    )
    return pd.DataFrame(records, columns=["item_id", "slice", "indicator", "score"])
