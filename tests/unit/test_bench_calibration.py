"""The calibration benchmark: its rate table, its Monte-Carlo intervals, and a short real run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_calibration.py"


@pytest.fixture(scope="module")
def bc():
    spec = importlib.util.spec_from_file_location("bench_calibration", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_calibration"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_clopper_pearson_matches_the_exact_binomial_bounds(bc):
    # 0 of 200: the upper bound solves (1 - p)^200 = 0.025
    lo, hi = bc.clopper_pearson(0, 200)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 200), rel=1e-6)
    # 10 of 200 (5%): the classical interval [0.0243, 0.0900]
    lo, hi = bc.clopper_pearson(10, 200)
    assert (lo, hi) == pytest.approx((0.02425, 0.09004), abs=2e-4)


def test_a_false_positive_row_is_flagged_only_when_its_whole_interval_exceeds_alpha(bc):
    ok = bc.rate_row(
        "w", "shifted", 120, np.r_[np.ones(15), np.zeros(185)], bc.FALSE_POSITIVE, 0.05
    )
    assert ok["rate"] == pytest.approx(0.075) and ok["ci_lo"] < 0.05
    assert ok["nominal"] == "<= 0.05 (false positive)"
    bad = bc.rate_row(
        "w", "shifted", 120, np.r_[np.ones(25), np.zeros(175)], bc.FALSE_POSITIVE, 0.05
    )
    assert bad["ci_lo"] > 0.05 and bad["nominal"].endswith("ABOVE NOMINAL")
    power = bc.rate_row("w", "shifted", 120, np.ones(10, bool), bc.POWER, 0.05)
    assert power["nominal"] == "power" and power["rate"] == 1.0


def test_each_world_gets_the_rows_its_truth_calls_for(bc):
    s = bc.settings_from(bc.parse_args([]))  # alpha 0.05, margin 0.1
    df = pd.DataFrame(
        {
            "world": ["null"] * 4 + ["at margin"] * 2 + ["below margin"] * 2,
            "n": 120,
            "true_auc": [0.5] * 4 + [0.6] * 2 + [0.55] * 2,
            "state": [
                "shifted",
                "clean",
                "clean",
                "inconclusive",
                "clean",
                "shifted",
                "clean",
                "clean",
            ],
        }
    )
    rows = {(r["world"], r["verdict"]): r for r in bc.blind_rows(df, s)}
    assert rows[("null", "shifted")]["kind"] == bc.FALSE_POSITIVE
    assert rows[("null", "shifted")]["rate"] == 0.25
    assert rows[("null", "clean")]["kind"] == bc.POWER and rows[("null", "clean")]["rate"] == 0.5
    # a world shifted by the margin: "clean" is the false positive, "shifted" the power
    assert rows[("at margin", "clean")]["kind"] == bc.FALSE_POSITIVE
    assert rows[("at margin", "shifted")]["kind"] == bc.POWER
    # below the margin "clean" is right: no clean row, shifted is power
    assert ("below margin", "clean") not in rows
    assert rows[("below margin", "shifted")]["kind"] == bc.POWER
    table = bc.markdown(list(rows.values()))
    assert table.splitlines()[0] == "| world | verdict | n | sims | rate | 95% MC CI | nominal |"
    assert (
        "| null | shifted | 120 | 4 | 0.250 | [0.006, 0.806] | <= 0.05 (false positive) |" in table
    )


def test_the_plan_sizes_simulations_by_world_and_size(bc):
    args = bc.parse_args(
        ["--sizes", "120,1000", "--null-sims", "7", "--slow-sims", "5", "--power-sims", "3",
         "--large-sims", "2"]
    )  # fmt: skip
    rows = [(s.name, s.null, s.slow, n, i) for s, n, i in bc.plan(args)]
    plan = pd.DataFrame(rows, columns=["w", "null", "slow", "n", "i"])
    assert not plan.duplicated().any()
    demo = plan[plan.n == 120].groupby(["w", "null", "slow"]).size()
    assert {(null, slow): set(g) for (null, slow), g in demo.groupby(level=[1, 2])} == {
        (True, False): {7},
        (True, True): {5},
        (False, False): {3},
    }
    # larger sizes measure power only: the shifted worlds, --large-sims each
    large = plan[plan.n == 1000]
    assert not large["null"].any() and large.groupby("w").size().eq(2).all()
    assert set(large["w"]) == {w.name for w in (*bc.BLIND_WORLDS, *bc.MODEL_WORLDS) if not w.null}
    assert set(plan["w"]) == {w.name for w in (*bc.BLIND_WORLDS, *bc.MODEL_WORLDS)}
    quick = bc.parse_args(["--quick"])
    assert quick.sizes == "120" and quick.large_sims == 0 and quick.null_sims == 6
    assert bc.parse_args(["--quick", "--null-sims", "2"]).null_sims == 2


def test_a_short_run_through_the_real_stages(bc, tmp_path):
    """Two strong worlds, two simulations each: the closed vocabulary is always called shifted
    (transcripts that occur in one class only must not be grouped away), and a resumed run re-runs
    nothing."""
    raw, out = tmp_path / "raw.csv", tmp_path / "table.md"
    argv = ["--quick", "--worlds", "closed vocabulary,no-signal", "--null-sims", "2", "--jobs", "1",
            "--raw", str(raw), "--out", str(out)]  # fmt: skip
    report, bdf, mdf = bc.run(bc.parse_args([*argv, "--power-sims", "2"]))
    assert len(bdf) == 2 and (bdf["state"] == "shifted").all()
    assert (bdf["auc"] > 0.95).all() and (bdf["p_value"] <= 0.05).all()
    assert len(mdf) == 2 and mdf["agg_state"].isin(["signal", "no signal"]).all()
    assert "| closed vocabulary split by class | shifted | 120 | 2 | 1.000 |" in report
    assert "| no-signal model | aggregate: signal | 120 | 2 |" in report
    assert len(pd.read_csv(raw)) == 4
    again, bdf2, _ = bc.run(bc.parse_args([*argv, "--power-sims", "2"]))  # resumes: all done
    assert len(pd.read_csv(raw)) == 4 and len(bdf2) == 2
    assert again.split("\n\n")[2] == report.split("\n\n")[2]  # the same table
    assert bc.main([*argv, "--report-only"]) == 0 and out.read_text().startswith("# Calibration")


def test_the_readme_calibration_block_is_the_committed_run(bc):
    """The README's calibration rates are rendered from docs/calibration_raw.csv, never typed:
    ``bench_calibration.py --report-only --raw docs/calibration_raw.csv --readme README.md``
    rewrites the block; this fails when the two drift apart."""
    root = PATH.parents[1]
    raw = pd.read_csv(root / "docs" / "calibration_raw.csv")
    block = bc.readme_block(raw, bc.settings_from(bc.parse_args([])))
    m = bc.README_BLOCK.search((root / "README.md").read_text())
    assert m is not None, "README.md lost its <!-- calibration:demo --> block"
    assert m.group("body") == block


def test_the_readme_block_names_the_worst_false_positive_row(bc):
    s = bc.settings_from(bc.parse_args([]))
    df = pd.DataFrame({
        "world": ["null"] * 10 + ["shifted"] * 4, "n": 120, "true_auc": [0.5] * 10 + [0.8] * 4,
        "state": ["shifted"] * 3 + ["inconclusive"] * 7 + ["shifted"] * 4,
        "p_value": [0.05] * 3 + [0.6] * 7 + [0.05] * 4, "auc": 0.6, "detectable_auc": 0.69,
    })  # fmt: skip
    block = bc.readme_block(df, s)
    assert "Largest false-positive rate at this size: 0.300" in block
    assert "(null, shifted; nominal 0.05)" in block
    assert "| shifted | shifted | 120 | 4 | 1.000 |" in block


def test_a_raw_file_of_an_older_version_is_rewritten_not_misaligned(bc, tmp_path):
    raw = tmp_path / "raw.csv"
    pd.DataFrame({"world": ["a"], "n": [120], "sim": [0]}).to_csv(raw, index=False)
    bc.append_raw(raw, pd.DataFrame({"world": ["b"], "n": [120], "sim": [1], "shifted": [True]}))
    bc.append_raw(raw, pd.DataFrame({"world": ["c"], "n": [120], "sim": [2], "shifted": [False]}))
    back = pd.read_csv(raw)
    assert back["world"].tolist() == ["a", "b", "c"] and back["sim"].tolist() == [0, 1, 2]
    assert pd.isna(back["shifted"].iloc[0]) and back["shifted"].iloc[1:].tolist() == [True, False]
