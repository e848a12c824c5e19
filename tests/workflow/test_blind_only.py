"""The README's first run, verbatim: a CSV with only path,text,label through `blind_only`.

The config and the commands are read from the README's "Auditing your own data"
section, so the documented walk-through cannot drift from what works.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # one real Snakemake run, ~1 min

MARKER = "<!-- tests/workflow/test_blind_only.py runs this config and these commands verbatim -->"
MODULES = {"lalm-audit": "lalm_audit.cli", "snakemake": "snakemake"}


def readme_walkthrough() -> tuple[str, list[str]]:
    """The YAML block after the marker and the command lines of the bash block after it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Auditing your own data") :]
    after = section[section.index(MARKER) :]
    blocks = re.findall(r"```(\w+)\n(.*?)```", after, flags=re.DOTALL)
    config = next(body for lang, body in blocks if lang == "yaml")
    commands = next(body for lang, body in blocks if lang == "bash").strip().splitlines()
    return config, commands


def speechlike(rng: np.random.Generator, f0: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(rng.uniform(0.8, 1.2) * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / sr
    voiced = sum(np.sin(h * phase) / h for h in range(1, 6))
    gate = (np.sin(2 * np.pi * 3 * t) > -0.3).astype(float)
    return (0.3 * voiced * gate + rng.normal(0, 0.01, t.size)).astype(np.float32)


def argv(line: str) -> list[str]:
    """`.venv/bin/<tool> args...` -> this interpreter running the tool's module, args untouched."""
    words = shlex.split(line)
    tool = Path(words[0]).name
    return [sys.executable, "-m", MODULES[tool], *words[1:]]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("first_run")
    for name in ("Snakefile", "workflow", "profiles"):
        (work / name).symlink_to(REPO / name)
    config, commands = readme_walkthrough()
    cfg = yaml.safe_load(config)
    (work / "config").mkdir()
    (work / "config" / "my-audit.yaml").write_text(config)
    table = work / cfg["datasets"]["mine"]["path"]
    (table.parent / "clips").mkdir(parents=True)
    rng = np.random.default_rng(7)
    rows = []
    for k in range(24):
        rel = f"clips/{k:04d}.flac"
        sf.write(table.parent / rel, speechlike(rng, 120 + 7 * k), 16000, subtype="PCM_16")
        rows.append({"path": rel, "text": f"sentence number {k} of the test", "label": k % 2})
    pd.DataFrame(rows).to_csv(table, index=False)
    assert table.read_text().splitlines()[0] == "path,text,label"
    results = []
    for line in commands:
        res = subprocess.run(argv(line), cwd=work, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{line}\n{(res.stdout + res.stderr)[-6000:]}"
        results.append(res)
    return work, commands, results


def test_the_readme_commands_are_the_ones_run(first_run):
    _, commands, _ = first_run
    assert [shlex.split(c)[0] for c in commands] == [".venv/bin/lalm-audit", ".venv/bin/snakemake"]
    snake = shlex.split(commands[1])
    # the target comes before --configfile, which would read it as a second config file
    assert snake.index("blind_only") < snake.index("--configfile")


def test_check_config_reads_the_table(first_run):
    _, _, (check, _) = first_run
    resolved = json.loads(check.stdout)
    assert resolved["datasets"]["mine"]["columns"]["audio"] == "path"
    assert "dataset 'mine': 24 rows read" in check.stderr


def test_blind_only_ends_at_the_blind_summaries_with_a_complete_count(first_run):
    work, _, (_, snake) = first_run
    out = snake.stdout + snake.stderr
    done = re.findall(r"(\d+) of (\d+) steps \((\d+)%\) done", out)
    assert done and done[-1][0] == done[-1][1] and done[-1][2] == "100"
    r = work / "results"
    summary = json.loads((r / "manifests" / "mine.summary.json").read_text())
    assert (summary["items_in"], summary["kept"], summary["rejected"]) == (24, 24, 0)
    assert (summary["kept_members"], summary["kept_nonmembers"]) == (12, 12)
    manifest = pd.read_parquet(r / "manifests" / "mine.parquet")
    # ids derived from the CSV's name and line (the header is line 1)
    assert set(manifest["item_id"]) == {f"clips-{i}" for i in range(2, 26)}
    assert set(manifest["speaker_id"]) == {"unknown"} and set(manifest["source_split"]) == {""}
    assert (r / "blind" / "mine" / "summary.md").read_text().startswith("# Blind baseline: mine")
    assert (r / "blind" / "heatmap.png").stat().st_size > 0
    assert not (r / "mia").exists() and not (r / "report").exists()  # stopped at the blind stage
