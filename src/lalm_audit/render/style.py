"""One look for every figure, and the one saver (PNG, PDF, SVG)."""

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


def save(fig: Figure, *paths: str | Path, tight: bool = False, dpi: int = 150) -> None:
    """Save under each path (format from the extension: .png, .pdf, .svg), atomically, then close.

    The one figure saver of the package. Files carry no timestamps or software
    strings, so a rerun writes the same bytes. ``tight`` crops to the drawn
    area (for figures whose legend sits outside the axes).
    """
    meta = {
        "png": {"Software": None},
        "pdf": {"CreationDate": None, "Producer": None},
        "svg": {"Date": None},
    }
    for p in paths:
        fmt = Path(p).suffix.lstrip(".").lower()
        with atomic_path(p) as tmp:
            fig.savefig(
                tmp, format=fmt, dpi=dpi, metadata=meta.get(fmt),
                bbox_inches="tight" if tight else None,
            )  # fmt: skip
    plt.close(fig)
