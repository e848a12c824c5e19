"""The controlled stages end to end on a tiny saved model: split -> fine-tune -> audit -> bounds."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lalm_audit import io
from lalm_audit.config import CanaryConfig, parse_config
from lalm_audit.controlled.canaries import make_canaries
from lalm_audit.controlled.run import run_controlled_audit, run_controlled_split, run_finetune
from lalm_audit.controlled.split import COLUMNS, ControlledSplit
from lalm_audit.errors import LalmAuditError
from lalm_audit.models.testing import save_tiny
from lalm_audit.schemas import MANIFEST


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("controlled")
    # a pool of 16 fresh utterances in two voices (the canary renderer makes any speech we need)
    speech = make_canaries(
        CanaryConfig(count=16, words=(3, 5), voices=["en-us", "en-us+f3"], seed=9), root / "pool"
    )
    pool = speech.drop(columns=[c for c in speech.columns if c.startswith("meta_")])
    pool = pool.assign(label=0, dataset="pool")
    io.write_table(pool, root / "pool.parquet", schema=MANIFEST)
    model_dir = save_tiny("qwen2_audio", root / "tiny", seed=0)
    cfg = parse_config(
        {
            "datasets": {"pool": {"loader": "table", "path": "unused.csv"}},
            "models": {
                "tiny": {"family": "qwen2_audio", "path_or_hub_id": str(model_dir), "device": "cpu"}
            },
            "evaluation": {"bootstrap": 200},
            "controlled": {
                "pool": "pool",
                "seed": 3,
                "repetitions": [1, 4],
                "models": ["tiny"],
                "finetune": {
                    "scope": "all",
                    "target_modules": [
                        "q_proj",
                        "v_proj",
                        "o_proj",
                        "up_proj",
                        "down_proj",
                        "lm_head",
                    ],
                    "rank": 8,
                    "alpha": 16,
                    "learning_rate": 0.02,
                    "epochs": 4,
                    "batch_size": 4,
                    "warmup_fraction": 0.0,
                    "dtype": "float32",
                    "keep_epoch_checkpoints": True,
                },
                "privacy": {"threshold": "bonferroni"},
            },
        }
    )
    return root, cfg


def test_split_finetune_audit(world):
    root, cfg = world
    manifest = run_controlled_split(cfg, root / "pool.parquet", root / "controlled.parquet")
    summary = json.loads((root / "controlled.summary.json").read_text())
    # 16 items in 2 voices of 8: 4 + 4 members, repetitions 1 and 4 dealt evenly
    assert summary["members"] == 8 and summary["heldout"] == 8 and summary["strata"] == 2
    assert summary["members_per_repetitions"] == {"1": 4, "4": 4}
    written = io.read_table(root / "controlled.parquet")
    assert ControlledSplit.from_manifest(written).digest == summary["digest"]
    assert (written["dataset"] == "controlled").all() and len(manifest) == 16

    info = run_finetune(cfg, "tiny", root / "controlled.parquet", root / "adapter")
    # 4 + 16 = 20 member clips per epoch in batches of 4: 5 steps per epoch, 4 epochs
    assert info["steps"] == 20 and info["epoch_losses"][-1] < info["epoch_losses"][0]
    prov = json.loads((root / "adapter" / "lalm_audit_adapter.json").read_text())
    assert prov["split_digest"] == summary["digest"] and prov["members"] == 8
    assert prov["checkpoints"] == [f"adapter_epoch{k}" for k in (1, 2, 3, 4)]
    assert prov["base_model"]["model_revision"].startswith("sha256:")

    out = run_controlled_audit(
        cfg, "tiny", root / "controlled.parquet", root / "adapter", root / "audit"
    )
    metrics = out["metrics"].set_index(["indicator", "subset"])
    # the fine-tune learned its members: its loss separates them; the base saw nothing
    # the fine-tune learned its members (measured: AUC 0.81 overall, 0.94 for members seen 4 times
    # per epoch, 0.69 once); the base model, which saw none of the items, is at chance
    assert metrics.loc[("loss", "all"), "auc"] > 0.7
    assert metrics.loc[("ref_loss_diff", "all"), "auc"] > 0.7
    rep1, rep4 = (metrics.loc[("loss", f"repetitions={r}"), "auc"] for r in (1, 4))
    assert rep4 > rep1 + 0.15
    base = metrics.loc[("base_loss", "all")]
    assert base["auc_lo"] < 0.5 < base["auc_hi"]
    subsets = set(metrics.index.get_level_values("subset"))
    assert subsets == {
        "all",
        "repetitions=1",
        "repetitions=4",
        "epoch1",
        "epoch2",
        "epoch3",
        "epoch4",
    }
    # the last epoch's checkpoint is the final adapter, scored after three other checkpoints were
    # attached and detached: equal AUCs show every detach gave the base back
    for ind in ("loss", "ref_loss_diff"):
        assert metrics.loc[(ind, "epoch4"), "auc"] == metrics.loc[(ind, "all"), "auc"]
    assert metrics.loc[("loss", "epoch1"), "auc"] < metrics.loc[("loss", "epoch4"), "auc"]
    assert metrics.loc[("loss", "repetitions=4"), "n_members"] == 4
    scores = io.read_table(root / "audit" / "scores.parquet")
    assert len(scores) == 16 and scores["loss"].notna().all()
    bounds = json.loads((root / "audit" / "bounds.json").read_text())["bounds"]
    assert {b["indicator"] for b in bounds} == {"loss", "ref_loss_diff", "base_loss"}
    assert all(b["method"] == "clopper_pearson" and b["delta"] == 1e-5 for b in bounds)
    assert (root / "audit" / "repetitions.png").stat().st_size > 10_000
    text = (root / "audit" / "summary.md").read_text()
    assert "epsilon >=" in text and "repetitions=4" in text and summary["digest"] in text


def test_the_audit_refuses_an_adapter_from_another_split(world):
    root, cfg = world
    if not (root / "adapter").exists():
        pytest.skip("needs the previous test's adapter")
    other = cfg.model_copy(update={"controlled": cfg.controlled.model_copy(update={"seed": 4})})
    run_controlled_split(other, root / "pool.parquet", root / "other.parquet")
    with pytest.raises(LalmAuditError, match="trained on split"):
        run_controlled_audit(other, "tiny", root / "other.parquet", root / "adapter", root / "x")


def test_a_pool_manifest_is_not_a_controlled_split(world):
    root, cfg = world
    with pytest.raises(LalmAuditError, match="post-hoc"):
        run_finetune(cfg, "tiny", root / "pool.parquet", root / "nope")
    assert COLUMNS["role"] not in pd.read_parquet(root / "pool.parquet").columns
