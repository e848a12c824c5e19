"""The randomized member/held-out draw: balance, determinism, strata, repetitions, the record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lalm_audit.controlled.split import (
    COLUMNS,
    ControlledSplit,
    PostHocAuditError,
    draw_controlled,
    require_controlled,
)
from lalm_audit.errors import DatasetError, LalmAuditError


def pool(n_speakers: int = 5, per_speaker: int = 9, label: int = 0) -> pd.DataFrame:
    rows = [
        {
            "item_id": f"s{s}_u{u:02d}",
            "dataset": "pool",
            "speaker_id": f"spk{s}",
            "text": f"utterance {u} of speaker {s}",
            "label": label,
        }
        for s in range(n_speakers)
        for u in range(per_speaker)
    ]
    return pd.DataFrame(rows)


def draw(df, **kw):
    kw = {"pool_name": "pool", "dataset": "ctrl", "seed": 7, **kw}
    return draw_controlled(df, **kw)


def test_balanced_draw_halves_every_speaker_and_the_whole():
    out, _ = draw(pool(5, 9))
    # 9 items per speaker: 4 or 5 members each, the spare alternating, so 45 -> 23/22 overall
    per = out.groupby("speaker_id")["label"].sum()
    assert set(per) <= {4, 5} and (per == 5).sum() in (2, 3)
    assert abs(int(out["label"].sum()) - (len(out) - int(out["label"].sum()))) <= 1
    assert set(out[COLUMNS["role"]]) == {"member", "heldout"}
    assert (out["label"] == (out[COLUMNS["role"]] == "member")).all()
    assert (out["dataset"] == "ctrl").all()


def test_same_seed_same_draw_whatever_the_input_order_other_seed_differs():
    df = pool(4, 10)
    a, _ = draw(df)
    b, _ = draw(df.sample(frac=1.0, random_state=3))
    c, _ = draw(df, seed=8)
    assert a["item_id"].tolist() == b["item_id"].tolist()
    assert a["label"].tolist() == b["label"].tolist()
    assert a["label"].tolist() != c["label"].tolist()


def test_without_speakers_the_draw_is_one_stratum():
    df = pool(4, 10).assign(speaker_id="unknown")
    out, rec = draw(df)
    assert set(rec.items["stratum"]) == {"all"} and int(out["label"].sum()) == 20
    _, rec2 = draw(pool(4, 10), stratify_by_speaker=False)
    assert set(rec2.items["stratum"]) == {"all"}


def test_repetition_counts_get_equal_shares_and_held_out_items_none():
    out, _ = draw(pool(6, 12), repetitions=(1, 2, 4, 8))
    reps = out[COLUMNS["repetitions"]]
    assert (reps[out["label"] == 0] == 0).all()
    counts = reps[out["label"] == 1].value_counts()
    assert set(counts.index) == {1, 2, 4, 8}
    assert counts.max() - counts.min() <= 1  # 36 members: 9 per count
    assert counts.sum() == 36


def test_bernoulli_draw_is_a_fair_coin_per_item():
    out, rec = draw(pool(10, 40), draw="bernoulli", seed=11)
    n, k = len(out), int(out["label"].sum())
    # 400 fair coins: a two-sided binomial test at 1e-3 fails for a biased draw only
    assert stats.binomtest(k, n, 0.5).pvalue > 1e-3
    assert rec.draw == "bernoulli"


def test_only_the_pools_non_members_are_candidates_by_default():
    df = pd.concat(
        [pool(2, 6, label=0), pool(2, 6, label=1).assign(item_id=lambda d: d.item_id + "m")]
    )
    out, _ = draw(df)
    assert len(out) == 12 and not out["item_id"].str.endswith("m").any()
    out_all, _ = draw(df, use_items="all")
    assert len(out_all) == 24


def test_record_round_trips_through_the_manifest_and_verifies():
    out, rec = draw(pool(3, 8), repetitions=(1, 4))
    back = ControlledSplit.from_manifest(out.sample(frac=1.0, random_state=1))
    assert back.digest == rec.digest and back.seed == 7 and back.repetition_set == (1, 4)
    assert require_controlled(back) is back


def test_a_relabelled_manifest_is_refused():
    out, _ = draw(pool(3, 8))
    flipped = out.copy()
    i = flipped.index[flipped["label"] == 1][0]
    j = flipped.index[flipped["label"] == 0][0]
    flipped.loc[[i, j], "label"] = np.array([0, 1], dtype=np.int8)
    with pytest.raises(PostHocAuditError, match="digest"):
        ControlledSplit.from_manifest(flipped)
    # a record whose labels disagree with its seed is refused even with a matching digest
    _, rec = draw(pool(3, 8))
    forged = ControlledSplit(rec.pool, rec.seed + 1, rec.draw, rec.repetition_set, rec.items)
    with pytest.raises(PostHocAuditError, match="not the seeded draw"):
        require_controlled(forged)


def test_a_post_hoc_manifest_has_no_record():
    with pytest.raises(PostHocAuditError, match="post-hoc"):
        ControlledSplit.from_manifest(pool(2, 4))
    with pytest.raises(PostHocAuditError, match="post-hoc"):
        require_controlled(pool(2, 4))


def test_bad_settings_are_named():
    with pytest.raises(LalmAuditError, match="repetitions"):
        draw(pool(), repetitions=(1, 1))
    with pytest.raises(DatasetError, match="at least 4"):
        draw(pool(1, 3))
    with pytest.raises(LalmAuditError, match="unknown controlled draw"):
        draw(pool(), draw="coin")


def test_bernoulli_repetitions_do_not_depend_on_other_coins():
    from lalm_audit.controlled.split import repetition_plan

    _, rec = draw(pool(4, 25), draw="bernoulli", repetitions=(1, 2, 4, 8), seed=5)
    items = rec.items.sort_values(["stratum", "item_id"], ignore_index=True)
    plan = repetition_plan(len(items), 5, (1, 2, 4, 8))
    # each member's count is its pre-dealt count, whoever else became a member
    members = items["label"] == 1
    assert (items.loc[members, "repetitions"].to_numpy() == plan[members.to_numpy()]).all()
    assert (items.loc[~members, "repetitions"] == 0).all()
    # the plan itself deals every count to a quarter of the 100 candidates
    assert sorted(np.bincount(plan)[[1, 2, 4, 8]]) == [25, 25, 25, 25]
