"""Modality disentanglement: derived items whose audio is silenced, replaced, re-spoken or perturbed.

For a dataset and a condition, every manifest item becomes one derived item
``<item_id>__<condition>`` (re-synthesis: one per rendering,
``<item_id>__<condition>__r<k>``, whose scores are averaged per item), with
the same label and transcript, written as a manifest (``schemas.MANIFEST``)
plus FLAC files. The condition's parameters are recorded in every row
(``meta_params``) and in the file's provenance. A failure on one item is
recorded in the rejected table, so items in = derived items kept + rejected.
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_audit import io
from lalm_audit.audio import load_item, write_audio
from lalm_audit.config import Config, ResynthesisCondition
from lalm_audit.errors import AudioError
from lalm_audit.logs import progress
from lalm_audit.manifest.base import display_path
from lalm_audit.perturb.conditions import apply_condition
from lalm_audit.schemas import MANIFEST, REJECTED, empty_frame

log = logging.getLogger(__name__)

ORIGINAL = "original"


def derived_id(item_id: str, condition: str, rendering: int | None = None) -> str:
    return f"{item_id}__{condition}" + (f"__r{rendering}" if rendering is not None else "")


def rendering_group(item_id: str) -> str:
    """``<item>__<cond>__r<k>`` -> ``<item>__<cond>``: the unit whose renderings are averaged."""
    parts = item_id.split("__")
    return "__".join(parts[:2]) if len(parts) > 2 and parts[2].startswith("r") else item_id


def perturb_dataset(
    cfg: Config, manifest: pd.DataFrame, condition: str, audio_dir: str | Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Derived manifest and rejected items for one condition (writes FLAC files under ``audio_dir``)."""
    cond = cfg.perturb.conditions[condition]
    sr = cfg.audio.sample_rate
    params = json.dumps(cond.model_dump(mode="json"), sort_keys=True)
    tts = None
    if isinstance(cond, ResynthesisCondition) and cond.engine == "transformers":
        from lalm_audit.perturb.tts import TransformersTTS

        tts = TransformersTTS(cond)
    audio_dir = Path(audio_dir)
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows, rejected = [], []
    for item in progress(manifest.to_dict("records"), desc=f"{condition}"):
        rng = np.random.default_rng(
            [cfg.seed, zlib.crc32(f"{item['item_id']}/{condition}".encode())]
        )
        try:
            x = load_item(item, sr)
            renderings = apply_condition(x, sr, item["text"], cond, rng, tts)
        except (AudioError, RuntimeError, ValueError) as exc:
            rejected.append({"dataset": item["dataset"], "item_id": item["item_id"], "source": str(item.get("audio_path") or item["item_id"]),
                             "reason_code": "perturbation_failed", "reason": f"{condition}: {exc}; fix: check the item's audio and the condition's settings"})  # fmt: skip
            continue
        many = len(renderings) > 1
        for k, y in enumerate(renderings):
            new_id = derived_id(item["item_id"], condition, k if many else None)
            path = audio_dir / f"{new_id}.flac"
            write_audio(path, y, sr)
            rows.append({
                **{c: item[c] for c in MANIFEST.columns if c in item},
                **{c: v for c, v in item.items() if c.startswith("meta_")},
                "item_id": new_id,
                "audio_path": display_path(path),
                "audio_bytes": None,
                "audio_format": "FLAC",
                "offset_s": 0.0,
                "duration_s": y.size / sr,
                "source_duration_s": y.size / sr,
                "sample_rate": sr,
                "channels": 1,
                "truncated": False,
                "meta_base_item": item["item_id"],
                "meta_condition": condition,
                "meta_rendering": k,
                "meta_params": params,
            })  # fmt: skip
    kept = pd.DataFrame(rows) if rows else empty_frame(MANIFEST)
    rej = pd.DataFrame(rejected) if rejected else empty_frame(REJECTED)
    return kept, rej


def run_perturb(
    cfg: Config,
    dataset: str,
    condition: str,
    manifest_path: str,
    out: str,
    rejected_out: str,
    audio_dir: str,
) -> dict[str, Any]:
    """Perturbation stage for one (dataset, condition)."""
    manifest = io.read_table(manifest_path)
    kept, rej = perturb_dataset(cfg, manifest, condition, audio_dir)
    n_base = kept["meta_base_item"].nunique() if len(kept) else 0
    if n_base + len(rej) != len(manifest):
        raise AssertionError(
            f"{dataset}/{condition}: {len(manifest)} items in, {n_base} perturbed + {len(rej)} rejected"
        )
    prov = io.provenance("perturb", cfg, dataset=dataset, condition=condition)
    io.write_table(kept, out, schema=MANIFEST, prov=prov)
    io.write_table(rej, rejected_out, schema=REJECTED, prov=prov)
    log.info(
        "%s/%s: %d items in = %d perturbed (%d derived items) + %d rejected",
        dataset,
        condition,
        len(manifest),
        n_base,
        len(kept),
        len(rej),
    )
    return {
        "items_in": len(manifest),
        "perturbed": n_base,
        "derived_items": len(kept),
        "rejected": len(rej),
    }
