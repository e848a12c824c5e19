"""The demo models: small Qwen2-Audio-architecture LALMs trained on CPU on the demo speech.

``demo-target`` trains on ``demo-pretrain`` plus the members of every audit
dataset (the model under audit); ``demo-control`` follows the same recipe on
``demo-pretrain`` only, so it never saw a member: any membership signal it
shows is distribution shift, not memorization. Both are saved as
safetensors with their tokenizer and processor and are loaded back through
the same ``from_pretrained`` path as a released checkpoint.

What they are not: a real pretrained LALM generalizes far more. These models
see a few hundred utterances for a few dozen epochs and memorize them (audio
and text together), which makes the demo's membership signal much stronger
than anything expected from Audio Flamingo 3 or Qwen2-Audio.

Training is deterministic for a seed (seeded initialization and shuffling,
``torch.use_deterministic_algorithms``, one thread per job).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lalm_audit import io
from lalm_audit.config import Config, DemoModelsConfig
from lalm_audit.errors import LalmAuditError
from lalm_audit.models.base import LALMAdapter, load_clips
from lalm_audit.models.families import Qwen2AudioAdapter
from lalm_audit.models.tokenizer import BASE_SPECIAL_TOKENS, train_bpe_tokenizer

log = logging.getLogger(__name__)

AUDIO_TOKENS = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")


def tokenizer_corpus(prompt: str, seed: int, n: int = 3000) -> list[str]:
    """Text the demo tokenizer is trained on: sentences drawn from the demo grammar with a
    private seed (never the datasets' own sentences), plus the prompt and chat words."""
    from lalm_audit.demo.sentences import SentenceGenerator

    gen = SentenceGenerator(np.random.default_rng([seed, 99]))
    texts = [gen.sentence(3, 14) for _ in range(n)]
    return [*texts, prompt, "system user assistant You are a helpful assistant."]


def build_demo_model(recipe: DemoModelsConfig, prompt: str) -> tuple[Any, Any]:
    """A fresh (untrained) demo model and its processor; deterministic for ``recipe.seed``."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tok = train_bpe_tokenizer(
        tokenizer_corpus(prompt, recipe.seed),
        special_tokens=[*BASE_SPECIAL_TOKENS, *AUDIO_TOKENS],
        vocab_size=recipe.vocab_size,
        extra_attributes={
            "audio_token": "<|AUDIO|>",
            "audio_bos_token": "<|audio_bos|>",
            "audio_eos_token": "<|audio_eos|>",
        },
    )
    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=recipe.window_s)
    proc = Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok)
    h, n, heads = recipe.hidden_size, recipe.layers, recipe.heads
    cfg = Qwen2AudioConfig(
        audio_config={
            "d_model": h,
            "encoder_layers": n,
            "encoder_attention_heads": heads,
            "encoder_ffn_dim": 2 * h,
            "num_mel_bins": 80,
            # The Whisper encoder's positions must match the window: 100 mel
            # frames per second, halved by the strided convolution.
            "max_source_positions": recipe.window_s * 50,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tok),
            "hidden_size": h,
            "num_hidden_layers": n,
            "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 2),
            "intermediate_size": 2 * h,
            "max_position_embeddings": 1024,
            "tie_word_embeddings": True,
            "pad_token_id": tok.pad_token_id,
        },
        audio_token_id=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(recipe.seed)
    model = Qwen2AudioForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    return model, proc


def training_items(cfg: Config, alias: str, manifests: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The items a demo model trains on: every train-pool item, plus audit members if its recipe says so."""
    if cfg.demo_models is None or alias not in cfg.demo_models.models:
        raise LalmAuditError(f"{alias!r} is not a demo model (demo_models.models)")
    spec = cfg.demo_models.models[alias]
    parts = []
    for name, ds in cfg.datasets.items():
        if ds.role != "train_pool" and not spec.train_members:
            continue
        if name not in manifests:
            raise LalmAuditError(f"demo model {alias!r} needs the manifest of {name!r}")
        df = manifests[name]
        parts.append(df if ds.role == "train_pool" else df[df["label"] == 1])
    items = pd.concat(parts, ignore_index=True)
    return items.sort_values(["dataset", "item_id"]).reset_index(drop=True)


def _encode(adapter: LALMAdapter, items: pd.DataFrame, prompt: str, policy: str) -> list[dict]:
    """One encoded example per item: inputs, and labels on the response + end-of-turn tokens only."""
    clips, rejected = load_clips(adapter, items, policy, dataset="demo-training")
    if rejected:
        log.warning("%d training clips skipped: %s", len(rejected), rejected[0]["reason"])
    texts = dict(zip(items["item_id"], items["text"], strict=True))
    examples = []
    for c in clips:
        enc = adapter.encode_teacher_forced([c.samples], prompt, [texts[c.item_id] + "<|im_end|>"])
        ids = enc.input_ids[0]
        labels = torch.full_like(ids, -100)
        resp = torch.from_numpy(enc.slices[0]["response"])
        labels[resp] = ids[resp]
        examples.append(
            {
                "input_ids": ids,
                "labels": labels,
                "input_features": enc.inputs["input_features"][0],
                "feature_attention_mask": enc.inputs["feature_attention_mask"][0],
            }
        )
    return examples


def _collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    n = max(e["input_ids"].shape[0] for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        k = e["input_ids"].shape[0]
        ids[i, :k], labels[i, :k], mask[i, :k] = e["input_ids"], e["labels"], 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "input_features": torch.stack([e["input_features"] for e in examples]),
        "feature_attention_mask": torch.stack([e["feature_attention_mask"] for e in examples]),
    }


def train_demo_model(
    cfg: Config, alias: str, manifests: Mapping[str, pd.DataFrame]
) -> tuple[Any, Any, dict[str, Any]]:
    """Train one demo model; returns (model, processor, training summary). No files written."""
    recipe = cfg.demo_models
    assert recipe is not None
    spec = cfg.models[alias]
    items = training_items(cfg, alias, manifests)
    torch.use_deterministic_algorithms(True)
    model, proc = build_demo_model(recipe, spec.prompt)
    adapter = Qwen2AudioAdapter(model, proc)
    examples = _encode(adapter, items, spec.prompt, spec.long_clip_policy)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.0)
    steps_per_epoch = -(-len(examples) // recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / steps_per_epoch) * max(0.05, 1 - s / total)
    )
    gen = torch.Generator().manual_seed(recipe.seed)
    losses = []
    t0 = time.perf_counter()
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(examples), generator=gen).tolist()
        total_loss = 0.0
        for s in range(steps_per_epoch):
            batch = [
                examples[i] for i in order[s * recipe.batch_size : (s + 1) * recipe.batch_size]
            ]
            loss = model(**_collate(batch, proc.tokenizer.pad_token_id)).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(batch)
        losses.append(total_loss / len(examples))
        log.info("%s epoch %d/%d: loss %.4f", alias, epoch + 1, recipe.epochs, losses[-1])
    model.eval()
    summary = {
        "model": alias,
        "train_items": len(examples),
        "train_items_by_dataset": items["dataset"].value_counts().sort_index().to_dict(),
        "epochs": recipe.epochs,
        "loss_by_epoch": [round(x, 5) for x in losses],
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    return model, proc, summary


def run_demo_model(
    cfg: Config, alias: str, manifest_paths: Mapping[str, str | Path], out_dir: str | Path
) -> Path:
    """Train ``alias`` and save it (safetensors + tokenizer + processor) to ``out_dir``."""
    manifests = {name: io.read_table(p) for name, p in manifest_paths.items()}
    model, proc, summary = train_demo_model(cfg, alias, manifests)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    proc.save_pretrained(out)
    io.write_json(
        {**summary, "recipe": cfg.demo_models.model_dump(mode="json")}, out / "training.json"
    )
    log.info(
        "%s: %d parameters trained on %d items in %.1fs (final loss %.4f) -> %s",
        alias,
        summary["parameters"],
        summary["train_items"],
        summary["train_seconds"],
        summary["loss_by_epoch"][-1],
        out,
    )
    return out
