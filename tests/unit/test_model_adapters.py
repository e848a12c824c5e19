"""Every registered LALM adapter on a tiny random-weight model of its family, fully offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lalm_audit.config import MODEL_FAMILIES, ModelConfig
from lalm_audit.models import ADAPTERS, apply_clip_policy, load_model
from lalm_audit.models.testing import TINY_BUILDERS, save_tiny, tiny_model

FAMILIES = sorted(ADAPTERS)
PROMPT = "Transcribe the audio."
RESPONSES = ["the old clock in the hall struck nine", "a dog ran"]


@pytest.fixture(scope="module", params=FAMILIES)
def adapter(request):
    model, proc = tiny_model(request.param)
    return ADAPTERS[request.param](model, proc)


@pytest.fixture(scope="module")
def wavs():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(16000 * d))).astype(np.float32) for d in (1.3, 3.1)]


def test_registry_config_and_test_builders_agree():
    assert set(ADAPTERS) == set(MODEL_FAMILIES) == set(TINY_BUILDERS)


def test_slices_cover_exactly_audio_prompt_and_response(adapter, wavs):
    batch = adapter.encode_teacher_forced(wavs, PROMPT, RESPONSES)
    tok = adapter.tokenizer
    audio_ids = adapter.audio_placeholder_ids()
    for b, resp in enumerate(RESPONSES):
        ids = batch.input_ids[b]
        sl = batch.slices[b]
        # audio: exactly the expanded placeholders, one contiguous run, as many as the clip needs
        a = sl["audio"]
        assert a.size > 10 and set(ids[a].tolist()) <= audio_ids
        assert np.all(np.diff(a) == 1)
        valid = batch.inputs["attention_mask"][b].bool()
        assert int(np.isin(ids[valid].numpy(), list(audio_ids)).sum()) == a.size
        # prompt and response: the very tokens of those texts, and nothing else
        assert tok.decode(ids[sl["prompt"]]) == PROMPT
        assert tok.decode(ids[sl["response"]]) == resp
        assert sl["response"][-1] == int(valid.sum()) - 1  # the response ends the sequence
        assert not set(a) & set(sl["prompt"]) and not set(sl["prompt"]) & set(sl["response"])
        assert a.max() < sl["prompt"].min() < sl["response"].min()
    # the longer clip has more audio positions
    assert batch.slices[1]["audio"].size > batch.slices[0]["audio"].size


def test_hidden_state_path_equals_the_models_own_logits(adapter, wavs):
    batch = adapter.encode_teacher_forced(wavs, PROMPT, RESPONSES)
    full = adapter.full_logits(batch)
    ours = adapter.logits_from_hidden(adapter.hidden_states(batch))
    mask = batch.inputs["attention_mask"].bool()
    torch.testing.assert_close(ours[mask], full[mask], rtol=1e-4, atol=1e-4)


def test_generate_is_greedy_deterministic_and_stops(adapter, wavs):
    a = adapter.generate(wavs, PROMPT, max_new_tokens=7)
    b = adapter.generate(wavs, PROMPT, max_new_tokens=7)
    assert a == b and len(a) == 2
    stops = set(adapter.stop_token_ids())
    for ids in a:
        assert len(ids) <= 7 and not set(ids) & stops


def test_window_and_long_clip_policy(adapter):
    sr, w = adapter.sampling_rate, adapter.audio_window_s()
    assert w > 0
    long = np.zeros(int((w + 1.5) * sr), np.float32)
    cut = apply_clip_policy(long, sr, w, "truncate", "x")
    assert cut.truncated and not cut.rejected and cut.samples.shape[0] == round(w * sr)
    rej = apply_clip_policy(long, sr, w, "reject", "x")
    assert rej.rejected and rej.samples is None and "audio window" in rej.reason
    ok = apply_clip_policy(long[:sr], sr, w, "reject", "x")
    assert not ok.truncated and not ok.rejected and ok.samples.shape[0] == sr


@pytest.mark.parametrize("family", FAMILIES)
def test_load_from_a_local_folder_records_a_weights_hash(tmp_path, family, wavs):
    path = save_tiny(family, tmp_path / family)
    spec = ModelConfig(family=family, path_or_hub_id=str(path), dtype="float32", device="cpu")
    loaded = load_model("tiny", spec)
    assert loaded.revision.startswith("sha256:")
    assert loaded.provenance()["model_revision"] == loaded.revision
    again = load_model("tiny", spec)
    assert again.revision == loaded.revision
    # the loaded model computes what the saved one did
    model, proc = tiny_model(family)
    direct = ADAPTERS[family](model, proc)
    b1 = loaded.adapter.encode_teacher_forced(wavs[:1], PROMPT, RESPONSES[:1])
    b2 = direct.encode_teacher_forced(wavs[:1], PROMPT, RESPONSES[:1])
    torch.testing.assert_close(loaded.adapter.full_logits(b1), direct.full_logits(b2))


def test_batched_generation_equals_one_clip_at_a_time(adapter, wavs):
    # left padding and (for Qwen2.5-Omni) multimodal RoPE must not change a row's response
    batched = adapter.generate(wavs, PROMPT, max_new_tokens=6)
    single = [adapter.generate([w], PROMPT, max_new_tokens=6)[0] for w in wavs]
    assert batched == single


def _n_audio(adapter, wav) -> int:
    return adapter.encode_teacher_forced([wav], PROMPT, ["a"]).slices[0]["audio"].size


def test_audio_window_is_where_the_processor_stops_taking_audio(adapter):
    # the window the clip policy enforces is the processor's real one: a clip beyond it
    # gets no more audio positions than one exactly at it, and one below it gets fewer
    sr, w = adapter.sampling_rate, adapter.audio_window_s()
    rng = np.random.default_rng(1)
    clip = (0.1 * rng.standard_normal(int((w + 1.5) * sr))).astype(np.float32)
    at = _n_audio(adapter, clip[: round(w * sr)])
    assert _n_audio(adapter, clip) == at
    assert _n_audio(adapter, clip[: round((w - 1) * sr)]) < at


# The released checkpoints' preprocessing settings (their preprocessor_config.json /
# processor defaults) and the window each implies.
RELEASED = {
    "qwen2_audio": ({"feature_size": 128, "chunk_length": 30}, {}, 30.0),
    "audio_flamingo3": ({"feature_size": 128, "chunk_length": 30}, {"max_audio_len": 600}, 600.0),
    "music_flamingo": ({"feature_size": 128, "chunk_length": 30}, {"max_audio_len": 1200}, 1200.0),
    "qwen2_5_omni": ({"feature_size": 128, "chunk_length": 300}, {}, 300.0),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_released_audio_window(family):
    from transformers import WhisperFeatureExtractor

    fe_kw, proc_kw, window = RELEASED[family]
    _, proc = tiny_model(family)
    proc.feature_extractor = WhisperFeatureExtractor(sampling_rate=16000, **fe_kw)
    for k, v in proc_kw.items():
        setattr(proc, k, v)
    assert ADAPTERS[family](None, proc).audio_window_s() == window


def test_qwen2_5_omni_audio_slice_is_one_token_per_encoder_frame(wavs):
    model, proc = tiny_model("qwen2_5_omni")
    adapter = ADAPTERS["qwen2_5_omni"](model, proc)
    batch = adapter.encode_teacher_forced(wavs, PROMPT, RESPONSES)
    sizes = [sl["audio"].size for sl in batch.slices]
    # by hand: 1.3 s = 130 mel frames -> conv stride 2 -> 65 -> pool 2 -> 32 (3.1 s: 310 -> 77),
    # 25 per second; and transformers' own count from the clip length alone (what serving uses)
    assert sizes == [proc._get_num_audio_tokens(w.shape[0]) for w in wavs] == [32, 77]
    # and what the audio encoder actually emits for these clips (masked_scatter would
    # silently drop a surplus of features)
    feats = model.get_audio_features(
        batch.inputs["input_features"], batch.inputs["feature_attention_mask"]
    ).last_hidden_state
    assert feats.shape[0] == sum(sizes)
    # the slice is the frames only, between the audio bos/eos markers
    for b, sl in enumerate(batch.slices):
        ids = batch.input_ids[b]
        assert int(ids[sl["audio"][0] - 1]) == proc.audio_bos_token_id
        assert int(ids[sl["audio"][-1] + 1]) == proc.audio_eos_token_id
