"""Every registered LALM adapter on a tiny random-weight model of its family, fully offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lalm_audit.config import MODEL_FAMILIES, ModelConfig
from lalm_audit.models import ADAPTERS, apply_clip_policy, load_model
from lalm_audit.models.testing import (
    TINY_BUILDERS,
    TINY_VOXTRAL_CHUNK_S,
    builder_available,
    save_tiny,
    tiny_model,
    write_tiny_tekken,
)

# Voxtral's tests need the optional mistral-common package (installed by run.sh and CI)
FAMILIES = [
    pytest.param(
        f,
        marks=pytest.mark.skipif(
            not builder_available(f), reason=f"{f}: install lalm-audit[voxtral] (mistral-common)"
        ),
    )
    for f in sorted(ADAPTERS)
]
needs_mistral_common = pytest.mark.skipif(
    not builder_available("voxtral"), reason="install lalm-audit[voxtral] (mistral-common)"
)
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


def test_generated_ids_are_scored_in_stage_1s_own_context(adapter, wavs):
    gen = adapter.generate(wavs, PROMPT, max_new_tokens=6)
    batch = adapter.encode_generated(wavs, PROMPT, gen)
    stage1 = adapter.generation_inputs(wavs, PROMPT)  # left-padded
    logits = adapter.logits_from_hidden(adapter.hidden_states(batch))
    for b, ids in enumerate(gen):
        sl = batch.slices[b]
        assert batch.input_ids[b, sl["response"]].tolist() == ids
        # everything before the response is the sequence stage 1 generated from
        keep = stage1["attention_mask"][b].bool()
        n = int(keep.sum())
        assert batch.input_ids[b, :n].tolist() == stage1["input_ids"][b, keep].tolist()
        assert sl["response"].tolist() == list(range(n, n + len(ids)))
        assert tok_text(adapter, batch.input_ids[b, sl["prompt"]]) == PROMPT
        # greedy decoding chose each generated token: it is the argmax of the teacher-forced
        # pass at the position before it (up to near-ties of a random-weight model)
        pred = logits[b, sl["response"] - 1]
        chosen = pred.gather(-1, torch.tensor(ids)[:, None])[:, 0]
        assert torch.all(chosen >= pred.max(-1).values - 1e-4)


def test_ids_that_retokenize_differently_are_scored_as_they_are(adapter, wavs):
    tok = adapter.tokenizer
    text = "the old clock"
    spelled = [i for ch in text for i in tok.encode(ch, add_special_tokens=False)]
    assert tok.encode(text, add_special_tokens=False) != spelled
    batch = adapter.encode_generated(wavs, PROMPT, [spelled, spelled[:3]])
    assert batch.input_ids[0, batch.slices[0]["response"]].tolist() == spelled
    assert batch.input_ids[1, batch.slices[1]["response"]].tolist() == spelled[:3]
    assert batch.slices[1]["audio"].size > batch.slices[0]["audio"].size


def test_a_generated_audio_placeholder_cannot_be_scored(adapter, wavs):
    ph = sorted(adapter.audio_placeholder_ids())[0]
    with pytest.raises(ValueError, match="audio placeholder id"):
        adapter.encode_generated(wavs[:1], PROMPT, [[5, ph]])


def tok_text(adapter, ids) -> str:
    return adapter.tokenizer.decode(ids.tolist())


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
    if not adapter.processor_cuts_audio:
        pytest.skip("the processor takes any length; see the family's own window test")
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
def test_released_audio_window(family, tmp_path):
    from transformers import WhisperFeatureExtractor

    if family == "voxtral":
        # tekken.json's 30 s chunks (375 tokens each) in the 32k trained context,
        # 1/16 kept for text: 81 chunks (the text config says 131072 positions)
        model, proc = _tiny_voxtral_with(tmp_path, chunk_s=30)
        model.config.text_config.max_position_embeddings = 131072
        assert ADAPTERS[family](model, proc).audio_window_s() == 81 * 30.0
        return
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


def _tiny_voxtral_with(folder, chunk_s):
    from transformers import MistralCommonBackend, VoxtralProcessor, WhisperFeatureExtractor

    tok = MistralCommonBackend.from_pretrained(write_tiny_tekken(folder, chunk_s=chunk_s))
    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=chunk_s)
    model, _ = tiny_model("voxtral")
    return model, VoxtralProcessor(feature_extractor=fe, tokenizer=tok)


@pytest.fixture(scope="module")
def voxtral():
    return ADAPTERS["voxtral"](*tiny_model("voxtral"))


@needs_mistral_common
def test_voxtral_audio_is_whole_chunks_of_the_exact_clip(voxtral, wavs):
    batch = voxtral.encode_teacher_forced(wavs, PROMPT, RESPONSES)
    # 2 s chunks, 12.5 tokens per second: 1.3 s -> 1 chunk = 25 tokens, 3.1 s -> 2 chunks = 50
    assert [sl["audio"].size for sl in batch.slices] == [25, 50]
    feats = voxtral.model.get_audio_features(batch.inputs["input_features"]).pooler_output
    assert feats.shape[0] == 75
    # the audio reached the model losslessly (float WAV), zero-padded to whole chunks
    fe = voxtral.feature_extractor
    chunk = TINY_VOXTRAL_CHUNK_S * 16000
    expected = [
        fe(np.pad(w, (0, -w.shape[0] % chunk)), sampling_rate=16000, truncation=False) for w in wavs
    ]
    got = batch.inputs["input_features"]
    flat = torch.cat([got[0], torch.cat(list(got[1:3]), dim=-1)], dim=-1)
    want = np.concatenate([e["input_features"][0] for e in expected], axis=-1)
    np.testing.assert_allclose(flat.numpy(), want, rtol=1e-5, atol=1e-5)
    # the structure the slices are read from
    ids = batch.input_ids[0]
    a, p = batch.slices[0]["audio"], batch.slices[0]["prompt"]
    assert int(ids[a[0] - 1]) == voxtral.tokenizer.convert_tokens_to_ids("[BEGIN_AUDIO]")
    assert int(ids[p[-1] + 1]) == voxtral.tokenizer.convert_tokens_to_ids("[/INST]")


@needs_mistral_common
def test_voxtral_window_is_the_trained_context(voxtral):
    # the processor never cuts: 200 s is 100 chunks of 25 tokens; the window is what fits
    # the (tiny) 2048-position context with 1/16 left for text: 1920 // 25 = 76 chunks = 152 s
    sr = voxtral.sampling_rate
    clip = np.zeros(200 * sr, np.float32)
    assert _n_audio(voxtral, clip) == 2500
    assert voxtral.audio_window_s() == 152.0
    at = voxtral.encode_teacher_forced([clip[: 152 * sr]], PROMPT, ["a"])
    assert at.slices[0]["audio"].size == 1900 and at.input_ids.shape[1] <= 2048
    assert _n_audio(voxtral, clip[: 154 * sr]) > 2048 - 2048 // 16


@needs_mistral_common
def test_voxtral_scores_an_empty_response_as_no_tokens(voxtral, wavs):
    batch = voxtral.encode_teacher_forced(wavs, PROMPT, ["", "a dog ran"])
    assert batch.slices[0]["response"].size == 0
    assert voxtral.tokenizer.decode(batch.input_ids[1, batch.slices[1]["response"]]) == "a dog ran"


def test_voxtral_without_mistral_common_says_how_to_install(monkeypatch, tmp_path):
    import transformers.utils

    from lalm_audit.errors import LalmAuditError

    monkeypatch.setattr(transformers.utils, "is_mistral_common_available", lambda: False)
    spec = ModelConfig(family="voxtral", path_or_hub_id=str(tmp_path), device="cpu")
    with pytest.raises(LalmAuditError, match=r"pip install 'lalm-audit\[voxtral\]'"):
        load_model("vox", spec)


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_generation_and_scoring_run_in_bf16(family, wavs):
    """bf16 is how 7B models run on a GPU; a dtype mismatch between the audio features, the
    encoder and the LM (as transformers once had for Audio Flamingo 3) must fail here, on CPU."""
    import copy

    from lalm_audit.scoring.pipeline import score_batch

    model, proc = tiny_model(family)
    ref = ADAPTERS[family](model, proc)
    bf = ADAPTERS[family](copy.deepcopy(model).to(torch.bfloat16), proc)
    gen = bf.generate(wavs, PROMPT, max_new_tokens=5)
    assert len(gen) == 2 and all(len(g) <= 5 for g in gen)
    batch = bf.encode_generated(wavs, PROMPT, gen)
    hidden = bf.hidden_states(batch)
    assert hidden.dtype == torch.bfloat16  # the model really ran in bf16
    assert bf.logits_from_hidden(hidden).dtype == torch.float32
    ids = [np.asarray(g) for g in gen]
    got = score_batch(bf, wavs, PROMPT, ids)
    want = score_batch(ref, wavs, PROMPT, ids)
    for g, w in zip(got, want, strict=True):
        for name in ("audio", "prompt", "response"):
            assert g[name]["token_ids"].size == w[name]["token_ids"].size
            for k in ("logp", "renyi_1", "mink_sigma"):
                assert g[name][k].dtype == np.float32 and np.isfinite(g[name][k]).all()
        # the same weights rounded to bf16: log-probabilities within bf16's few digits
        np.testing.assert_allclose(g["response"]["logp"], w["response"]["logp"], atol=0.1)
