"""Canary pairs: unique texts, one released member per pair, a verifiable record, and the audit."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lalm_audit.config import CanaryConfig, LoraRecipe, PrivacyConfig
from lalm_audit.controlled.canaries import (
    DIGIT_WORDS,
    audit_canaries,
    canary_texts,
    make_canaries,
    release_table,
)
from lalm_audit.controlled.finetune import TrainItem, finetune_lora
from lalm_audit.controlled.split import COLUMNS, ControlledSplit
from lalm_audit.errors import LalmAuditError
from lalm_audit.models import ADAPTERS
from lalm_audit.models.testing import tiny_model

CFG = CanaryConfig(count=8, words=(4, 6), voices=["en-us", "en-us+f3/r170"], seed=1)


@pytest.fixture(scope="module")
def canaries(tmp_path_factory):
    return make_canaries(CFG, tmp_path_factory.mktemp("canaries"))


def test_pairs_share_a_voice_and_exactly_one_is_released(canaries):
    assert len(canaries) == 8 and canaries["text"].is_unique
    pairs = canaries.groupby(COLUMNS["stratum"])
    assert pairs.ngroups == 4
    assert (pairs["label"].sum() == 1).all()
    assert (pairs["speaker_id"].nunique() == 1).all()
    assert set(canaries["speaker_id"].str.split("/").str[0]) == {"en-us", "en-us+f3"}
    for text in canaries["text"]:
        assert 4 <= len(text.rstrip(".").split()) <= 6
    released = release_table(canaries)
    assert len(released) == 4 and set(released["item_id"]) == set(
        canaries.loc[canaries["label"] == 1, "item_id"]
    )


def test_audio_is_speech_of_the_recorded_length_and_deterministic(canaries, tmp_path):
    row = canaries.iloc[0]
    x, sr = sf.read(row["audio_path"])
    assert sr == 16000 and x.shape[0] / sr == pytest.approx(row["duration_s"])
    assert 0.5 < row["duration_s"] < 6 and np.abs(x).max() > 0.05
    again = make_canaries(CFG, tmp_path)
    assert again["text"].tolist() == canaries["text"].tolist()
    assert again["label"].tolist() == canaries["label"].tolist()
    y, _ = sf.read(again.iloc[0]["audio_path"])
    assert np.array_equal(x, y)


def test_the_manifest_carries_a_verifiable_controlled_record(canaries):
    split = ControlledSplit.from_manifest(canaries)
    assert split.pool == "canaries" and len(split.items) == 8


def test_digit_canaries():
    cfg = CanaryConfig(kind="digits", digits=6, count=10, seed=4)
    texts = canary_texts(cfg, 10, avoid=set())
    assert len(set(texts)) == 10
    assert all(len(t.split()) == 6 and set(t.split()) <= set(DIGIT_WORDS) for t in texts)
    with pytest.raises(LalmAuditError, match="digits"):
        canary_texts(CanaryConfig(kind="digits", digits=4, count=4), 5000)


def test_an_unknown_voice_is_named(tmp_path):
    with pytest.raises(LalmAuditError, match="no voice 'xx-nope'"):
        make_canaries(CanaryConfig(count=4, voices=["xx-nope"]), tmp_path)


def test_texts_avoid_the_given_ones():
    first = canary_texts(CFG, 6)
    other = canary_texts(CFG, 6, avoid=set(first[:3]))
    assert not set(first[:3]) & set(other)


def test_audit_finds_a_model_trained_on_the_members(canaries):
    model, proc = tiny_model("qwen2_audio", seed=0)
    adapter = ADAPTERS["qwen2_audio"](model, proc)
    prompt = "Transcribe the audio."
    members = canaries[canaries["label"] == 1]
    from lalm_audit.audio import load_item

    items = [
        TrainItem(r.item_id, load_item(r._asdict(), 16000), r.text)
        for r in members.itertuples(index=False)
    ]
    recipe = LoraRecipe(
        scope="all",
        target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj", "lm_head"],
        rank=8,
        alpha=16,
        learning_rate=2e-2,
        epochs=12,
        batch_size=4,
        warmup_fraction=0.0,
        dtype="float32",
    )
    tuned = finetune_lora(adapter, items, recipe).model
    adapter.model = tuned
    audit = audit_canaries(adapter, canaries, prompt=prompt, privacy=PrivacyConfig())
    # every member beats its twin: P[Bin(4, 1/2) >= 4] = 1/16
    assert audit.pairs == 4 and audit.member_wins == 4
    assert audit.p_value == pytest.approx(1 / 16)
    assert audit.auc == 1.0
    assert audit.bound.method == "clopper_pearson" and audit.bound.epsilon >= 0
    assert "beat their twin" in audit.verdict(alpha=0.1) and "trained on" in audit.verdict(
        alpha=0.1
    )
    d = audit.as_dict()
    assert d["member_wins"] == 4 and "epsilon_lower_bound" in d
    by_label = audit.per_item.groupby("label")["loss"].mean()
    assert by_label[1] < by_label[0]


def test_canaries_from_a_transformers_tts_model(tmp_path):
    from lalm_audit.perturb.testing import tiny_vits

    model = tiny_vits(tmp_path / "vits")  # a tiny random VITS saved locally: no hub
    cfg = CanaryConfig(count=4, words=(3, 4), engine="transformers", model=str(model), seed=5)
    a = make_canaries(cfg, tmp_path / "a")
    b = make_canaries(cfg, tmp_path / "b")
    assert (a["speaker_id"] == f"tts:{model}").all() and (a["duration_s"] > 0).all()
    x, sr = sf.read(a.iloc[1]["audio_path"])
    y, _ = sf.read(b.iloc[1]["audio_path"])
    assert sr == 16000 and x.size > 0 and np.array_equal(x, y)  # seeded per canary
    assert ControlledSplit.from_manifest(a).digest == ControlledSplit.from_manifest(b).digest


def test_the_transformers_engine_needs_a_model():
    with pytest.raises(ValueError, match="needs `model`"):
        CanaryConfig(engine="transformers")
