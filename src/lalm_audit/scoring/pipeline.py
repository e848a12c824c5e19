"""Two-stage scoring of one shard of items with one loaded model (pure of file I/O).

- Stage 1 (:func:`generate`): the model's greedy response to audio + prompt,
  batched with left padding, clips grouped by duration.
- Stage 2 (:func:`score`): one teacher-forced pass over audio + prompt +
  response per item (a generated response as its own token ids, a transcript
  as text), batched (right padding, grouped by length); the hidden
  states of the positions each slice needs go through the output head
  ``chunk`` positions at a time and straight into :func:`token_stats`, so no
  [batch, length, vocabulary] tensor is ever held.

Position convention (``TOKEN_STATS``): a text token at index i of the full
sequence is scored by the distribution at i - 1 (the one that predicts it);
an audio placeholder at index i by the distribution at i itself (what the
model expects after reading that audio frame; y_t is its argmax).
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from lalm_audit.logs import progress
from lalm_audit.models.base import SLICES, Clip, LALMAdapter, TeacherForcedBatch
from lalm_audit.schemas import TOKEN_STAT_COLUMNS
from lalm_audit.scoring.stats import STAT_NAMES, token_stats

log = logging.getLogger(__name__)

StatsFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
#: What stage 2 scores as an item's response: a text, tokenized inside the chat template
#: (the ``transcript``), or the token ids a model generated (scored as they are).
ResponseInput = str | Sequence[int] | np.ndarray


# --------------------------------------------------------------------------- items


def base_item_id(item_id: str) -> str:
    """The original item of a derived one (``<item_id>__<condition>`` -> ``<item_id>``)."""
    return item_id.split("__", 1)[0]


def shard_of(item_id: str, n_shards: int) -> int:
    """Stable shard of an item (crc32 of its base id): the same whatever the manifest's order."""
    return zlib.crc32(base_item_id(item_id).encode()) % n_shards


def select_shard(manifest: pd.DataFrame, shard: int, n_shards: int) -> pd.DataFrame:
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    keep = manifest["item_id"].map(lambda i: shard_of(i, n_shards) == shard)
    return manifest.loc[keep].sort_values("item_id").reset_index(drop=True)


def length_batches(lengths: Sequence[float], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding); deterministic order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


# --------------------------------------------------------------------------- stage 1


def generate(
    adapter: LALMAdapter,
    clips: Sequence[Clip],
    *,
    prompt: str,
    max_new_tokens: int,
    batch_size: int,
) -> pd.DataFrame:
    """Greedy responses for ``clips`` (a ``GENERATIONS`` frame, sorted by item id)."""
    rows: list[dict[str, Any]] = []
    batches = length_batches([c.samples.shape[0] for c in clips], batch_size)
    for idx in progress(batches, desc="stage 1 (generate) batches"):
        batch = [clips[i] for i in idx]
        ids = adapter.generate([c.samples for c in batch], prompt, max_new_tokens)
        for c, r in zip(batch, ids, strict=True):
            rows.append(
                {
                    "item_id": c.item_id,
                    "response": adapter.decode(r),
                    "response_token_ids": np.asarray(r, dtype=np.int32),
                    "prompt": prompt,
                    "audio_window_truncated": c.truncated,
                }
            )
    cols = ["item_id", "response", "response_token_ids", "prompt", "audio_window_truncated"]
    return pd.DataFrame(rows, columns=cols).sort_values("item_id").reset_index(drop=True)


# --------------------------------------------------------------------------- stage 2


