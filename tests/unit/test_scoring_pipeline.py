"""Two-stage scoring on a tiny model: stored statistics, determinism, resumability, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lalm_audit import io
from lalm_audit.config import parse_config
from lalm_audit.models import ADAPTERS
from lalm_audit.models.base import load_clips
from lalm_audit.models.testing import TINY_TEXTS, save_tiny, tiny_model
from lalm_audit.schemas import GENERATIONS, MANIFEST, REJECTED, TOKEN_STATS
from lalm_audit.scoring import paths, token_stats
from lalm_audit.scoring import run as score_run
from lalm_audit.scoring.pipeline import (
    score_batch,
    select_shard,
    shard_of,
)
from lalm_audit.scoring.run import response_inputs, run_stage_shards
from tests.conftest import sine, write

PROMPT = "Transcribe the audio."


def make_manifest(root: Path, durations: list[float], name: str = "toy") -> Path:
    rows = []
    for i, d in enumerate(durations):
        rel = f"audio/{name}-{i}.wav"
        write(root / rel, sine(200 + 40 * i, d))
        rows.append(
            {
                "item_id": f"{name}-{i:03d}",
                "dataset": name,
                "audio_path": str(root / rel),
                "audio_bytes": None,
                "audio_format": "WAV",
                "offset_s": 0.0,
                "duration_s": d,
                "source_duration_s": d,
                "sample_rate": 16000,
                "channels": 1,
                "text": TINY_TEXTS[3 + i % 5],
                "speaker_id": "spk",
                "label": i % 2,
                "source_split": "train" if i % 2 else "test",
                "truncated": False,
            }
        )
    df = pd.DataFrame(rows).astype({"sample_rate": "int32", "channels": "int16", "label": "int8"})
    path = root / "results" / "manifests" / f"{name}.parquet"
    io.write_table(df, path, schema=MANIFEST)
    return path


@pytest.fixture(scope="module")
def qwen():
    model, proc = tiny_model("qwen2_audio")
    return ADAPTERS["qwen2_audio"](model, proc)


def test_stored_statistics_equal_statistics_from_full_logits(qwen):
    rng = np.random.default_rng(1)
    wavs = [(0.1 * rng.standard_normal(int(16000 * d))).astype(np.float32) for d in (1.0, 2.5)]
    responses = ["a small brown dog", "she said that the river was cold"]
    stored = score_batch(qwen, wavs, PROMPT, responses, chunk=7)
    batch = qwen.encode_teacher_forced(wavs, PROMPT, responses)
    full = qwen.full_logits(batch)
    for b in range(2):
        for name in ("audio", "prompt", "response"):
            idx = torch.from_numpy(batch.slices[b][name])
            if name == "audio":
                ref = token_stats(full[b, idx])  # own argmax at the audio positions themselves
            else:
                ref = token_stats(
                    full[b, idx - 1], batch.input_ids[b, idx]
                )  # the predicting position
            got = stored[b][name]
            assert got["n_tokens"] == idx.numel()
            assert got["token_ids"].tolist() == ref["token_ids"].tolist()
            for k, v in ref.items():
                if k != "token_ids":
                    np.testing.assert_allclose(got[k], v.numpy(), rtol=1e-4, atol=1e-4)
        assert stored[b]["response"]["text"] == responses[b]
        assert stored[b]["prompt"]["text"] == PROMPT


def test_shards_partition_items_stably():
    ids = [f"d-{i:04d}" for i in range(200)]
    df = pd.DataFrame({"item_id": ids})
    parts = [select_shard(df, s, 3) for s in range(3)]
    assert sorted(i for p in parts for i in p["item_id"]) == ids
    assert shard_of("d-0007__silence", 3) == shard_of(
        "d-0007", 3
    )  # derived items follow their base
    assert select_shard(df.iloc[::-1], 1, 3).equals(parts[1])


def test_generated_responses_of_perturbed_items_are_the_originals():
    rows = pd.DataFrame({"item_id": ["a__noise", "b__noise", "c__noise"], "text": ["x", "y", "z"]})
    gens = pd.DataFrame(
        {"item_id": ["a", "b"], "response": ["ra", "rb"], "response_token_ids": [[5, 6], [7]]}
    )
    got = response_inputs("generated", rows, gens)
    # the generated ids themselves, not the response text
    assert {k: v.tolist() for k, v in got.items()} == {"a__noise": [5, 6], "b__noise": [7]}
    assert response_inputs("transcript", rows, None)["c__noise"] == "z"


def char_level_ids(tokenizer, text: str) -> list[int]:
    """``text`` one character per token: ids a model may generate, that tokenizing the
    decoded text would merge (' ' + 'o' + 'l' + 'd' decodes to ' old', re-encoded ' ' + 'o' + 'ld')."""
    return [i for ch in text for i in tokenizer.encode(ch, add_special_tokens=False)]


def test_stage_2_scores_the_generated_token_ids_not_their_retokenized_text(scoring_setup):
    cfg, root = scoring_setup
    run_stage_shards(cfg, "generate", "tiny", "toy", root=root)
    gen_path = paths.scores_dir("tiny", "toy", "original", root) / "generations.parquet"
    gens = io.read_table(gen_path)
    _, proc = tiny_model("qwen2_audio")
    tok = proc.tokenizer
    # what the model "generated": words spelled one character per token
    words = ["the old clock", "a dog ran", "she said", "my brother", "the river"]
    assert len(gens) == len(words)
    forced = {
        item: char_level_ids(tok, text) for item, text in zip(gens["item_id"], words, strict=True)
    }
    for ids in forced.values():
        text = tok.decode(ids, skip_special_tokens=True)
        retok = tok.encode(text, add_special_tokens=False)
        assert retok != ids  # the case this test is about: decode -> encode changes the ids
    gens["response_token_ids"] = [np.asarray(forced[i], np.int32) for i in gens["item_id"]]
    gens["response"] = [tok.decode(forced[i], skip_special_tokens=True) for i in gens["item_id"]]
    io.write_table(gens, gen_path, schema=GENERATIONS, prov=io.read_provenance(gen_path))
    run_stage_shards(cfg, "score", "tiny", "toy", root=root, responses=["generated", "transcript"])
    ts = io.read_tables(paths.token_stats_shards("tiny", "toy", "original", "generated", 2, root))
    resp = ts[ts["slice"] == "response"].set_index("item_id")
    assert set(resp.index) == set(forced)
    for item, ids in forced.items():
        assert np.asarray(resp.loc[item, "token_ids"]).tolist() == ids, item
        assert resp.loc[item, "n_tokens"] == len(ids)
        assert resp.loc[item, "text"] == gens.set_index("item_id").loc[item, "response"]
    # the transcript is still a text, tokenized inside the chat template
    tr = io.read_tables(paths.token_stats_shards("tiny", "toy", "original", "transcript", 2, root))
    tr = tr[tr["slice"] == "response"].set_index("item_id")
    manifest = io.read_table(root / "results" / "manifests" / "toy.parquet").set_index("item_id")
    for item in forced:
        want = tok.encode(manifest.loc[item, "text"], add_special_tokens=False)
        assert np.asarray(tr.loc[item, "token_ids"]).tolist() == want, item


def test_generated_ids_and_their_text_share_the_audio_and_prompt_statistics(qwen):
    """The ids path changes the response slice only: audio and prompt are stage 1's context."""
    rng = np.random.default_rng(5)
    wavs = [(0.1 * rng.standard_normal(16000 * d)).astype(np.float32) for d in (1, 2)]
    texts = ["the old clock", "a dog ran"]
    ids = [qwen.tokenizer.encode(t, add_special_tokens=False) for t in texts]
    by_ids = score_batch(qwen, wavs, PROMPT, [np.asarray(i) for i in ids])
    by_text = score_batch(qwen, wavs, PROMPT, texts)
    for a, b, i in zip(by_ids, by_text, ids, strict=True):
        assert a["response"]["token_ids"].tolist() == i == b["response"]["token_ids"].tolist()
        for name in ("audio", "prompt", "response"):
            for k in ("logp", "renyi_2", "mink_sigma"):
                np.testing.assert_allclose(a[name][k], b[name][k], rtol=1e-5, atol=1e-6)


