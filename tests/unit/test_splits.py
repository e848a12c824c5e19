"""Selection methods on constructed out-of-fold predictions whose answer is known."""

import numpy as np
import pandas as pd

from lalm_audit.splits import filter_confident, match_nearest


def partial_world(n: int = 60, replaced: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """A matched core (probabilities uninformative) plus replaced non-members the classifier spots."""
    rng = np.random.default_rng(seed)
    n_rep = round(replaced * n)
    rows = [
        {"item_id": f"m{i}", "label": 1, "prob": rng.uniform(0.35, 0.75), "role": "core"}
        for i in range(n)
    ]
    rows += [
        {"item_id": f"c{i}", "label": 0, "prob": rng.uniform(0.35, 0.75), "role": "core"}
        for i in range(n - n_rep)
    ]
    rows += [
        {"item_id": f"r{i}", "label": 0, "prob": rng.uniform(0.0, 0.1), "role": "replaced"}
        for i in range(n_rep)
    ]
    return pd.DataFrame(rows)


def grade(sel, world):
    kept = set(sel.kept["item_id"])
    core = world[world["role"] == "core"]
    rep = world[world["role"] == "replaced"]
    return core["item_id"].isin(kept).mean(), 1 - rep["item_id"].isin(kept).mean()


def test_filtering_drops_the_replaced_items_and_keeps_the_core():
    world = partial_world()
    sel = filter_confident(world, min_per_class=10, n_resamples=300)
    core_kept, rep_removed = grade(sel, world)
    assert sel.reached_chance
    assert core_kept >= 0.7 and rep_removed >= 0.9
    k = sel.kept
    assert (k["label"] == 1).sum() == (k["label"] == 0).sum()  # balanced
    assert sel.trace["tail_p_nonmembers"].iloc[0] < 1e-3 and sel.trace["auc_lo"].iloc[-1] <= 0.5


def test_filtering_keeps_everything_when_already_at_chance():
    rng = np.random.default_rng(3)
    world = pd.DataFrame({"item_id": [f"i{k}" for k in range(120)], "label": np.r_[np.ones(60), np.zeros(60)].astype(int),
                          "prob": rng.uniform(size=120)})  # fmt: skip
    sel = filter_confident(world, min_per_class=10, n_resamples=300)
    assert sel.reached_chance and len(sel.kept) >= 108  # at least 90% of an unshifted set is kept


def test_filtering_gives_up_on_a_fully_shifted_dataset():
    rng = np.random.default_rng(4)
    world = pd.DataFrame({"item_id": [f"i{k}" for k in range(120)], "label": np.r_[np.ones(60), np.zeros(60)].astype(int),
                          "prob": np.r_[rng.uniform(0.9, 1.0, 60), rng.uniform(0.0, 0.1, 60)]})  # fmt: skip
    sel = filter_confident(world, min_per_class=20, n_resamples=300)
    assert not sel.reached_chance
    assert min((sel.kept["label"] == 1).sum(), (sel.kept["label"] == 0).sum()) >= 20


def test_matching_pairs_within_the_caliper_and_leaves_replaced_items_out():
    world = partial_world()
    sel = match_nearest(world, caliper_sd=0.2, min_per_class=10, n_resamples=300)
    core_kept, rep_removed = grade(sel, world)
    assert rep_removed >= 0.9 and core_kept >= 0.7
    assert (sel.kept["label"] == 1).sum() == (sel.kept["label"] == 0).sum()
    assert sel.reached_chance


def test_selection_is_deterministic():
    world = partial_world(seed=5)
    a = match_nearest(world, min_per_class=10, seed=1, n_resamples=200)
    b = match_nearest(world, min_per_class=10, seed=1, n_resamples=200)
    assert a.kept.equals(b.kept)
    assert filter_confident(world, min_per_class=10, n_resamples=200).kept.equals(
        filter_confident(world, min_per_class=10, n_resamples=200).kept
    )


def test_tail_test_is_calibrated_and_finds_a_contaminating_group():
    from lalm_audit.splits import tail_p_value

    rng = np.random.default_rng(7)
    null = np.array([tail_p_value(rng.normal(size=60), rng.normal(size=60)) for _ in range(600)])
    assert (null < 0.01).mean() < 0.025 and 0.02 < (
        null < 0.05
    ).mean() < 0.08  # calibrated (discrete, so conservative)
    core, replaced = rng.uniform(0.35, 0.75, 42), rng.uniform(0.0, 0.1, 18)
    members = rng.uniform(0.35, 0.75, 60)
    assert tail_p_value(-np.r_[core, replaced], -members) < 1e-3
