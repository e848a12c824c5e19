"""LoRA fine-tuning through peft on a tiny random-weight model of every registered family, offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from lalm_audit.config import LoraRecipe
from lalm_audit.controlled.finetune import (
    PROVENANCE_FILE,
    TrainItem,
    data_hash,
    epoch_order,
    finetune_lora,
    load_adapter,
    read_adapter_provenance,
    response_loss,
    save_adapter,
    save_merged,
    target_modules,
)
from lalm_audit.errors import LalmAuditError
from lalm_audit.models import ADAPTERS
from lalm_audit.models.testing import builder_available, tiny_model

FAMILIES = [
    pytest.param(
        f,
        marks=pytest.mark.skipif(
            not builder_available(f), reason=f"{f}: install lalm-audit[voxtral] (mistral-common)"
        ),
    )
    for f in sorted(ADAPTERS)
]
TEXTS = [
    "the old clock in the hall struck nine at night",
    "a small brown dog ran across the wide green field",
]
# A recipe that moves a 1-layer, 32-wide random model within seconds. The output head is adapted
# too: a random head with 0.02-scale weights caps every logit near 0.6, so adapters below it alone
# cannot take the loss far from log(vocab).
RECIPE = LoraRecipe(
    scope="all",
    rank=4,
    alpha=8,
    learning_rate=2e-2,
    epochs=6,
    batch_size=2,
    warmup_fraction=0.0,
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "lm_head"],
    dtype="float32",
    seed=3,
)


def members(n: int = 2, reps: tuple[int, ...] = (2, 1)) -> list[TrainItem]:
    rng = np.random.default_rng(0)
    return [
        TrainItem(f"m{i}", (0.1 * rng.standard_normal(16000)).astype(np.float32), TEXTS[i], reps[i])
        for i in range(n)
    ]


@torch.no_grad()
def mean_loss(model, adapter, items) -> float:
    batch = adapter.encode_teacher_forced(
        [it.samples for it in items], RECIPE.prompt, [it.text for it in items]
    )
    return float(response_loss(model, adapter, batch))


@torch.no_grad()
def logits(model, adapter, items) -> torch.Tensor:
    batch = adapter.encode_teacher_forced(
        [it.samples for it in items], RECIPE.prompt, [it.text for it in items]
    )
    return model(**adapter.to_device(batch.inputs), use_cache=False).logits.float()


def base_weights(model) -> dict[str, torch.Tensor]:
    """Base parameters by their original names (peft renames a wrapped Linear's to base_layer.*)."""
    return {
        k.replace(".base_layer.", "."): v.detach().clone()
        for k, v in model.state_dict().items()
        if "lora_" not in k
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_trains_round_trips_and_leaves_the_base_alone(family, tmp_path):
    model, proc = tiny_model(family, seed=0)
    adapter = ADAPTERS[family](model, proc)
    items = members()
    before = base_weights(model)
    loss0 = mean_loss(model, adapter, items)

    result = finetune_lora(adapter, items, RECIPE)
    peft_model = result.model
    # 3 clips per epoch (repetitions 2 + 1) in batches of 2: 2 steps per epoch, 6 epochs
    assert result.steps == 12 and len(result.epoch_losses) == 6
    loss1 = mean_loss(peft_model, adapter, items)
    assert loss1 < 0.8 * loss0, (family, loss0, loss1)

    after = base_weights(peft_model.get_base_model())
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "base weights changed"

    out = save_adapter(
        result,
        tmp_path / "adapter",
        base_model={"model": "tiny", "model_family": family, "model_revision": "sha256:abc"},
        recipe=RECIPE,
        split_digest="sha256:split",
    )
    with safe_open(out / "adapter_model.safetensors", "pt") as fh:
        keys = list(fh.keys())
    assert keys and all("lora_" in k for k in keys)  # the adapter file holds no base weight
    assert any("lm_head" in k for k in keys) and any(".language_model." in k for k in keys)
    rec = read_adapter_provenance(out)
    assert rec["data_hash"] == data_hash(items) and rec["split_digest"] == "sha256:split"
    assert rec["recipe"]["rank"] == 4 and rec["steps"] == 12
    assert rec["base_model"]["model_revision"] == "sha256:abc"

    fresh, _ = tiny_model(family, seed=0)
    reloaded = load_adapter(fresh, out, base_revision="sha256:abc")
    a, b = logits(peft_model, adapter, items), logits(reloaded, adapter, items)
    assert torch.allclose(a, b, atol=1e-5, rtol=0)
    # and the adapter is what changes them: the untouched base gives different logits
    plain, _ = tiny_model(family, seed=0)
    assert (logits(plain, adapter, items) - a).abs().max() > 1e-2


def test_bf16_training_on_cpu():
    model, proc = tiny_model("qwen2_audio", seed=0)
    adapter = ADAPTERS["qwen2_audio"](model, proc)
    items = members()
    loss0 = mean_loss(model, adapter, items)
    recipe = RECIPE.model_copy(update={"dtype": "bfloat16", "gradient_checkpointing": True})
    result = finetune_lora(adapter, items, recipe)
    # the base runs in bf16; peft keeps the trainable adapter weights in fp32 (mixed precision)
    frozen = [p for p in result.model.parameters() if not p.requires_grad]
    trained = [p for p in result.model.parameters() if p.requires_grad]
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)
    assert trained and all(p.dtype == torch.float32 for p in trained)
    # bf16 has ~3 significant digits: the drop is still far beyond rounding
    assert mean_loss(result.model, adapter, items) < 0.8 * loss0


def test_merged_checkpoint_scores_like_the_adapter(tmp_path):
    from transformers import Qwen2AudioForConditionalGeneration

    model, proc = tiny_model("qwen2_audio", seed=0)
    adapter = ADAPTERS["qwen2_audio"](model, proc)
    items = members()
    result = finetune_lora(adapter, items, RECIPE.model_copy(update={"epochs": 2}))
    path = save_merged(result.model, proc, tmp_path / "merged")
    merged = Qwen2AudioForConditionalGeneration.from_pretrained(path).eval()
    assert torch.allclose(
        logits(merged, adapter, items), logits(result.model, adapter, items), atol=1e-4
    )
    # the peft model still has its adapters after the merge (it merged a copy)
    assert any("lora_" in k for k in result.model.state_dict())


def test_default_scope_adapts_the_language_model_only():
    model, _ = tiny_model("qwen2_audio", seed=0)
    names = target_modules(model, LoraRecipe())
    assert names and all(".language_model." in n for n in names)
    assert {n.rsplit(".", 1)[-1] for n in names} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    everywhere = target_modules(model, LoraRecipe(scope="all"))
    assert any("audio_tower" in n for n in everywhere) and set(names) < set(everywhere)


def test_repetitions_set_how_often_a_member_is_seen():
    items = members(2, (4, 1))
    order = epoch_order(items, np.random.default_rng(0))
    assert sorted(order.tolist()) == [0, 0, 0, 0, 1]


def test_errors_name_the_fix(tmp_path):
    model, proc = tiny_model("qwen2_audio", seed=0)
    with pytest.raises(LalmAuditError, match="target_modules"):
        target_modules(model, RECIPE.model_copy(update={"target_modules": ["nope"]}))
    adapter = ADAPTERS["qwen2_audio"](model, proc)
    with pytest.raises(LalmAuditError, match="empty transcripts"):
        finetune_lora(adapter, [TrainItem("x", np.zeros(16000, np.float32), " ")], RECIPE)
    with pytest.raises(LalmAuditError, match=PROVENANCE_FILE):
        load_adapter(model, tmp_path)
    result = finetune_lora(adapter, members(), RECIPE.model_copy(update={"max_steps": 1}))
    assert result.steps == 1
    out = save_adapter(result, tmp_path / "a", base_model={"model_revision": "r1"}, recipe=RECIPE)
    assert json.loads((out / PROVENANCE_FILE).read_text())["steps"] == 1
    fresh, _ = tiny_model("qwen2_audio", seed=0)
    with pytest.raises(LalmAuditError, match="revision r1"):
        load_adapter(fresh, out, base_revision="r2")
