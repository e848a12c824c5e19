"""LoRA fine-tuning of a target LALM on the controlled members, through peft.

The model learns the task it is audited on: audio + task prompt -> the
transcript, with the loss on the response tokens only (the slice positions
come from the family adapter's own teacher-forced encoding, so training sees
exactly the sequence the audit later scores). Each member appears
``repetitions`` times per epoch, as drawn. Only LoRA weights are trained; the
base model's weights are never changed, and the adapter is saved as
safetensors with a provenance record (base model and revision, recipe, a
hash of the training data, the loss curve). A merged checkpoint can be
written for stages that load a plain model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lalm_audit.config import LoraRecipe
from lalm_audit.errors import LalmAuditError
from lalm_audit.models.base import LALMAdapter

log = logging.getLogger(__name__)

PROVENANCE_FILE = "lalm_audit_adapter.json"


@dataclass(frozen=True)
class TrainItem:
    """One member: its audio (at the model's sampling rate), transcript and repetition count."""

    item_id: str
    samples: np.ndarray
    text: str
    repetitions: int = 1


@dataclass
class FinetuneResult:
    """The trained peft model and what training did."""

    model: Any  # peft.PeftModel around the (untouched) base model
    step_losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    data_hash: str = ""
    checkpoints: list[Path] = field(default_factory=list)


def data_hash(items: Sequence[TrainItem]) -> str:
    """sha256 over every member's id, repetitions, transcript and samples, in id order."""
    h = hashlib.sha256()
    for it in sorted(items, key=lambda x: x.item_id):
        h.update(f"{it.item_id}\0{it.repetitions}\0{it.text}\0".encode())
        h.update(np.ascontiguousarray(it.samples, dtype=np.float32).tobytes())
    return "sha256:" + h.hexdigest()[:16]


def training_dtype(recipe: LoraRecipe, device: torch.device) -> torch.dtype:
    if recipe.dtype == "bfloat16":
        return torch.bfloat16
    if recipe.dtype == "float32":
        return torch.float32
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if cuda_bf16 else torch.float32


def target_modules(model: torch.nn.Module, recipe: LoraRecipe) -> list[str]:
    """Full names of the linear layers that get adapters (errors when none match)."""
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
        and n.rsplit(".", 1)[-1] in recipe.target_modules
        and (recipe.scope == "all" or ".language_model." in f".{n}.")
    ]
    if not names:
        raise LalmAuditError(
            f"LoRA: no linear layer named {recipe.target_modules} "
            f"{'in the language model ' if recipe.scope == 'language_model' else ''}of "
            f"{type(model).__name__}. Fix: controlled.finetune.target_modules (e.g. q_proj, v_proj) "
            "or scope: all"
        )
    return names


def epoch_order(items: Sequence[TrainItem], rng: np.random.Generator) -> np.ndarray:
    """Item indices of one epoch: each member ``repetitions`` times, shuffled together."""
    idx = np.repeat(np.arange(len(items)), [it.repetitions for it in items])
    return idx[rng.permutation(len(idx))]


def response_loss(model: Any, adapter: LALMAdapter, batch: Any) -> torch.Tensor:
    """Mean next-token cross-entropy over the response tokens of a teacher-forced batch."""
    inputs = adapter.to_device(batch.inputs)
    logits = model(**inputs, use_cache=False).logits
    rows, cols = [], []
    for b, sl in enumerate(batch.slices):
        pos = torch.as_tensor(sl["response"], dtype=torch.long)
        rows.append(torch.full_like(pos, b))
        cols.append(pos)
    r, c = torch.cat(rows).to(logits.device), torch.cat(cols).to(logits.device)
    # position p's token is predicted from the logits at p - 1
    pred = adapter.postprocess_logits(logits[r, c - 1]).float()
    target = inputs["input_ids"][r, c]
    return torch.nn.functional.cross_entropy(pred, target)


