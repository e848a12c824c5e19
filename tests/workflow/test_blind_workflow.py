"""The blind-baseline stages in the workflow, on a tiny two-dataset config (seconds, not minutes).

Checks the wiring (features -> blind -> heatmap), and that adding a feature
group or a dataset plans only its own extraction jobs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lalm_audit import io
from tests.conftest import REPO, sine, write


def _dataset(root: Path, name: str, freq_nonmember: float) -> str:
    rows = []
    for k in range(20):
        label = k % 2
        f = 220.0 if label else freq_nonmember
        path = write(root / name / f"{k}.wav", sine(f + k, 0.3))
        rows.append({"item_id": f"{name}-{k}", "audio_path": str(path), "text": f"word{k % 5} and more",
                     "speaker_id": "s", "label": label, "source_split": "x"})  # fmt: skip
    table = root / f"{name}.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return str(table)


def _config(root: Path, datasets: dict[str, str], groups: list[str]) -> Path:
    cfg = {
        "datasets": {n: {"loader": "table", "path": p} for n, p in datasets.items()},
        "evaluation": {"bootstrap": 100},
        "features": {"groups": groups, "shards": 2},
        "blind": {
            "folds": 3, "gbt": {"max_iter": 5, "max_bins": 16},
            "permutation_control": {"shuffles": 2}, "heatmap": {"folds": 3},
        },
    }  # fmt: skip
    path = root / f"cfg-{len(datasets)}-{'-'.join(groups)}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(workdir: Path, cfg: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(cfg), "--directory", str(workdir), "--cores", "2", *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _planned(res: subprocess.CompletedProcess) -> set[str]:
    out = res.stdout + res.stderr
    return set(re.findall(r"output: (results/features/[^\s,]+\.parquet)", out))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("blindwf")
    ds = {"alpha": _dataset(root, "alpha", 880.0), "beta": _dataset(root, "beta", 225.0)}
    cfg = _config(root, ds, ["text"])  # no audio group: no librosa/openSMILE start-up in this test
    res = snakemake(root, cfg)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    return root, ds


def test_blind_outputs_exist_with_their_contracts(tiny):
    root, _ = tiny
    r = root / "results"
    for ds in ("alpha", "beta"):
        assert (r / "features" / ds / "shards" / "text" / "0-of-1.parquet").is_file()
        m = io.read_table(r / "blind" / ds / "metrics.parquet")
        assert set(m["group"]) == {"text"}  # one group: no 'combined'
        assert set(m["control"]) == {"blind", "permutation"}
        assert (r / "blind" / ds / "summary.md").read_text().startswith(f"# Blind baseline: {ds}")
        assert io.read_provenance(r / "blind" / ds / "metrics.parquet")["stage"] == "blind"
    h = io.read_table(r / "blind" / "heatmap.parquet")
    assert set(h["side_a"]) == {
        "alpha:members",
        "alpha:non-members",
        "beta:members",
        "beta:non-members",
    }
    assert (r / "blind" / "heatmap.png").stat().st_size > 0
    logs = {p.relative_to(r / "logs").as_posix() for p in (r / "logs").rglob("*.log")}
    assert {"blind/alpha.log", "blind/heatmap.log", "features/alpha/text.log"} <= logs
    assert len(h) == 4 * 3  # every ordered pair of the four sides


def test_adding_a_group_or_a_dataset_plans_only_its_own_extraction(tiny):
    root, ds = tiny
    more_groups = _config(root, ds, ["text", "metadata"])
    planned = _planned(snakemake(root, more_groups, "-n"))
    assert planned == {
        f"results/features/{d}/{p}"
        for d in ("alpha", "beta")
        for p in (
            "shards/metadata/0-of-2.parquet",
            "shards/metadata/1-of-2.parquet",
            "metadata.parquet",
        )
    }
    gamma = {**ds, "gamma": _dataset(root, "gamma", 500.0)}
    planned = _planned(snakemake(root, _config(root, gamma, ["text"]), "-n"))
    assert planned == {
        "results/features/gamma/shards/text/0-of-1.parquet",
        "results/features/gamma/text.parquet",
    }
