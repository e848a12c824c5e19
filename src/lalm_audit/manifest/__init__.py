"""Dataset manifests: one schema (``schemas.MANIFEST``) for every dataset, whatever its layout.

A loader (chosen by ``datasets.<name>.loader``) reads the source into
candidates; :func:`validate_candidates` keeps or rejects each one with a
reason, so that items in = items kept + items rejected, always.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lalm_audit import io
from lalm_audit.config import Config
from lalm_audit.manifest.base import REASONS, Candidate, LoadResult, Rejection
from lalm_audit.manifest.hf_parquet import load_hf_parquet
from lalm_audit.manifest.librispeech import load_librispeech
from lalm_audit.manifest.table import load_table
from lalm_audit.manifest.validate import ManifestResult, validate_candidates
from lalm_audit.schemas import MANIFEST, REJECTED

__all__ = [
    "LOADERS",
    "REASONS",
    "Candidate",
    "LoadResult",
    "ManifestResult",
    "Rejection",
    "build_manifest",
    "format_summary",
    "run_manifest",
    "write_summary_table",
]

log = logging.getLogger(__name__)

LOADERS: dict[str, Callable[[str, Any], LoadResult]] = {
    "table": load_table,
    "librispeech": load_librispeech,
    "hf_parquet": load_hf_parquet,
}


def build_manifest(cfg: Config, name: str, *, workers: int = 1) -> ManifestResult:
    """Load and validate one configured dataset (no files written)."""
    ds = cfg.datasets[name]
    loaded = LOADERS[ds.loader](name, ds)
    # the seed only draws the subsample: an unsampled manifest must not depend on it
    seed = cfg.seed if ds.max_items_per_class is not None else 0
    return validate_candidates(name, ds, cfg.audio, loaded, seed=seed, workers=workers)


def format_summary(s: dict[str, Any]) -> str:
    reasons = ", ".join(f"{k}: {v}" for k, v in s["rejected_by_reason"].items())
    line = (
        f"{s['dataset']}: {s['items_in']} items in = {s['kept']} kept + {s['rejected']} rejected"
        f" ({s['kept_members']} members, {s['kept_nonmembers']} non-members kept"
    )
    line += f"; {s['truncated']} truncated" if s.get("truncated") else ""
    return line + (f"; rejected: {reasons})" if reasons else ")")


def run_manifest(
    cfg: Config,
    name: str,
    out: str | Path,
    rejected: str | Path,
    summary: str | Path,
    *,
    workers: int = 1,
) -> dict[str, Any]:
    """The manifest stage: build one dataset's manifest and write its three outputs."""
    res = build_manifest(cfg, name, workers=workers)
    prov = io.provenance("manifest", cfg, dataset=name)
    io.write_table(res.kept, out, schema=MANIFEST, prov=prov)
    io.write_table(res.rejected, rejected, schema=REJECTED, prov=prov)
    io.write_json({**res.summary, "provenance": prov}, summary)
    log.info("%s", format_summary(res.summary))
    for code, n in res.summary["rejected_by_reason"].items():
        log.info("  %d x %s: %s", n, code, REASONS[code])
    return res.summary


def write_summary_table(summary_paths: list[str], out: str | Path) -> list[dict[str, Any]]:
    """One line per dataset: items in = kept + rejected, written as TSV and printed."""
    rows = []
    for p in summary_paths:
        s = io.read_json(p)
        if s["kept"] + s["rejected"] != s["items_in"]:
            raise AssertionError(f"{p}: counts do not reconcile")
        rows.append(
            {
                "dataset": s["dataset"],
                "items_in": s["items_in"],
                "kept": s["kept"],
                "rejected": s["rejected"],
                "kept_members": s["kept_members"],
                "kept_nonmembers": s["kept_nonmembers"],
                "truncated": s.get("truncated", 0),
                "rejected_by_reason": ";".join(
                    f"{k}={v}" for k, v in s["rejected_by_reason"].items()
                ),
            }
        )
        log.info("%s", format_summary(s))
    header = list(rows[0]) if rows else ["dataset"]
    io.write_text(
        "\n".join(["\t".join(header)] + ["\t".join(str(r[h]) for h in header) for r in rows])
        + "\n",
        out,
    )
    return rows