def finetune_lora(
    adapter: LALMAdapter,
    items: Sequence[TrainItem],
    recipe: LoraRecipe,
    *,
    checkpoint_dir: str | Path | None = None,
) -> FinetuneResult:
    """Train LoRA adapters on ``items`` in place of ``adapter.model``'s chosen layers (base frozen).

    ``adapter.model`` must be the base model as loaded; it is wrapped, not
    copied (peft injects the adapters into its modules; the base weights stay
    as they were and :func:`peft.PeftModel.unload` gives the base back).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import get_linear_schedule_with_warmup

    if not items:
        raise LalmAuditError("LoRA fine-tuning needs at least one member; the split has none")
    empty = [it.item_id for it in items if not it.text.strip()]
    if empty:
        raise LalmAuditError(
            f"members {empty[:3]} have empty transcripts: nothing to learn. Fix: drop them from the pool"
        )
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    base = adapter.model
    dtype = training_dtype(recipe, adapter.device)
    base.to(dtype)
    if recipe.gradient_checkpointing:
        # non-reentrant: frozen inputs need no requires_grad hook, and peft's adapters still get grads
        base.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
    lora = LoraConfig(
        r=recipe.rank,
        lora_alpha=recipe.alpha,
        lora_dropout=recipe.dropout,
        target_modules=target_modules(base, recipe),
        bias="none",
    )
    # peft keeps the trainable adapter weights in float32 over a bfloat16 base (mixed precision):
    # bf16 updates of small LoRA weights would round away
    model = get_peft_model(base, lora)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    per_epoch = math.ceil(sum(it.repetitions for it in items) / recipe.batch_size)
    total = min(recipe.max_steps or per_epoch * recipe.epochs, per_epoch * recipe.epochs)
    sched = get_linear_schedule_with_warmup(opt, round(recipe.warmup_fraction * total), total)
    result = FinetuneResult(model=model, data_hash=data_hash(items))
    t0 = time.perf_counter()
    model.train()
    for epoch in range(recipe.epochs):
        order = epoch_order(items, rng)
        losses = []
        for start in range(0, len(order), recipe.batch_size):
            if result.steps >= total:
                break
            chosen = [items[i] for i in order[start : start + recipe.batch_size]]
            batch = adapter.encode_teacher_forced(
                [it.samples for it in chosen], recipe.prompt, [it.text for it in chosen]
            )
            loss = response_loss(model, adapter, batch)
            if not torch.isfinite(loss):
                raise LalmAuditError(
                    f"LoRA step {result.steps}: the loss is {loss.item()}; lower "
                    "controlled.finetune.learning_rate or train in float32"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            result.steps += 1
            losses.append(float(loss.detach()))
        result.step_losses.extend(losses)
        if losses:
            result.epoch_losses.append(float(np.mean(losses)))
            log.info("LoRA epoch %d: mean response loss %.4f", epoch + 1, result.epoch_losses[-1])
        if checkpoint_dir is not None and losses:
            path = Path(checkpoint_dir) / f"adapter_epoch{epoch + 1}"
            _save_lora(model, path)
            result.checkpoints.append(path)
        if result.steps >= total:
            break
    model.eval()
    if recipe.gradient_checkpointing:
        base.activation_checkpointing_disable()
    result.seconds = time.perf_counter() - t0
    return result


def _save_lora(model: Any, path: Path) -> None:
    # the base's embeddings and tied head are never trained: peft would otherwise copy them
    # into the adapter file whenever the head is adapted (1.2 GB for a 150k x 4096 vocabulary)
    model.save_pretrained(path, safe_serialization=True, save_embedding_layers=False)


def save_adapter(
    result: FinetuneResult,
    out_dir: str | Path,
    *,
    base_model: dict[str, Any],
    recipe: LoraRecipe,
    split_digest: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``adapter_model.safetensors`` + ``adapter_config.json`` and the provenance beside them.

    ``base_model`` is the base's provenance (``LoadedModel.provenance()``: alias, family,
    source, revision); loading refuses a base whose revision differs.
    """
    import peft
    import transformers

    out = Path(out_dir)
    _save_lora(result.model, out)
    record = {
        "base_model": base_model,
        "recipe": recipe.model_dump(mode="json"),
        "data_hash": result.data_hash,
        "split_digest": split_digest,
        "steps": result.steps,
        "epoch_losses": result.epoch_losses,
        "step_losses": result.step_losses,
        "train_seconds": round(result.seconds, 3),
        "trained_dtype": str(result.model.dtype).removeprefix("torch."),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        # folder names inside the adapter folder, so the folder can move
        "checkpoints": [p.name for p in result.checkpoints if p.parent == out],
        **(extra or {}),
    }
    (out / PROVENANCE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    return out


def read_adapter_provenance(adapter_dir: str | Path) -> dict[str, Any]:
    """The adapter's provenance; an epoch checkpoint inside an adapter folder has its parent's."""
    path = Path(adapter_dir) / PROVENANCE_FILE
    parent = Path(adapter_dir).parent / PROVENANCE_FILE
    if not path.is_file() and parent.is_file():
        record = json.loads(parent.read_text())
        if Path(adapter_dir).name in record.get("checkpoints", []):
            return record
    if not path.is_file():
        raise LalmAuditError(
            f"{adapter_dir} holds no {PROVENANCE_FILE}: it is not an adapter written by "
            "`lalm-audit controlled-finetune`. Fix: point to that command's output folder"
        )
    return json.loads(path.read_text())


def load_adapter(base: Any, adapter_dir: str | Path, *, base_revision: str | None = None) -> Any:
    """The base model with the saved adapter attached (eval mode); checks the base revision."""
    from peft import PeftModel

    record = read_adapter_provenance(adapter_dir)
    want = record["base_model"].get("model_revision")
    if base_revision is not None and want is not None and want != base_revision:
        raise LalmAuditError(
            f"adapter {adapter_dir} was trained on base revision {want}, the loaded base is "
            f"{base_revision}. Fix: load the base model at revision {want}"
        )
    return PeftModel.from_pretrained(base, str(adapter_dir)).eval()


def save_merged(peft_model: Any, processor: Any, out_dir: str | Path) -> Path:
    """Write base + adapter merged into one plain checkpoint (safetensors) with its processor.

    The merge runs on a copy of the weights, so the peft model (and its base)
    are unchanged after this returns; stages that load a plain model through
    ``from_pretrained`` can score the fine-tune this way.
    """
    import copy

    out = Path(out_dir)
    merged = copy.deepcopy(peft_model).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out