def stats_function(device: torch.device, mode: str = "auto") -> StatsFn:
    """:func:`token_stats`, compiled with ``torch.compile`` when ``mode`` says so (auto: on CUDA).

    Compilation fuses the ~20 passes over the vocabulary into a few kernels;
    if it fails, the eager function is used and a warning says so.
    """
    if mode == "never" or (mode == "auto" and device.type != "cuda"):
        return token_stats
    from lalm_audit.scoring.stats import _token_stats

    compiled = torch.compile(_token_stats, dynamic=True)
    state = {"ok": True}

    def fn(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        if state["ok"]:
            try:
                return compiled(logits, targets.to(logits.device).long())
            except Exception as exc:  # compilation is an optimization, never a failure
                log.warning("torch.compile of the statistics failed (%s); using eager", exc)
                state["ok"] = False
        return token_stats(logits, targets)

    return fn


def _is_text(r: ResponseInput) -> bool:
    return isinstance(r, str)


def _response_key(r: ResponseInput) -> bytes:
    if _is_text(r):
        return b"text:" + r.encode("utf-8")  # type: ignore[union-attr]
    return b"ids:" + np.asarray(r, dtype=np.int64).tobytes()


def _response_length(r: ResponseInput) -> int:
    return len(r)  # characters or tokens: only orders items for batching


def score(
    adapter: LALMAdapter,
    clips: Sequence[Clip],
    responses: Mapping[str, ResponseInput],
    *,
    prompt: str,
    batch_size: int,
    chunk: int = 256,
    stats_fn: StatsFn = token_stats,
) -> pd.DataFrame:
    """Stage 2 for ``clips`` with ``responses[item_id]`` as the response (a ``TOKEN_STATS`` frame).

    A response is a text (tokenized after the prompt, as the ``transcript``
    is) or the token ids the model generated, which are scored as they are:
    never decoded and tokenized again (see :meth:`LALMAdapter.encode_generated`).

    Items with identical inputs (same samples, same response) are scored once
    and share the result: floating-point sums depend on a batch's other
    members, so scoring twins in different batches would give them scores
    that differ in the last bits, and an experiment built on identical inputs
    (fixed-length silence with transcript scoring) must give identical scores.
    """
    keys = [
        hashlib.sha1(c.samples.tobytes() + _response_key(responses[c.item_id])).hexdigest()
        for c in clips
    ]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    unique = sorted(first.values())
    lengths = [
        clips[i].samples.shape[0] / adapter.sampling_rate * 50
        + _response_length(responses[clips[i].item_id])
        for i in unique
    ]
    by_key: dict[str, dict[str, dict[str, Any]]] = {}
    for idx in progress(length_batches(lengths, batch_size), desc="stage 2 (score) batches"):
        batch = [clips[unique[i]] for i in idx]
        per_item = score_batch(
            adapter,
            [c.samples for c in batch],
            prompt,
            [responses[c.item_id] for c in batch],
            chunk=chunk,
            stats_fn=stats_fn,
        )
        for i, slices in zip(idx, per_item, strict=True):
            by_key[keys[unique[i]]] = slices
    if len(unique) < len(clips):
        log.info("stage 2: %d items, %d distinct inputs scored", len(clips), len(unique))
    rows: list[dict[str, Any]] = []
    for c, k in zip(clips, keys, strict=True):
        for name in SLICES:
            rows.append({"item_id": c.item_id, "slice": name, **by_key[k][name]})
    cols = ["item_id", "slice", "n_tokens", "token_ids", "text", *TOKEN_STAT_COLUMNS]
    df = pd.DataFrame(rows, columns=cols)
    df["slice"] = pd.Categorical(df["slice"], categories=list(SLICES), ordered=True)
    df = df.sort_values(["item_id", "slice"]).reset_index(drop=True)
    df["slice"] = df["slice"].astype(str)
    df["n_tokens"] = df["n_tokens"].astype(np.int32)
    return df


def encode_responses(
    adapter: LALMAdapter,
    wavs: Sequence[np.ndarray],
    prompt: str,
    responses: Sequence[ResponseInput],
) -> TeacherForcedBatch:
    """One batch's teacher-forced encoding: texts through the chat template, ids as they are."""
    kinds = {_is_text(r) for r in responses}
    if len(kinds) > 1:
        raise ValueError("a stage-2 batch mixes response texts and response token ids")
    if kinds == {True}:
        return adapter.encode_teacher_forced(wavs, prompt, list(responses))  # type: ignore[arg-type]
    return adapter.encode_generated(wavs, prompt, list(responses))  # type: ignore[arg-type]


def score_batch(
    adapter: LALMAdapter,
    wavs: Sequence[np.ndarray],
    prompt: str,
    responses: Sequence[ResponseInput],
    *,
    chunk: int = 256,
    stats_fn: StatsFn = token_stats,
) -> list[dict[str, dict[str, Any]]]:
    """Per item, per slice: ``n_tokens``, ``token_ids``, ``text`` and every statistic (numpy)."""
    enc = encode_responses(adapter, wavs, prompt, responses)
    hidden = adapter.hidden_states(enc)  # [B, L, H] on the model's device
    ids = enc.input_ids
    rows_b, pos, tgt, owner = [], [], [], []
    for b, sl in enumerate(enc.slices):
        for name in SLICES:
            tok = sl[name]
            if name == "audio":
                p, t = tok, np.full(tok.shape, -1)
            else:
                if tok.size and tok.min() < 1:
                    raise RuntimeError(
                        f"{adapter.family}: a {name} token at position 0 has no predictor"
                    )
                p, t = tok - 1, ids[b, tok].numpy()
            rows_b.append(np.full(tok.shape, b))
            pos.append(p)
            tgt.append(t)
            owner.append((b, name, tok.size))
    flat_b = torch.from_numpy(np.concatenate(rows_b).astype(np.int64))
    flat_p = torch.from_numpy(np.concatenate(pos).astype(np.int64))
    targets = torch.from_numpy(np.concatenate(tgt).astype(np.int64))
    h = hidden[flat_b.to(hidden.device), flat_p.to(hidden.device)]
    stats = _chunked(adapter, h, targets, chunk, stats_fn)

    out: list[dict[str, dict[str, Any]]] = [{} for _ in wavs]
    start = 0
    for b, name, n in owner:
        seg = {k: v[start : start + n] for k, v in stats.items()}
        start += n
        tok_ids = seg["token_ids"].astype(np.int32)
        if name == "response" and not _is_text(responses[b]):
            given = np.asarray(responses[b], dtype=np.int64).reshape(-1)
            if not np.array_equal(tok_ids.astype(np.int64), given):
                raise RuntimeError(
                    f"{adapter.family}: scored response ids differ from the generated ones"
                )
        text = "" if name == "audio" else adapter.decode(tok_ids.tolist())
        out[b][name] = {
            "n_tokens": n,
            "token_ids": tok_ids,
            "text": text,
            **{k: seg[k].astype(np.float32) for k in STAT_NAMES},
        }
    return out


def _chunked(
    adapter: LALMAdapter, h: torch.Tensor, targets: torch.Tensor, chunk: int, stats_fn: StatsFn
) -> dict[str, np.ndarray]:
    parts: list[dict[str, torch.Tensor]] = []
    with torch.inference_mode():
        for i in range(0, h.shape[0], chunk):
            logits = adapter.logits_from_hidden(h[i : i + chunk])
            parts.append({k: v.cpu() for k, v in stats_fn(logits, targets[i : i + chunk]).items()})
    if not parts:
        return {
            "token_ids": np.zeros(0, np.int64),
            **{k: np.zeros(0, np.float32) for k in STAT_NAMES},
        }
    return {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}
