"""Cross-dataset heatmap on constructed datasets whose pairwise answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lalm_audit.config import BlindConfig, EvaluationConfig
from lalm_audit.features import feature_set
from lalm_audit.heatmap import heatmap, heatmap_matrix, make_sides
from lalm_audit.render.figures import heatmap_figure
from lalm_audit.render.style import save

CFG = BlindConfig(heatmap={"folds": 4})
EVAL = EvaluationConfig(bootstrap=200)


def dataset(name: str, member_mean: float, nonmember_mean: float, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n // 2)
    ids = [f"{name}-{k}" for k in range(n)]
    x = rng.normal(np.where(y == 1, member_mean, nonmember_mean), 1.0)
    tab = pd.DataFrame({"item_id": ids, "feature_error": None, "x": x, "z": rng.normal(size=n)})
    return feature_set(pd.DataFrame({"item_id": ids, "label": y}), {"spectral": tab}, dataset=name)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    sets = {
        "a": dataset("a", 0.0, 0.0, seed=1),  # matched: members ~ non-members
        "b": dataset("b", 6.0, 0.0, seed=2),  # members of b far from everything else
    }
    return heatmap(sets, CFG, EVAL, seed=0)


def test_sides_and_pairs_cover_every_dataset_side(table):
    sides = ["a:members", "a:non-members", "b:members", "b:non-members"]
    mat = heatmap_matrix(table)
    assert list(mat.index) == sides and list(mat.columns) == sides
    assert len(table) == 4 * 3  # every ordered pair, no diagonal
    assert np.isnan(np.diag(mat.to_numpy(float))).all()
    assert np.allclose(mat.to_numpy(float), mat.to_numpy(float).T, equal_nan=True)


def test_known_pairs_read_as_expected(table):
    t = table.set_index(["side_a", "side_b"])
    neutral = t.loc[("a:members", "b:members")]
    assert neutral["pair_kind"] == "membership-neutral"
    assert neutral["auc"] > 0.98  # two member sets, fully separable: a shift, not membership
    assert t.loc[("a:members", "a:non-members"), "pair_kind"] == "within-dataset"
    matched = t.loc[("a:members", "a:non-members")]
    assert matched["auc_lo"] <= 0.5 <= matched["auc_hi"]
    assert t.loc[("a:non-members", "b:non-members"), "pair_kind"] == "cross-dataset"
    assert t.loc[("a:non-members", "b:non-members"), "auc_lo"] <= 0.5


def test_dataset_pairing_has_one_side_per_dataset():
    sets = {"a": dataset("a", 0.0, 0.0), "b": dataset("b", 3.0, 3.0)}
    assert [s.name for s in make_sides(sets, "dataset")] == ["a", "b"]
    cfg = CFG.model_copy(update={"heatmap": CFG.heatmap.model_copy(update={"pairing": "dataset"})})
    t = heatmap(sets, cfg, EVAL, seed=0)
    assert len(t) == 2 and (t["auc"] > 0.9).all() and (t["label_a"] == "all").all()


def draw(table):
    return heatmap_figure(
        heatmap_matrix(table), heatmap_matrix(table, "pair_kind"), classifiers=table["classifier"]
    )


def test_figure_marks_membership_neutral_cells(table, tmp_path):
    fig = draw(table)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if p.get_linewidth() > 2]
    assert len(boxes) == 2  # (a:members, b:members) and its mirror
    for ext in ("png", "pdf"):
        save(draw(table), tmp_path / f"h.{ext}", tight=True)
        first = (tmp_path / f"h.{ext}").read_bytes()
        save(draw(table), tmp_path / f"h.{ext}", tight=True)
        assert (tmp_path / f"h.{ext}").read_bytes() == first  # no timestamps: byte-stable
