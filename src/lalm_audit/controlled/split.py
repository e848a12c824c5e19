"""Randomized membership: draw members and held-out items from a pool the model has not seen.

A post-hoc audit can only say that members and non-members are
*distinguishable*; when the assignment is random, the labels are exact and
every difference between the classes that the model did not cause is at
chance by construction. The draw is a pure function of the pool's item ids,
their strata and one seed, so a :class:`ControlledSplit` can always be
re-derived from its manifest and checked (:meth:`ControlledSplit.verify`):
only a split that passes this check can reach the privacy bounds.

Two draws:

- ``balanced``: within each stratum (a speaker, when speakers are known) a
  random half become members, so the classes are equal in size per speaker
  and a speaker's voice cannot predict membership;
- ``bernoulli``: every item is a member by its own fair coin, independently,
  the premise of the one-run audit of Steinke, Nasr and Jagielski (2023).

Members are given repetition counts (how often fine-tuning sees them) in
turn from the configured list over a random order: in a ``balanced`` draw
over the members, so every count gets the same share of members, and of
each speaker's members; in a ``bernoulli`` draw over all candidates before
the coins, so no item's count depends on another item's coin.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from lalm_audit.errors import DatasetError, LalmAuditError

Draw = Literal["balanced", "bernoulli"]
DRAWS: tuple[str, ...] = ("balanced", "bernoulli")
UNKNOWN_SPEAKER = "unknown"

#: manifest columns that record the draw (``meta_*`` extras of the manifest contract)
COLUMNS = {
    "role": "meta_controlled_role",
    "repetitions": "meta_controlled_repetitions",
    "stratum": "meta_controlled_stratum",
    "seed": "meta_controlled_seed",
    "draw": "meta_controlled_draw",
    "pool": "meta_controlled_pool",
    "repetition_set": "meta_controlled_repetition_set",
    "digest": "meta_controlled_digest",
}


class PostHocAuditError(LalmAuditError):
    """A privacy bound was asked for on labels that were not drawn at random by this tool."""


@dataclass(frozen=True)
class ControlledSplit:
    """The record of one randomized draw: what was drawn, how, and from what.

    ``items`` has one row per pool item: ``item_id``, ``stratum``, ``label``
    (1 member, 0 held-out) and ``repetitions`` (0 for held-out items).
    """

    pool: str
    seed: int
    draw: str
    repetition_set: tuple[int, ...]
    items: pd.DataFrame

    @property
    def digest(self) -> str:
        """sha256 of everything that defines the draw (short), recorded in the manifest."""
        blob = json.dumps(
            {
                "pool": self.pool,
                "seed": self.seed,
                "draw": self.draw,
                "repetition_set": list(self.repetition_set),
                "items": self.items[["item_id", "stratum", "label", "repetitions"]]
                .astype(str)
                .values.tolist(),
            },
            separators=(",", ":"),
        ).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]

    def labels(self) -> pd.Series:
        return self.items.set_index("item_id")["label"]

    def verify(self) -> None:
        """Re-draw from the recorded pool, strata and seed; raise unless it gives these labels exactly."""
        again = _assign(
            self.items[["item_id", "stratum"]], self.seed, self.draw, self.repetition_set
        )
        mine = self.items.set_index("item_id").sort_index()
        redo = again.set_index("item_id").sort_index()
        same = mine.index.equals(redo.index) and (
            (mine["label"].to_numpy() == redo["label"].to_numpy()).all()
            and (mine["repetitions"].to_numpy() == redo["repetitions"].to_numpy()).all()
        )
        if not same:
            raise PostHocAuditError(
                f"controlled split of pool {self.pool!r}: its labels are not the seeded draw "
                f"(seed {self.seed}, draw {self.draw!r}) of its items, so membership was not "
                "randomized by this tool. Fix: rebuild the split with `lalm-audit controlled-split` "
                "and use its manifest unchanged"
            )

    @classmethod
    def from_manifest(cls, manifest: pd.DataFrame) -> ControlledSplit:
        """Read the record back from a controlled manifest (raises when the columns are absent)."""
        missing = [c for c in COLUMNS.values() if c not in manifest.columns]
        if missing:
            raise PostHocAuditError(
                f"the manifest has no record of a controlled draw (lacks {missing}): its labels were "
                "not randomized, so no privacy bound can be computed for it (a post-hoc audit can "
                "say 'distinguishable', never 'trained on'). Fix: audit a split drawn by "
                "`lalm-audit controlled-split`"
            )
        const = {}
        for key in ("seed", "draw", "pool", "repetition_set", "digest"):
            values = manifest[COLUMNS[key]].unique()
            if len(values) != 1:
                raise PostHocAuditError(
                    f"the controlled manifest mixes draws ({COLUMNS[key]} takes {len(values)} values); "
                    "Fix: audit one split's manifest at a time"
                )
            const[key] = values[0]
        items = pd.DataFrame(
            {
                "item_id": manifest["item_id"].astype(str).to_numpy(),
                "stratum": manifest[COLUMNS["stratum"]].astype(str).to_numpy(),
                "label": manifest["label"].astype(int).to_numpy(),
                "repetitions": manifest[COLUMNS["repetitions"]].astype(int).to_numpy(),
            }
        )
        split = cls(
            pool=str(const["pool"]),
            seed=int(const["seed"]),
            draw=str(const["draw"]),
            repetition_set=tuple(int(x) for x in str(const["repetition_set"]).split(",")),
            items=items.sort_values("item_id", ignore_index=True),
        )
        if split.digest != const["digest"]:
            raise PostHocAuditError(
                f"controlled manifest of pool {split.pool!r}: its rows do not hash to the recorded "
                f"digest {const['digest']} (items were added, dropped or relabelled). Fix: use the "
                "split's manifest as `lalm-audit controlled-split` wrote it"
            )
        split.verify()
        return split


def _assign(
    items: pd.DataFrame, seed: int, draw: str, repetition_set: tuple[int, ...]
) -> pd.DataFrame:
    """The draw itself: ``items`` (item_id, stratum) -> + label, repetitions. Input order is irrelevant."""
    if draw not in DRAWS:
        raise LalmAuditError(f"unknown controlled draw {draw!r}; use one of {DRAWS}")
    items = items.sort_values(["stratum", "item_id"], ignore_index=True)
    rng = np.random.default_rng(seed)
    label = np.zeros(len(items), dtype=np.int8)
    order: list[int] = []  # members in the random order repetition counts are dealt in
    extra_to_members = True  # odd strata give their spare item to each class in turn
    for _, idx in items.groupby("stratum", sort=True).indices.items():
        perm = np.asarray(idx)[rng.permutation(len(idx))]
        if draw == "balanced":
            n_mem = len(perm) // 2
            if len(perm) % 2:
                n_mem += int(extra_to_members)
                extra_to_members = not extra_to_members
            chosen = perm[:n_mem]
        else:
            chosen = perm[rng.random(len(perm)) < 0.5]
        label[chosen] = 1
        order.extend(int(i) for i in chosen)
    reps = np.zeros(len(items), dtype=np.int64)
    if draw == "bernoulli":
        # every candidate's count comes from a stream of its own, dealt before and apart from the
        # coins: flipping one coin then adds or removes one record (with its copies) and changes
        # no other member's count, as the one-run audit's neighbouring datasets require
        plan = repetition_plan(len(items), seed, repetition_set)
        reps[label == 1] = plan[label == 1]
    else:
        offset = int(rng.integers(len(repetition_set)))
        for k, i in enumerate(order):
            reps[i] = repetition_set[(k + offset) % len(repetition_set)]
    return items.assign(label=label, repetitions=reps)


def repetition_plan(n: int, seed: int, repetition_set: tuple[int, ...]) -> np.ndarray:
    """Counts dealt in turn over a random order of all ``n`` candidates (items sorted by stratum, id)."""
    order = np.random.default_rng([seed, 1]).permutation(n)
    plan = np.empty(n, dtype=np.int64)
    plan[order] = np.resize(np.asarray(repetition_set, dtype=np.int64), n)
    return plan


def draw_controlled(
    pool: pd.DataFrame,
    *,
    pool_name: str,
    dataset: str,
    seed: int,
    draw: str = "balanced",
    stratify_by_speaker: bool = True,
    repetitions: tuple[int, ...] = (1,),
    use_items: Literal["nonmembers", "all"] = "nonmembers",
) -> tuple[pd.DataFrame, ControlledSplit]:
    """Draw members and held-out items from a pool manifest; return the new manifest and its record.

    ``use_items='nonmembers'`` keeps only the pool's label-0 items: the
    pool's own members may have been seen by the model already, which would
    make some held-out items members in fact.
    """
    if (
        not repetitions
        or any(int(r) < 1 for r in repetitions)
        or len(set(repetitions)) != len(repetitions)
    ):
        raise LalmAuditError(
            f"controlled.repetitions {list(repetitions)} must be distinct counts >= 1, e.g. [1, 2, 4, 8]"
        )
    chosen = pool if use_items == "all" else pool[pool["label"] == 0]
    if len(chosen) < 4:
        raise DatasetError(
            pool_name,
            f"the controlled draw needs at least 4 candidate items, the pool has {len(chosen)} "
            f"({'all items' if use_items == 'all' else 'non-members'})",
            "use a larger pool, or controlled.use_items: all when no item of the pool was seen",
        )
    speakers = chosen["speaker_id"].astype(str)
    known = stratify_by_speaker and bool((speakers != UNKNOWN_SPEAKER).any())
    base = pd.DataFrame(
        {
            "item_id": chosen["item_id"].astype(str).to_numpy(),
            "stratum": speakers.to_numpy() if known else np.full(len(chosen), "all"),
        }
    )
    reps = tuple(int(r) for r in repetitions)
    assigned = _assign(base, seed, draw, reps)
    record = ControlledSplit(
        pool=pool_name,
        seed=int(seed),
        draw=draw,
        repetition_set=reps,
        items=assigned.sort_values("item_id", ignore_index=True),
    )
    by_id = record.items.set_index("item_id")
    out = chosen.copy()
    ids = out["item_id"].astype(str)
    out["dataset"] = dataset
    out["label"] = ids.map(by_id["label"]).astype(np.int8).to_numpy()
    out[COLUMNS["role"]] = np.where(out["label"] == 1, "member", "heldout")
    out[COLUMNS["repetitions"]] = ids.map(by_id["repetitions"]).astype(np.int64).to_numpy()
    out[COLUMNS["stratum"]] = ids.map(by_id["stratum"]).to_numpy()
    out[COLUMNS["seed"]] = np.int64(seed)
    out[COLUMNS["draw"]] = draw
    out[COLUMNS["pool"]] = pool_name
    out[COLUMNS["repetition_set"]] = ",".join(str(r) for r in reps)
    out[COLUMNS["digest"]] = record.digest
    return out.sort_values("item_id", ignore_index=True), record


def require_controlled(split: object) -> ControlledSplit:
    """The guard every privacy bound passes through: a verified controlled split, or an error."""
    if not isinstance(split, ControlledSplit):
        raise PostHocAuditError(
            f"a privacy bound needs the record of a randomized controlled split, got "
            f"{type(split).__name__}: labels of a post-hoc audit are not randomized, so no epsilon "
            "is computed for them. Fix: draw the split with `lalm-audit controlled-split` and pass "
            "ControlledSplit.from_manifest(<its manifest>)"
        )
    split.verify()
    return split