def test_a_batch_cannot_mix_texts_and_token_ids(qwen):
    wav = np.zeros(16000, np.float32)
    with pytest.raises(ValueError, match="mixes response texts and response token ids"):
        score_batch(qwen, [wav, wav], PROMPT, ["a dog", np.asarray([5, 6])])


def test_long_clips_are_truncated_with_a_flag_or_rejected_with_a_reason(tmp_path, qwen):
    w = qwen.audio_window_s()
    path = make_manifest(tmp_path, [1.0, w + 1.0, 2.0])
    rows = io.read_table(path)
    clips, rej = load_clips(qwen, rows, "truncate", dataset="toy")
    assert [c.truncated for c in clips] == [False, True, False] and not rej
    assert clips[1].samples.shape[0] == round(w * 16000)
    clips, rej = load_clips(qwen, rows, "reject", dataset="toy")
    assert len(clips) == 2 and len(rej) == 1
    assert rej[0]["item_id"] == "toy-001" and rej[0]["reason_code"] == "too_long_for_model"


@pytest.fixture
def scoring_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_tiny("qwen2_audio", tmp_path / "tiny")
    make_manifest(tmp_path, [1.2, 2.0, 0.8, 3.0, 1.6, 5.5])
    cfg = parse_config(
        {
            "datasets": {"toy": {"loader": "table", "path": "x.csv"}},
            "models": {
                "tiny": {
                    "family": "qwen2_audio",
                    "path_or_hub_id": str(tmp_path / "tiny"),
                    "device": "cpu",
                    "batch_size": 2,
                    "max_new_tokens": 6,
                    "long_clip_policy": "reject",
                }
            },
            "scoring": {"shards": 2, "local_files_only": True},
        }
    )
    return cfg, tmp_path


