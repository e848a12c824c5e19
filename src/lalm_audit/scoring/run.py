"""Scoring jobs: read a manifest shard, run one stage with one model, write a Parquet artifact.

Each (model, dataset, condition, shard) is one job; a killed job loses at most
its shard, and a shard whose output exists is not recomputed (Snakemake, or
``skip_existing`` in :func:`run_stage_shards`). :func:`merge_shards` joins a
stage's shards into the table the next stages read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from lalm_audit import io
from lalm_audit.config import Config
from lalm_audit.errors import LalmAuditError
from lalm_audit.models.base import load_clips
from lalm_audit.schemas import GENERATIONS, REJECTED, TOKEN_STATS
from lalm_audit.scoring import paths
from lalm_audit.scoring.merge import merge_shards
from lalm_audit.scoring.pipeline import (
    ResponseInput,
    base_item_id,
    generate,
    score,
    select_shard,
    stats_function,
)

log = logging.getLogger(__name__)

Response = Literal["generated", "transcript", "regenerated"]


def _threads() -> None:
    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit():
        torch.set_num_threads(int(n))


def _load(cfg: Config, model: str, loaded: Any = None) -> Any:
    if loaded is not None:
        return loaded
    from lalm_audit.models import load_model

    if model not in cfg.models:
        raise LalmAuditError(f"model {model!r} is not configured (known: {list(cfg.models)})")
    return load_model(model, cfg.models[model], local_files_only=cfg.scoring.local_files_only)


def _prov(cfg: Config, stage: str, loaded: Any, **extra: Any) -> dict[str, Any]:
    spec = cfg.models[loaded.alias]
    params = {"model": spec.model_dump(mode="json"), **extra}
    # no seed: greedy decoding and scoring are deterministic, and a seed change must not rerun
    # the model passes
    return io.provenance(stage, params, prompt=spec.prompt, **loaded.provenance(), **extra)


def run_generate(
    cfg: Config,
    model: str,
    dataset: str,
    condition: str,
    shard: int,
    manifest_path: str | Path,
    out: str | Path,
    rejected_out: str | Path,
    *,
    loaded: Any = None,
) -> pd.DataFrame:
    """Stage 1 for one shard: ``GENERATIONS`` to ``out``, clips the model cannot take to ``rejected_out``."""
    _threads()
    loaded = _load(cfg, model, loaded)
    spec = cfg.models[model]
    n = cfg.scoring.shards
    rows = select_shard(io.read_table(manifest_path), shard, n)
    clips, rejected = load_clips(loaded.adapter, rows, spec.long_clip_policy, dataset=dataset)
    gen = generate(
        loaded.adapter,
        clips,
        prompt=spec.prompt,
        max_new_tokens=spec.max_new_tokens,
        batch_size=spec.batch_size,
    )
    n_trunc = int(gen["audio_window_truncated"].sum())
    log.info(
        "%s/%s/%s shard %d/%d: %d items = %d generated (%d truncated to the audio window) + %d rejected",
        model,
        dataset,
        condition,
        shard,
        n,
        len(rows),
        len(gen),
        n_trunc,
        len(rejected),
    )
    prov = _prov(
        cfg, "generate", loaded, dataset=dataset, condition=condition, shard=shard, shards=n
    )
    io.write_table(gen, out, schema=GENERATIONS, prov=prov)
    rej = pd.DataFrame(rejected, columns=list(REJECTED.columns))
    io.write_table(rej, rejected_out, schema=REJECTED, prov=prov)
    return gen


def response_inputs(
    response: Response, rows: pd.DataFrame, generations: pd.DataFrame | None
) -> dict[str, ResponseInput]:
    """What stage 2 scores for each item of ``rows`` (items without a response are left out).

    ``transcript``: the manifest's text (tokenized inside the chat template, which is
    what a transcript is). ``generated`` / ``regenerated``: stage 1's
    ``response_token_ids``, the model's own tokens, never a re-tokenization of their
    decoded text (which differs from them at some BPE merges).
    """
    if response == "transcript":
        return dict(zip(rows["item_id"], rows["text"], strict=True))
    if generations is None:
        raise ValueError(f"response {response!r} needs a generations table")
    by_id = {
        i: np.asarray(ids, dtype=np.int32)
        for i, ids in zip(generations["item_id"], generations["response_token_ids"], strict=True)
    }
    out: dict[str, ResponseInput] = {}
    for item in rows["item_id"]:
        # 'generated' on a perturbed condition scores the response to the ORIGINAL audio.
        ids = by_id.get(item, by_id.get(base_item_id(item)))
        if ids is not None:
            out[item] = ids
    return out


def run_score(
    cfg: Config,
    model: str,
    dataset: str,
    condition: str,
    response: Response,
    shard: int,
    manifest_path: str | Path,
    out: str | Path,
    *,
    generations_path: str | Path | None = None,
    loaded: Any = None,
) -> pd.DataFrame:
    """Stage 2 for one shard: the ``TOKEN_STATS`` of every item that has a response."""
    _threads()
    loaded = _load(cfg, model, loaded)
    spec = cfg.models[model]
    n = cfg.scoring.shards
    rows = select_shard(io.read_table(manifest_path), shard, n)
    gens = io.read_table(generations_path) if generations_path else None
    inputs = response_inputs(response, rows, gens)
    missing = len(rows) - len(inputs)
    rows = rows[rows["item_id"].isin(inputs)]
    clips, rejected = load_clips(loaded.adapter, rows, spec.long_clip_policy, dataset=dataset)
    df = score(
        loaded.adapter,
        clips,
        inputs,
        prompt=spec.prompt,
        batch_size=spec.batch_size,
        chunk=cfg.scoring.chunk_positions,
        stats_fn=stats_function(loaded.adapter.device, cfg.scoring.compile_stats),
    )
    log.info(
        "%s/%s/%s/%s shard %d/%d: %d items scored, %d without a response (rejected in stage 1), "
        "%d rejected here",
        model,
        dataset,
        condition,
        response,
        shard,
        n,
        df["item_id"].nunique(),
        missing,
        len(rejected),
    )
    prov = _prov(
        cfg,
        "score",
        loaded,
        dataset=dataset,
        condition=condition,
        response=response,
        shard=shard,
        shards=n,
        chunk_positions=cfg.scoring.chunk_positions,
    )
    io.write_table(df, out, schema=TOKEN_STATS, prov=prov)
    return df


def run_score_responses(
    cfg: Config,
    model: str,
    dataset: str,
    condition: str,
    responses: Sequence[Response],
    shard: int,
    manifest_path: str | Path,
    outs: Sequence[str | Path],
    *,
    root: str | Path = ".",
) -> list[pd.DataFrame]:
    """Stage 2 for one shard and several responses, loading the model once."""
    loaded = _load(cfg, model)
    return [
        run_score(
            cfg,
            model,
            dataset,
            condition,
            response,
            shard,
            manifest_path,
            out,
            generations_path=paths.generations_path(model, dataset, condition, response, root),
            loaded=loaded,
        )
        for response, out in zip(responses, outs, strict=True)
    ]


def run_stage_shards(
    cfg: Config,
    stage: Literal["generate", "score"],
    model: str,
    dataset: str,
    *,
    condition: str = "original",
    responses: Sequence[Response] = ("generated", "transcript"),
    shards: Sequence[int] | None = None,
    root: str | Path = ".",
    skip_existing: bool = True,
) -> list[Path]:
    """Shards of one stage for (model, dataset, condition) with one model load.

    The CLI's replay path; paths follow the workflow's layout under ``root``.
    Shards whose output exists are not recomputed when ``skip_existing``
    (a killed run resumes where it stopped). Stage 1's shards are merged once
    every shard exists (later stages read ``generations.parquet``); stage 2's
    shards are the artifact (``paths.token_stats_shards``), read together by
    the indicator stage.
    """
    n = cfg.scoring.shards
    todo = range(n) if shards is None else shards
    manifest = paths.manifest_path(dataset, condition, root)
    state: dict[str, Any] = {"loaded": None}

    def loaded() -> Any:
        state["loaded"] = _load(cfg, model, state["loaded"])
        return state["loaded"]

    def needed(p: Path) -> bool:
        if skip_existing and p.exists():
            log.info("%s exists: not recomputed", p)
            return False
        return True

    written: list[Path] = []
    if stage == "generate":
        shard_files = [paths.generation_shard(model, dataset, condition, i, root) for i in range(n)]
        for i in todo:
            p = shard_files[i]
            if needed(p):
                run_generate(
                    cfg,
                    model,
                    dataset,
                    condition,
                    i,
                    manifest,
                    p,
                    paths.rejected_path(p),
                    loaded=loaded(),
                )
        out = paths.generations_table(model, dataset, condition, root)
        if all(p.exists() for p in shard_files):
            merge_shards(shard_files, out, GENERATIONS)
            merge_shards(
                [paths.rejected_path(p) for p in shard_files], paths.rejected_path(out), REJECTED
            )
            written.append(out)
        return written
    for resp in responses:
        shard_files = [
            paths.token_stats_shard(model, dataset, condition, resp, i, root) for i in range(n)
        ]
        gen = paths.generations_path(model, dataset, condition, resp, root)
        for i in todo:
            p = shard_files[i]
            if needed(p):
                run_score(
                    cfg,
                    model,
                    dataset,
                    condition,
                    resp,
                    i,
                    manifest,
                    p,
                    generations_path=gen,
                    loaded=loaded(),
                )
        written += [p for p in shard_files if p.exists()]
    return written
