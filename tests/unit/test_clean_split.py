"""The clean-split stage on constructed feature sets with a known contamination."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lalm_audit.blind as blind_mod
from lalm_audit.blind import cross_validate
from lalm_audit.config import parse_config
from lalm_audit.features import feature_set
from lalm_audit.splits import clean_split

CFG = parse_config({
    "datasets": {"toy": {"loader": "table", "path": "x"}},
    "evaluation": {"bootstrap": 200},
    "blind": {"folds": 5, "gbt": {"max_iter": 20, "max_bins": 32}, "permutation_control": {"enabled": False},
              "top_features": 1},
    "splits": {"min_items_per_class": 10, "max_rounds": 3},
})  # fmt: skip


def world(n: int = 60, replaced: float = 0.3, shift_all: bool = False, seed: int = 0):
    """Members and core non-members alike; `replaced` of the non-members (or all) noisier and at 8 kHz."""
    rng = np.random.default_rng(seed)
    n_rep = n if shift_all else round(replaced * n)
    y = np.repeat([1, 0], n)
    role = np.array(["core"] * (2 * n - n_rep) + ["replaced"] * n_rep)
    ids = [f"i{k:03d}" for k in range(2 * n)]
    order = rng.permutation(2 * n)  # ids carry no label
    ids = [ids[k] for k in order]
    shifted = (
        role == "replaced"
    )  # like the demo's group-B items: noisy and stored at a telephone rate
    snr = rng.normal(40, 2, size=2 * n) - 30.0 * shifted
    rate = np.where(shifted, 8000.0, 16000.0)
    meta = pd.DataFrame(
        {
            "item_id": ids,
            "feature_error": None,
            "snr": snr,
            "rate": rate,
            "dur": rng.normal(size=2 * n),
        }
    )
    noise = pd.DataFrame(
        {
            "item_id": ids,
            "feature_error": None,
            **{f"n{k}": rng.normal(size=2 * n) for k in range(3)},
        }
    )
    fs = feature_set(
        pd.DataFrame({"item_id": ids, "label": y}),
        {"metadata": meta, "spectral": noise},
        dataset="toy",
    )
    return fs, pd.Series(role, index=ids)


@pytest.mark.parametrize("method", ["filter", "match"])
def test_contamination_is_removed_and_the_core_kept(method):
    fs, role = world()
    blind = cross_validate(fs, CFG.blind, CFG.evaluation, seed=CFG.seed)
    cs = clean_split(fs, blind, CFG, method, dataset="toy")
    kept = set(cs.kept["item_id"])
    core_kept = role[role == "core"].index.isin(kept).mean()
    replaced_removed = 1 - role[role == "replaced"].index.isin(kept).mean()
    assert replaced_removed >= 0.9 and core_kept >= 0.7, (replaced_removed, core_kept)
    # not detectably shifted; at 100 retained items the margin cannot be certified: inconclusive
    v = cs.verification.verdict
    assert cs.at_chance and v.state == "inconclusive" and cs.verdict.startswith("inconclusive"), (
        cs.verdict
    )
    assert v.p_value >= 0.2, v  # far from the 0.05 a shift would need
    assert (cs.kept["label"] == 1).sum() == (cs.kept["label"] == 0).sum()
    s = cs.summary
    assert (
        s["members_before"] == s["nonmembers_before"] == 60 and s["members_after"] == len(kept) // 2
    )


@pytest.mark.parametrize("method", ["filter", "match"])
def test_a_fully_shifted_dataset_is_declared_not_auditable(method):
    # matching finds no pair within the caliper here: it keeps the closest pairs of the minimum size
    fs, _ = world(shift_all=True, seed=1)
    blind = cross_validate(fs, CFG.blind, CFG.evaluation, seed=CFG.seed)
    cs = clean_split(fs, blind, CFG, method, dataset="toy")
    assert not cs.at_chance
    assert cs.verdict.startswith("not auditable free of distribution shift: best retained subset")
    assert (
        min(cs.summary["members_after"], cs.summary["nonmembers_after"]) >= 15
    )  # the configured minimum (25% of 60)


def test_verification_never_uses_the_predictions_that_chose_the_items(monkeypatch):
    fs, _ = world(seed=2)
    blind = cross_validate(fs, CFG.blind, CFG.evaluation, seed=CFG.seed)
    calls = []
    real = blind_mod.cross_validate

    def spy(fs_, *a, **k):
        calls.append((len(fs_), k["seed"]))
        return real(fs_, *a, **k)

    monkeypatch.setattr(blind_mod, "cross_validate", spy)
    cs = clean_split(fs, blind, CFG, "filter", dataset="toy")
    rounds = cs.rounds
    assert len(calls) == len(rounds)
    for (n_items, seed), (_, r) in zip(calls, rounds.iterrows(), strict=True):
        assert n_items == r["n_members"] + r["n_nonmembers"]  # a CV of the retained items only ...
        assert (
            seed == r["verified_with_seed"] != r["selected_with_seed"]
        )  # ... with a seed that did not select them
    assert (
        rounds["selected_with_seed"].iloc[0] == CFG.seed
    )  # round 0 selects with the blind stage's own CV
    assert cs.verification.seed not in set(rounds["selected_with_seed"])


def test_same_seed_same_split():
    fs, _ = world(seed=3)
    blind = cross_validate(fs, CFG.blind, CFG.evaluation, seed=CFG.seed)
    a = clean_split(fs, blind, CFG, "match")
    b = clean_split(fs, blind, CFG, "match")
    assert a.kept.equals(b.kept) and a.verdict == b.verdict
