"""Load a configured model through ``from_pretrained`` (hub id or local folder), as a user would.

The demo models and real checkpoints take the same path: safetensors only,
``trust_remote_code`` only where the model's config says so, and
``local_files_only`` when the config or ``HF_HUB_OFFLINE`` asks for it. The
revision recorded in every artifact is the resolved hub commit when there is
one, else a hash of the weight files.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lalm_audit.config import ModelConfig
from lalm_audit.errors import LalmAuditError
from lalm_audit.models.base import LALMAdapter
from lalm_audit.models.families import ADAPTERS

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """An adapter around a loaded model, with what provenance records about it."""

    alias: str
    adapter: LALMAdapter
    revision: str
    spec: ModelConfig

    def provenance(self) -> dict[str, Any]:
        return {
            "model": self.alias,
            "model_family": self.spec.family,
            "model_source": self.spec.path_or_hub_id,
            "model_revision": self.revision,
            "dtype": str(self.adapter.model.dtype).removeprefix("torch."),
            "device": str(self.adapter.device),
        }


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def weights_hash(folder: str | Path) -> str:
    """sha256 over the safetensors files of a local checkpoint (name and content, sorted by name)."""
    h = hashlib.sha256()
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise LalmAuditError(f"no *.safetensors weights in {folder}")
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                h.update(block)
    return "sha256:" + h.hexdigest()[:16]


def offline(local_files_only: bool) -> bool:
    return local_files_only or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false")


def load_model(alias: str, spec: ModelConfig, *, local_files_only: bool = False) -> LoadedModel:
    """Load model + processor for ``alias`` and wrap them in the family's adapter (eval mode)."""
    import transformers

    if spec.family not in ADAPTERS:
        raise LalmAuditError(
            f"model {alias!r}: family {spec.family!r} has no adapter (known: {sorted(ADAPTERS)})"
        )
    cls = ADAPTERS[spec.family]
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    local = Path(spec.path_or_hub_id).is_dir()
    common: dict[str, Any] = {
        "revision": spec.revision,
        "trust_remote_code": spec.trust_remote_code,
        "local_files_only": offline(local_files_only) or local,
    }
    model_kw: dict[str, Any] = {**common, "dtype": dtype, "use_safetensors": True}
    if spec.attn_implementation:
        model_kw["attn_implementation"] = spec.attn_implementation
    try:
        # the processor first: it is small, and a missing optional dependency fails fast
        processor = cls.load_processor(spec.path_or_hub_id, **common)
        model_cls = getattr(transformers, cls.model_class)
        model = model_cls.from_pretrained(spec.path_or_hub_id, **model_kw)
    except (OSError, ValueError) as exc:
        where = "folder" if local else "hub id"
        raise LalmAuditError(
            f"model {alias!r}: cannot load {spec.family} from {where} {spec.path_or_hub_id!r}: "
            f"{exc}. Fix: check path_or_hub_id/revision, or run without local_files_only to download"
        ) from None
    model = model.to(device).eval()
    revision = getattr(model.config, "_commit_hash", None)
    if local or not revision:
        revision = weights_hash(spec.path_or_hub_id) if local else (revision or "unknown")
    log.info(
        "loaded %s (%s) from %s, revision %s, %s on %s",
        alias,
        spec.family,
        spec.path_or_hub_id,
        revision,
        dtype,
        device,
    )
    return LoadedModel(alias, cls(model, processor, device=device), revision, spec)
