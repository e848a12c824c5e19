"""profiles/slurm on a real one-node SLURM cluster, against a local run of the same slice.

`.ci/slurm-up.sh` installs Debian's slurmctld, slurmd, slurm-client and munge
and starts a one-node cluster on this machine (partitions `cpu` and `gpu`,
one `gpu` GRES with no device behind it, no job accounting). A slice of the
demo (demo-matched through features and the blind stage; demo-control trained,
generating, scored and its indicators computed) runs once with
``--profile profiles/slurm`` and once locally with ``--profile profiles/local``;
the tests below check that the jobs went through the scheduler (job ids in
Snakemake's output, partitions and GPU requests in slurmctld's records) and
that every Parquet table of the two runs is equal. The daemons are stopped by
their PIDs at the end.

Needs root (the daemons; apt-get when the packages are missing). Elsewhere
the module skips with the reason; under CI (CI=true) it fails instead.
The profile checks at the bottom are dry runs and need none of this.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO

SLURM_UP = REPO / ".ci" / "slurm-up.sh"
CI_PROFILE = REPO / "tests" / "workflow" / "slurm_ci_profile"
SLICE = REPO / "tests" / "workflow" / "slurm_slice.yaml"
TARGETS = [
    "results/blind/demo-matched/metrics.parquet",
    "results/indicators/demo-control/demo-matched/original/generated.parquet",
    "results/indicators/demo-control/demo-matched/original/transcript.parquet",
]
CONFIG = ["--configfile", str(REPO / "config" / "demo.yaml"), str(SLICE)]
# The SLURM run's flags after the targets: the README's "On a cluster" shows
# this command (test_readme_shows_this_command keeps the two in step).
SLURM_FLAGS = [
    "--profile", str(REPO / "profiles" / "slurm"),
    "--profile", str(CI_PROFILE),
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "5",
]  # fmt: skip
# Where each rule of the slice must run.
ON_SLURM = {"demo_data", "manifest", "demo_model", "features_shard", "blind",
            "generate", "score", "indicators"}  # fmt: skip
GPU_RULES = {"generate", "score"}
LOCAL = {"features_merge", "merge_generations"}
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable() -> str | None:
    """Why this machine cannot host the test cluster (None: it can)."""
    if os.geteuid() != 0:
        return "needs root to start munged, slurmctld and slurmd (and apt-get to install them)"
    have = all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged"))
    if not have and not shutil.which("apt-get"):
        return "slurmctld/slurmd/slurm-client/munge are not installed and apt-get is unavailable"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and not conf.is_symlink():
        return "/etc/slurm/slurm.conf exists: this machine is part of a real cluster"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install 'lalm-audit[slurm]')"
    return None


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args,
           "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = _unavailable()
    if why:
        if CI:
            pytest.fail(f"CI must run the SLURM test, but {why}")
        pytest.skip(why)
    subprocess.run([str(SLURM_UP), "install"], check=True, timeout=900)
    root = tmp_path_factory.mktemp("slurm-cluster")
    up = subprocess.run([str(SLURM_UP), "start", str(root)], capture_output=True, text=True,
                        timeout=300)  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    pids = {n: int((root / f"{n}.pid").read_text()) for n in ("munged", "slurmctld", "slurmd")}
    try:
        yield root
    finally:
        subprocess.run([str(SLURM_UP), "stop", str(root)], timeout=120)
        for name, pid in pids.items():
            assert not _alive(pid), f"{name} (pid {pid}) still running after stop"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """(local workdir, slurm workdir, slurm log, seconds the SLURM run took)."""
    local = tmp_path_factory.mktemp("local")
    t0 = time.monotonic()
    res = snakemake(local, *TARGETS, "--profile", str(REPO / "profiles" / "local"),
                    "--cores", "2", *CONFIG)  # fmt: skip
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    took_local = time.monotonic() - t0
    remote = tmp_path_factory.mktemp("slurm")
    t0 = time.monotonic()
    res = snakemake(remote, *TARGETS, *SLURM_FLAGS, *CONFIG)
    took = time.monotonic() - t0
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-8000:]
    print(f"\nthe slice: {took_local:.0f} s locally, {took:.0f} s on SLURM")
    return local, remote, log, took


def _jobs(log: str) -> dict[int, tuple[str, bool]]:
    """Snakemake job id -> (rule, run locally): every finished job, and the local ones' headers."""
    done = {int(j): r for j, r in re.findall(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", log, re.M)}
    local = re.findall(r"^localrule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", log, re.M)
    local_ids = {int(j) for _, j in local}
    return {j: (rule, j in local_ids) for j, rule in done.items()}


def _submissions(log: str) -> dict[int, str]:
    """Snakemake job id -> SLURM job id (array tasks as <array>_<task>)."""
    out = {
        int(j): s
        for j, s in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
    }
    for ids, array, tasks in re.findall(
        r"Submitted array job with Snakemake IDs ([\d,]+) and SLURM job ID (\d+)\. "
        r"The individual task IDs are (\d+)-(?:\d+)",
        log,
    ):
        for k, j in enumerate(ids.split(",")):
            out[int(j)] = f"{array}_{int(tasks) + k}"
    return out


def test_profiles_in_use_are_the_named_ones(runs):
    _, _, log, _ = runs
    using = [line for line in log.splitlines() if line.startswith("Using profile")]
    assert using == [
        f"Using profiles {REPO / 'profiles' / 'slurm'} and {CI_PROFILE} "
        "for setting default command line arguments."
    ]
    # no account configured, none to guess on a cluster without accounting: submitted without -A
    assert "Unable to guess SLURM account. Trying to proceed without." in log


def test_every_remote_job_went_through_the_scheduler(runs, cluster):
    _, _, log, _ = runs
    jobs, submitted = _jobs(log), _submissions(log)
    rules = {rule for rule, _ in jobs.values()}
    assert rules >= ON_SLURM | LOCAL, sorted(rules)
    for jid, (rule, local) in jobs.items():
        if rule in LOCAL:
            assert local and jid not in submitted, (rule, jid)
        elif rule in ON_SLURM:
            assert not local and jid in submitted, (rule, jid)
    # the feature jobs went as one array (several ready at once)
    shards = [submitted[j] for j, (r, _) in jobs.items() if r == "features_shard"]
    assert len(shards) >= 4 and all("_" in s for s in shards)
    assert len({s.split("_")[0] for s in shards}) < len(shards)

    states = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%P|%T|%C"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    table = {line.split("|")[0]: line.split("|")[1:] for line in states.splitlines()}
    ctld = (cluster / "slurmctld.log").read_text()
    for jid, (rule, _) in jobs.items():
        if jid not in submitted:
            continue
        sid = submitted[jid]
        partition, state, cpus = table[sid]
        assert state == "COMPLETED", (rule, sid, state)
        # the main scheduler and backfill log a start differently; array tasks carry (raw id)
        sj = re.escape(sid) + r"(?:\(\d+\))?"
        started = rf"(?:Allocate JobId={sj} NodeList=\S+ #CPUs=\d+ Partition={partition}|Started JobId={sj} in {partition} on)"
        assert re.search(started, ctld), (rule, sid, partition)
        assert re.search(rf"_job_complete: JobId={sj} WEXITSTATUS 0", ctld), (rule, sid)
        if rule in GPU_RULES:
            detail = subprocess.run(["scontrol", "show", "job", sid], capture_output=True,
                                    text=True, check=True).stdout  # fmt: skip
            # one GPU on the gpu partition, the profile's 4 CPUs capped at the node's 2
            assert partition == "gpu" and "TresPerJob=gres:gpu:1" in detail, detail
            assert cpus == "2", (rule, cpus)
        else:
            assert partition == "cpu", (rule, sid, partition)


def test_model_jobs_load_their_model_once(runs):
    _, remote, _, _ = runs
    logs = [remote / "results/logs/scores/demo-control/demo-matched/original/generations/shard-0.log",
            remote / "results/logs/scores/demo-control/demo-matched/original/token_stats/shard-0.log"]  # fmt: skip
    for path in logs:
        assert path.read_text().count("loaded demo-control (qwen2_audio)") == 1, path


def test_outputs_equal_a_local_run(runs):
    local, remote, _, _ = runs
    tables = sorted(p.relative_to(local) for p in (local / "results").rglob("*.parquet"))
    assert len(tables) >= 20
    assert tables == sorted(p.relative_to(remote) for p in (remote / "results").rglob("*.parquet"))
    for rel in tables:
        a, b = pd.read_parquet(local / rel), pd.read_parquet(remote / rel)
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=str(rel))
        # the same inputs give the same bytes (README, "Outputs"), scheduler or not
        assert (local / rel).read_bytes() == (remote / rel).read_bytes(), rel


def test_readme_shows_this_command():
    """The README's cluster section runs exactly this test's command."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### On a cluster", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    ci = [b for b in blocks if "slurm_ci_profile" in b]
    assert len(ci) == 1, "the section shows the CI test's command once"
    words = ci[0].replace("\\\n", " ").split()
    rel = lambda w: w.replace(f"{REPO}/", "")  # noqa: E731
    expect = [*TARGETS, *map(rel, SLURM_FLAGS), *map(rel, CONFIG)]
    assert words[words.index(TARGETS[0]) :] == expect


# ---- the profiles themselves (dry runs: no cluster, no root)


def _dry(tmp_path: Path, *args: str) -> str:
    overlay = tmp_path / "auto.yaml"
    overlay.write_text(yaml.safe_dump({"models": {"demo-target": {"device": "auto"}}}))
    res = snakemake(tmp_path, "-n", *args, "--configfile", str(REPO / "config" / "demo.yaml"),
                    str(overlay), timeout=300)  # fmt: skip
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return res.stdout + res.stderr


def _resources(log: str) -> list[tuple[str, str, dict[str, str]]]:
    """(rule, model wildcard, resources) of every job a dry run plans."""
    out = []
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", log, re.M):
        res = re.search(r"    resources: (.*)", body)
        model = re.search(r"model=([\w-]+)", body)
        pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
        out.append((rule, model.group(1) if model else "", pairs))
    return out


def test_local_gpu_profile_pools_model_jobs_on_one_gpu(tmp_path):
    log = _dry(tmp_path, "--profile", str(REPO / "profiles" / "local-gpu"))
    assert "workflow specific profile" not in log
    jobs = _resources(log)
    model_jobs = [
        (r, m, res) for r, m, res in jobs if r in {"generate", "score", "score_perturbed"}
    ]
    assert {r for r, _, _ in model_jobs} == {"generate", "score", "score_perturbed"}
    for rule, model, res in model_jobs:
        # demo-target on `device: auto` holds the GPU; demo-control stays on `device: cpu`
        assert res.get("gpu") == ("1" if model == "demo-target" else "0"), (rule, model, res)
    assert all(
        "gpu" not in res for r, _, res in jobs if r not in {"generate", "score", "score_perturbed"}
    )
    profile = yaml.safe_load((REPO / "profiles" / "local-gpu" / "config.v8+.yaml").read_text())
    assert profile["resources"] == ["gpu=1"]


def test_ci_profile_changes_only_memory_and_threads():
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.v8+.yaml").read_text())
    ci = yaml.safe_load((CI_PROFILE / "config.v8+.yaml").read_text())
    assert set(ci) == {"set-resources", "max-threads"}
    strip = lambda sr: {r: {k: v for k, v in d.items() if k != "mem_mb"} for r, d in sr.items()}  # noqa: E731
    assert strip(ci["set-resources"]) == strip(slurm["set-resources"])


def test_slurm_profile_resolves_gpu_jobs_and_cpu_jobs(tmp_path):
    """Every model job asks for a GPU on `gpu`, every other job for `cpu`, at attempt 1."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    log = _dry(tmp_path, "--profile", str(REPO / "profiles" / "slurm"))
    using = [line for line in log.splitlines() if line.startswith("Using profile")]
    assert using == [
        f"Using profile {REPO / 'profiles' / 'slurm'} for setting default command line arguments."
    ]
    jobs = _resources(log)
    model_rules = {
        "generate",
        "score",
        "score_perturbed",
        "controlled_finetune",
        "controlled_audit",
    }
    assert {r for r, _, _ in jobs} >= model_rules | {"demo_model", "blind", "features_shard"}
    for rule, model, res in jobs:
        if rule == "all":
            continue
        if rule in model_rules:
            # the profile's set-resources win over the rule's device-based gpu=0 for demo-control
            runtime = "480" if rule == "controlled_finetune" else "240"
            want = {"slurm_partition": "gpu", "gpu": "1", "mem_mb": "48000", "runtime": runtime}
        else:
            want = {"slurm_partition": "cpu", "mem_mb": "4000", "runtime": "60"}
        assert {k: res.get(k) for k in want} == want, (rule, model, res)
        assert rule in model_rules or "gpu" not in res, (rule, res)
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.v8+.yaml").read_text())
    # a retry asks for more: every size grows with the attempt number
    sizes = [slurm["default-resources"][k] for k in ("mem_mb", "runtime")]
    sizes += [slurm["set-resources"][r][k] for r in model_rules for k in ("mem_mb", "runtime")]
    assert slurm["retries"] >= 1 and all(str(v).endswith("* attempt") for v in sizes), sizes
    assert {slurm["set-threads"][r] for r in ("generate", "score", "score_perturbed")} == {4}
    assert not (REPO / "profiles" / "default").exists(), "profiles/default is loaded into every run"
