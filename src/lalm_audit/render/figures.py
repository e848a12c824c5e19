"""Figures from result tables: each function takes data frames and returns a matplotlib Figure.

Saving is separate (:func:`lalm_audit.render.style.save`, the one saver), so the report stage can collect the
same figures into a Snakemake report. Matplotlib runs on the Agg backend (no
display needed); saved files carry no timestamps, so reruns are byte-stable.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

NEUTRAL_COLOR = "#1f4e9c"


def heatmap_figure(
    mat: pd.DataFrame,
    kind: pd.DataFrame,
    *,
    classifiers: Sequence[str] = (),
    title: str | None = None,
) -> Figure:
    """The cross-dataset heatmap: blind AUC of every pair of sides.

    ``mat`` is the AUC matrix and ``kind`` the pair kinds, side by side
    (``lalm_audit.heatmap.heatmap_matrix`` of the heatmap table, for ``"auc"``
    and ``"pair_kind"``); ``classifiers`` names the checks in the title.

    Cells run from white (0.5, chance) to dark red (1.0, perfectly separable).
    Membership-neutral cells (two member sets) are outlined in blue: any red
    inside a blue box is a distribution shift that no membership signal can
    explain. Within-dataset cells (a dataset's own members vs non-members)
    are outlined with a dashed line.
    """
    sides = list(mat.index)
    n = len(sides)
    size = max(4.5, 0.75 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    values = mat.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(values), cmap="Reds", vmin=0.5, vmax=1.0)
    ax.set_facecolor("#eeeeee")  # the diagonal (a side against itself) stays grey
    for i in range(n):
        for j in range(n):
            v = values[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.8 else "black")  # fmt: skip
            k = kind.iat[i, j]
            if k == "membership-neutral":
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.2, ec=NEUTRAL_COLOR)
                )
            elif k == "within-dataset":
                ax.add_patch(
                    Rectangle(
                        (j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=1.0, ls="--", ec="black"
                    )
                )
    ax.set_xticks(range(n), sides, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), sides, fontsize=8)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("blind AUC (0.5 = indistinguishable)")
    ax.legend(
        handles=[
            Patch(fill=False, ec=NEUTRAL_COLOR, lw=2.2, label="membership-neutral (two member sets)"),
            Patch(fill=False, ec="black", ls="--", label="within-dataset (members vs non-members)"),
        ],
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False,
    )  # fmt: skip
    clf = ", ".join(sorted(set(classifiers)))
    ax.set_title(
        title or f"Blind AUC between groups of items, no model ({clf})", fontsize=10, pad=24
    )
    fig.tight_layout()
    return fig
