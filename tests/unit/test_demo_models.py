"""The demo-model trainer: which items each model sees, determinism, the saved checkpoint."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from lalm_audit import io
from lalm_audit.config import parse_config
from lalm_audit.models import load_model
from lalm_audit.models.demo import run_demo_model, train_demo_model, training_items
from tests.unit.test_scoring_pipeline import make_manifest


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    audit = make_manifest(tmp_path, [1.0, 1.4, 0.9, 1.2], name="aud")
    pool = make_manifest(tmp_path, [1.1, 0.8, 1.3], name="pool")
    model = {"family": "qwen2_audio", "device": "cpu", "dtype": "float32", "max_new_tokens": 5}
    cfg = parse_config(
        {
            "datasets": {
                "aud": {"loader": "table", "path": "a.csv"},
                "pool": {"loader": "table", "path": "p.csv", "role": "train_pool"},
            },
            "models": {
                "tgt": {**model, "path_or_hub_id": "results/models/tgt"},
                "ctl": {**model, "path_or_hub_id": "results/models/ctl"},
            },
            "demo_models": {
                "epochs": 2,
                "hidden_size": 16,
                "layers": 1,
                "heads": 2,
                "window_s": 2,
                "batch_size": 3,
                "vocab_size": 300,
                "models": {"tgt": {"train_members": True}, "ctl": {"train_members": False}},
            },
        }
    )
    return cfg, {"aud": audit, "pool": pool}


def test_target_sees_pool_and_members_control_only_the_pool(setup):
    cfg, paths = setup
    manifests = {k: io.read_table(v) for k, v in paths.items()}
    tgt = training_items(cfg, "tgt", manifests)
    ctl = training_items(cfg, "ctl", {"pool": manifests["pool"]})  # needs no audit manifest
    members = manifests["aud"].loc[manifests["aud"]["label"] == 1, "item_id"]
    assert set(tgt["item_id"]) == set(manifests["pool"]["item_id"]) | set(members)
    assert set(ctl["item_id"]) == set(manifests["pool"]["item_id"])


def test_training_is_deterministic_and_changes_the_weights(setup):
    cfg, paths = setup
    manifests = {k: io.read_table(v) for k, v in paths.items()}
    m1, _, s1 = train_demo_model(cfg, "tgt", manifests)
    m2, _, _ = train_demo_model(cfg, "tgt", manifests)
    for (n, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    assert s1["train_items"] == 5 and s1["loss_by_epoch"][-1] < s1["loss_by_epoch"][0]


def test_saved_demo_model_loads_like_a_local_checkpoint(setup, tmp_path):
    cfg, paths = setup
    out = run_demo_model(cfg, "ctl", {"pool": paths["pool"]}, tmp_path / "results/models/ctl")
    assert (out / "model.safetensors").exists() and (out / "training.json").exists()
    loaded = load_model("ctl", cfg.models["ctl"])
    assert loaded.adapter.audio_window_s() == 2.0
    assert loaded.revision.startswith("sha256:")
    gen = loaded.adapter.generate(
        [pd.Series([0.0] * 16000).to_numpy("float32")], "Transcribe the audio.", 5
    )
    assert len(gen) == 1 and len(gen[0]) <= 5