def test_end_to_end_two_stages_on_a_few_items(scoring_setup):
    cfg, root = scoring_setup
    run_stage_shards(cfg, "generate", "tiny", "toy", root=root)
    out = run_stage_shards(cfg, "score", "tiny", "toy", root=root)
    gen_path = paths.scores_dir("tiny", "toy", "original", root) / "generations.parquet"
    gens = io.read_table(gen_path)
    rej = io.read_table(paths.rejected_path(gen_path))
    GENERATIONS.check(gens)
    REJECTED.check(rej)
    # counts reconcile: 6 items = 5 generated + 1 rejected (5.5 s > the tiny model's 4 s window)
    assert len(gens) == 5 and rej["item_id"].tolist() == ["toy-005"]
    prov = io.read_provenance(gen_path)
    assert prov["model"] == "tiny" and prov["model_revision"].startswith("sha256:")
    assert prov["merged_shards"] == 2
    # stage 2 keeps its shards: together they are the token statistics of a response
    assert [(p.parent.parent.name, p.name) for p in out] == [
        ("generated", "shard-0.parquet"), ("generated", "shard-1.parquet"),
        ("transcript", "shard-0.parquet"), ("transcript", "shard-1.parquet"),
    ]  # fmt: skip
    for response in ("generated", "transcript"):
        shards = paths.token_stats_shards("tiny", "toy", "original", response, 2, root)
        ts = io.read_tables(shards)
        TOKEN_STATS.check(ts)
        assert set(ts["item_id"]) == set(gens["item_id"])
        assert (
            ts.groupby("item_id")["slice"].apply(list).map(sorted).tolist()
            == [["audio", "prompt", "response"]] * 5
        )
        assert (ts["n_tokens"] == ts["logp"].map(len)).all()
        assert all(io.read_provenance(p)["response"] == response for p in shards)
    ts = io.read_tables(paths.token_stats_shards("tiny", "toy", "original", "transcript", 2, root))
    ts = ts.set_index(["item_id", "slice"])
    manifest = io.read_table(root / "results" / "manifests" / "toy.parquet").set_index("item_id")
    assert ts.loc[("toy-000", "response"), "text"] == manifest.loc["toy-000", "text"]


def test_generation_and_scoring_are_deterministic(scoring_setup):
    cfg, root = scoring_setup
    a = run_stage_shards(cfg, "generate", "tiny", "toy", root=root)[0]
    first = a.read_bytes()
    s = run_stage_shards(cfg, "score", "tiny", "toy", root=root, responses=["generated"])[0]
    first_s = s.read_bytes()
    run_stage_shards(cfg, "generate", "tiny", "toy", root=root, skip_existing=False)
    run_stage_shards(cfg, "score", "tiny", "toy", root=root, responses=["generated"],
                     skip_existing=False)  # fmt: skip
    assert a.read_bytes() == first and s.read_bytes() == first_s


def test_an_existing_shard_is_not_recomputed(scoring_setup, monkeypatch):
    cfg, root = scoring_setup
    run_stage_shards(cfg, "generate", "tiny", "toy", root=root, shards=[0])
    assert not (paths.scores_dir("tiny", "toy", "original", root) / "generations.parquet").exists()
    calls = []
    real = score_run.run_generate
    monkeypatch.setattr(
        score_run, "run_generate", lambda *a, **k: calls.append(a[4]) or real(*a, **k)
    )
    run_stage_shards(cfg, "generate", "tiny", "toy", root=root)  # resumes: shard 1 only
    assert calls == [1]
    assert (paths.scores_dir("tiny", "toy", "original", root) / "generations.parquet").exists()


def test_identical_inputs_get_identical_statistics_whatever_their_batch(qwen):
    """Twins (same audio, same response) share one pass, so they tie exactly (AUC exactly 0.5 by construction)."""
    from lalm_audit.scoring.pipeline import Clip, score

    rng = np.random.default_rng(3)
    silence = np.zeros(16000 * 2, dtype=np.float32)
    others = [(0.1 * rng.standard_normal(16000 * d)).astype(np.float32) for d in (1, 2, 3)]
    clips = [Clip("a__silence", silence, False), *(Clip(f"o{i}", w, False) for i, w in enumerate(others)),
             Clip("b__silence", silence, False)]  # fmt: skip
    responses = {
        "a__silence": "the same words",
        "b__silence": "the same words",
        "o0": "x",
        "o1": "y y",
        "o2": "z z z",
    }
    df = score(qwen, clips, responses, prompt=PROMPT, batch_size=2)
    a = df[df["item_id"] == "a__silence"].drop(columns="item_id").reset_index(drop=True)
    b = df[df["item_id"] == "b__silence"].drop(columns="item_id").reset_index(drop=True)
    for col in a.columns:
        assert [np.asarray(v).tolist() for v in a[col]] == [
            np.asarray(v).tolist() for v in b[col]
        ], col
    assert set(df["item_id"]) == set(responses)
