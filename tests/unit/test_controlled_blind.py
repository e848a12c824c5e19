"""The blind check of a controlled split: at chance on features the draw cannot see, and it
reports a feature that does predict the labels (so the check can fail)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lalm_audit import io
from lalm_audit.config import parse_config
from lalm_audit.controlled.run import run_controlled_blind
from lalm_audit.controlled.split import draw_controlled
from lalm_audit.schemas import FEATURES


def test_blind_check_on_a_controlled_split(tmp_path):
    n = 120
    pool = pd.DataFrame(
        {
            "item_id": [f"p{i:03d}" for i in range(n)],
            "speaker_id": [f"s{i % 6}" for i in range(n)],
            "text": "x",
            "label": 0,
        }
    )
    manifest, _ = draw_controlled(pool, pool_name="pool", dataset="ctrl", seed=1, draw="balanced")
    io.write_table(manifest, tmp_path / "ctrl.parquet")
    rng = np.random.default_rng(0)
    feats = pd.DataFrame(
        {
            "item_id": pool["item_id"],
            "feature_error": None,
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
        }
    )
    cfg = parse_config(
        {
            "datasets": {"pool": {"loader": "table", "path": "x"}},
            "features": {"groups": ["spectral"]},
            "blind": {"classifiers": ["logistic"], "folds": 5},
            "evaluation": {"bootstrap": 200},
            "controlled": {"pool": "pool", "dataset": "ctrl"},
        }
    )
    io.write_table(feats, tmp_path / "features" / "pool" / "spectral.parquet", schema=FEATURES)
    rep = run_controlled_blind(cfg, tmp_path / "ctrl.parquet", tmp_path / "out", results=tmp_path)
    row = rep[rep["group"] == "spectral"].iloc[0]
    verdict = io.read_json(tmp_path / "out" / "blind.verdict.json")
    assert verdict["state"] != "shifted" and verdict["p_value"] > 0.2, verdict
    assert "| spectral | logistic |" in (tmp_path / "out" / "blind.md").read_text()
    assert int(row["n_members"]) == 60 and int(row["n_nonmembers"]) == 60

    # a feature that leaks the drawn label is caught: the check is not a formality
    label = manifest.set_index("item_id").loc[pool["item_id"], "label"].to_numpy()
    leaky = feats.assign(a=label + 0.3 * rng.normal(size=n))
    io.write_table(leaky, tmp_path / "features" / "pool" / "spectral.parquet", schema=FEATURES)
    rep = run_controlled_blind(cfg, tmp_path / "ctrl.parquet", tmp_path / "out", results=tmp_path)
    assert rep[rep["group"] == "spectral"].iloc[0]["auc_lo"] > 0.9
    assert io.read_json(tmp_path / "out" / "blind.verdict.json")["state"] == "shifted"
    assert "**Verdict: shifted" in (tmp_path / "out" / "blind.md").read_text()
