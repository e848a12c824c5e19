"""One look for every figure, and saving as PNG + PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files, never windows

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from lalm_audit.io import atomic_path

COLORS = {
    "member": "#c0392b",
    "nonmember": "#2874a6",
    "neutral": "#7f8c8d",
    "chance": "#555555",
    "highlight": "#e67e22",
}


def new_figure(width: float = 6.0, height: float = 4.0, **kw) -> tuple[Figure, object]:
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained", **kw)
    return fig, ax


def save(fig: Figure, *paths: str | Path) -> None:
    """Save under each path (format from the extension, e.g. .png and .pdf), atomically, then close."""
    for p in paths:
        with atomic_path(p) as tmp:
            fmt = Path(p).suffix.lstrip(".")
            # deterministic PDFs: no creation date in the metadata
            meta = (
                {"CreationDate": None}
                if fmt == "pdf"
                else {"Software": None}
                if fmt == "png"
                else None
            )
            fig.savefig(tmp, format=fmt, dpi=150, metadata=meta)
    plt.close(fig)
