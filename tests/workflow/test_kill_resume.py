"""kill -9 in the middle of a feature job, then rerun: same outputs, nothing done twice.

The run is killed (SIGKILL to Snakemake and its jobs, as a lost node would be)
while a feature shard is half extracted. The rerun (`--unlock`, then the same
command with `--rerun-incomplete`) must reproduce an uninterrupted run's tables
exactly, leave the shards finished before the kill untouched, recompute at most
the one shard that was cut, and take that shard's already extracted clips from
the content cache.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from lalm_audit import io
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # three real Snakemake runs, ~1 min

N_ITEMS, N_SHARDS = 24, 4
TARGET = "results/features/mine/spectral.parquet"


def _setup(work: Path) -> Path:
    rng = np.random.default_rng(3)
    rows = []
    for k in range(N_ITEMS):
        # 5 s clips: a shard takes about a second to extract, a window wide enough to kill in
        x = 0.2 * rng.standard_normal(5 * 16000) + 0.3 * np.sin(
            np.arange(5 * 16000) * (0.05 + k / 500)
        )
        sf.write(work / f"c{k}.flac", x.astype(np.float32), 16000, subtype="PCM_16")
        rows.append({"path": f"c{k}.flac", "text": f"clip {k}", "label": k % 2})
    pd.DataFrame(rows).to_csv(work / "clips.csv", index=False)
    cfg = {
        "datasets": {
            "mine": {"loader": "table", "path": "clips.csv", "columns": {"audio": "path"}}
        },
        "features": {"groups": ["spectral"], "shards": N_SHARDS},
    }
    path = work / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cmd(work: Path, cfg: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(cfg), "--directory", str(work), "--cores", "1", *extra,
    ]  # fmt: skip


def _shard(work: Path, i: int) -> Path:
    return work / f"results/features/mine/shards/spectral/{i}-of-{N_SHARDS}.parquet"


def _log(work: Path, i: int) -> Path:
    return work / f"results/logs/features/mine/shards/spectral/{i}-of-{N_SHARDS}.log"


def _cached(work: Path) -> int:
    """Complete cache records (a writer's temporary file starts with '.tmp-')."""
    return sum(
        1 for p in (work / "results/cache/features").rglob("*.json") if not p.name.startswith(".")
    )


def test_kill_mid_shard_then_rerun_equals_an_uninterrupted_run(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir()
    killed.mkdir()
    res = subprocess.run(
        _cmd(clean, _setup(clean), TARGET), capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]

    cfg = _setup(killed)
    per_shard = N_ITEMS // N_SHARDS
    proc = subprocess.Popen(
        _cmd(killed, cfg, TARGET),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches the running job too
    )
    deadline = time.monotonic() + 300
    try:
        # Kill once one shard is written and the next (Snakemake picks which) is half
        # extracted: its log exists, its output does not, two of its clips are cached.
        while time.monotonic() < deadline and proc.poll() is None:
            done = [i for i in range(N_SHARDS) if _shard(killed, i).exists()]
            running = [i for i in range(N_SHARDS) if _log(killed, i).exists() and i not in done]
            if len(done) == 1 and len(running) == 1 and _cached(killed) >= per_shard + 2:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed mid-shard"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    (cut,) = running
    assert not _shard(killed, cut).exists()  # written atomically: no torn shard left behind
    done_before = {i: _shard(killed, i).stat().st_mtime_ns for i in done}
    assert len(done_before) == 1
    cached_before = _cached(killed)
    assert per_shard + 2 <= cached_before < 2 * per_shard

    unlock = subprocess.run(
        _cmd(killed, cfg, "--unlock"), capture_output=True, text=True, timeout=300
    )
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    rerun = subprocess.run(
        _cmd(killed, cfg, "--rerun-incomplete", TARGET), capture_output=True, text=True, timeout=600
    )
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-4000:]

    # the shard finished before the kill is untouched; of the shards begun before the
    # kill, only the one it cut is computed again (the others run for the first time)
    for i, mtime in done_before.items():
        assert _shard(killed, i).stat().st_mtime_ns == mtime
    rerun_shards = re.findall(r"output: results/features/mine/shards/spectral/(\d+)-of-", out)
    assert sorted(map(int, rerun_shards)) == sorted(set(range(N_SHARDS)) - set(done_before))
    # and within the cut shard, what was extracted before the kill came from the cache
    hits = int(re.search(r"(\d+) from the content cache", _log(killed, cut).read_text()).group(1))
    assert hits == cached_before - per_shard >= 2

    # the outputs equal the uninterrupted run's, shard by shard and merged
    for i in range(N_SHARDS):
        pd.testing.assert_frame_equal(
            io.read_table(_shard(killed, i)), io.read_table(_shard(clean, i))
        )
    pd.testing.assert_frame_equal(io.read_table(killed / TARGET), io.read_table(clean / TARGET))
