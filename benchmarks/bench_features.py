"""Blind-baseline benchmark: feature-extraction throughput and blind-CV cost.

Prints, all measured in the same run on this machine:

1. clips/s of the feature pipeline (every group's shard job body: decode,
   extract, record failures, write Parquet, merge) against a bare loop of the
   same library calls (soundfile decode + soxr resample + librosa + openSMILE
   + the metadata statistics, no framework), and the pipeline's overhead;
2. the speed-up of two shards on two worker processes over one shard in one
   process (each process pays its own start-up, as a workflow job does);
3. the wall time and peak memory of the full blind CV (every group and
   combined, both classifiers, permutation control, explanations) on a
   synthetic feature table of ``--cv-items`` items shaped like the real one.

    .venv/bin/python benchmarks/bench_features.py                 # defaults
    .venv/bin/python benchmarks/bench_features.py --clips 100 --cv-items 20000

Targets (issue 3): overhead <= 15%; 2 shards >= 1.8x one shard.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per process, as workflow jobs run

import numpy as np
import pandas as pd
import soundfile as sf

GROUPS = ("text", "spectral", "prosodic", "metadata")


# --------------------------------------------------------------------------- test clips


def make_clips(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """Speech-like clips (voiced harmonic bursts with pauses, noise), 2-4 s, FLAC at 16 or 8 kHz."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        sr = 16000 if k % 3 else 8000
        dur = rng.uniform(2.0, 4.0)
        t = np.arange(int(dur * sr)) / sr
        f0 = rng.uniform(90, 240) * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        voiced = sum(np.sin(h * phase) / h for h in range(1, 8))
        gate = (np.sin(2 * np.pi * rng.uniform(2, 4) * t) > -0.3).astype(float)
        x = 0.3 * voiced * gate + rng.normal(0, 10 ** (-rng.uniform(10, 40) / 20) * 0.3, t.size)
        path = folder / f"c{k:05d}.flac"
        sf.write(path, np.clip(x, -1, 1).astype(np.float32), sr, subtype="PCM_16")
        rows.append({
            "item_id": f"c{k:05d}", "dataset": "bench", "audio_path": str(path), "audio_bytes": None,
            "audio_format": "FLAC", "offset_s": 0.0, "duration_s": t.size / sr, "source_duration_s": t.size / sr,
            "sample_rate": sr, "channels": 1, "text": " ".join(rng.choice(["the", "cat", "sat", "on", "a", "mat", "today"], 7)),
            "speaker_id": "s", "label": k % 2, "source_split": "x", "truncated": False,
        })  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the bare loop


def bare_loop(man: pd.DataFrame, cfg) -> float:
    """The same library calls as the pipeline, in a plain loop: no framework, nothing written."""
    import librosa
    import opensmile
    import soxr

    p, sr = cfg.features.spectral, cfg.audio.sample_rate
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    start = time.perf_counter()
    for path in man["audio_path"]:
        info = sf.info(path)
        raw, native = sf.read(path, dtype="float32")
        y = soxr.resample(raw, native, sr, quality="HQ") if native != sr else raw
        # spectral
        S = np.abs(librosa.stft(y, n_fft=p.n_fft, hop_length=p.hop_length))
        mfcc = librosa.feature.mfcc(
            S=librosa.power_to_db(librosa.feature.melspectrogram(S=S**2, sr=sr, n_mels=p.n_mels)),
            n_mfcc=p.n_mfcc,
        )
        series = np.vstack([
            mfcc, librosa.feature.delta(mfcc, width=9, mode="nearest"),
            librosa.feature.spectral_centroid(S=S, sr=sr), librosa.feature.spectral_bandwidth(S=S, sr=sr),
            librosa.feature.spectral_rolloff(S=S, sr=sr), librosa.feature.spectral_flatness(S=S),
            librosa.feature.spectral_contrast(S=S, sr=sr, n_bands=p.contrast_bands),
            librosa.feature.zero_crossing_rate(y, frame_length=p.n_fft, hop_length=p.hop_length),
            librosa.feature.rms(y=y, frame_length=p.n_fft, hop_length=p.hop_length),
        ])  # fmt: skip
        _ = [series.mean(1), series.std(1), np.percentile(series, p.percentiles, axis=1)]
        # prosodic
        smile.process_signal(y, sr)
        # metadata (at the source rate)
        hop = round(0.01 * native)
        librosa.effects.trim(raw, top_db=40, frame_length=4 * hop, hop_length=hop)
        frames = librosa.util.frame(
            raw, frame_length=round(0.025 * native), hop_length=round(0.025 * native)
        )
        _ = (
            np.sort((frames**2).mean(0)),
            np.abs(raw).max(),
            np.mean(raw),
            np.mean(np.abs(raw) >= 0.999),
        )
        _ = (info.format, info.subtype, os.path.getsize(path))
    return time.perf_counter() - start


# --------------------------------------------------------------------------- the pipeline


def pipeline(
    man_path: Path, out: Path, cfg, shard: int = 0, n_shards: int = 1, merge: bool = True
) -> float:
    """Every group's shard job body (and the merge), as the workflow runs them."""
    from lalm_audit.features import merge_shards, run_features_shard

    start = time.perf_counter()
    for g in GROUPS:
        shard_path = out / "shards" / g / f"{shard}-of-{n_shards}.parquet"
        run_features_shard(cfg, "bench", g, shard, n_shards, man_path, shard_path)
        if merge:
            merge_shards(cfg, "bench", g, [shard_path], man_path, out / f"{g}.parquet")
    return time.perf_counter() - start


def _shard_job(args: tuple) -> float:
    """One workflow job: a fresh process that imports everything and extracts one shard."""
    man_path, out, shard, n_shards = args
    start = time.perf_counter()
    from lalm_audit.config import parse_config
    from lalm_audit.features import run_features_shard

    cfg = parse_config({"datasets": {"bench": {"loader": "table", "path": "x"}}})
    for g in GROUPS:
        run_features_shard(
            cfg, "bench", g, shard, n_shards, man_path, Path(out) / f"{g}-{shard}.parquet"
        )
    return time.perf_counter() - start


def shard_scaling(man_path: Path, out: Path, repeats: int = 2) -> tuple[float, float, float]:
    """Best-of-``repeats`` wall time of 1 shard on 1 process and of 2 shards on 2, interleaved."""
    ctx = mp.get_context("spawn")  # fresh interpreters, like separate jobs
    n_items = pd.read_parquet(man_path, columns=["item_id"]).shape[0]
    start = time.perf_counter()
    with ctx.Pool(1) as pool:  # the fixed cost of a job: a shard of one clip
        pool.map(_shard_job, [(man_path, out, 0, n_items)])
    startup = time.perf_counter() - start
    ones, twos = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with ctx.Pool(1) as pool:
            pool.map(_shard_job, [(man_path, out, 0, 1)])
        ones.append(time.perf_counter() - start)
        start = time.perf_counter()
        with ctx.Pool(2) as pool:
            pool.map(_shard_job, [(man_path, out, s, 2) for s in range(2)], chunksize=1)
        twos.append(time.perf_counter() - start)
    print(
        f"  runs: 1 shard {', '.join(f'{t:.1f}' for t in ones)} s; 2 shards {', '.join(f'{t:.1f}' for t in twos)} s"
    )
    return min(ones), min(twos), startup


# --------------------------------------------------------------------------- blind CV at scale


def synthetic_feature_set(n: int, seed: int = 0):
    """A feature table shaped like the real one (groups, column counts, a transcript), with a weak shift."""
    from lalm_audit.config import parse_config
    from lalm_audit.features import feature_set
    from lalm_audit.features.metadata import columns as meta_cols
    from lalm_audit.features.prosodic import columns as pros_cols
    from lalm_audit.features.spectral import columns as spec_cols
    from lalm_audit.features.text import STATS

    cfg = parse_config({"datasets": {"bench": {"loader": "table", "path": "x"}}})
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n // 2)
    ids = np.array([f"i{k:07d}" for k in range(n)], dtype=object)
    vocab = np.array([f"w{k}" for k in range(2000)])
    lengths = rng.integers(5, 13, n)
    words = rng.choice(vocab, size=(n, 12))
    texts = [" ".join(words[i, : lengths[i]]) for i in range(n)]

    def numeric(names, shift=0.1):
        block = rng.normal(size=(n, len(names))) + shift * y[:, None] * (
            rng.random(len(names)) < 0.1
        )
        return pd.DataFrame(block, columns=names)

    text = numeric(list(STATS)).assign(transcript=texts)
    spectral = numeric(spec_cols(cfg))
    prosodic = numeric(pros_cols(cfg))
    mcols = [c for c in meta_cols(cfg) if c not in ("audio_format", "subtype")]
    metadata = numeric(mcols).assign(audio_format=rng.choice(["FLAC", "WAV"], n), subtype="PCM_16")
    tables = {}
    for g, df in {
        "text": text,
        "spectral": spectral,
        "prosodic": prosodic,
        "metadata": metadata,
    }.items():
        tables[g] = df.assign(item_id=ids, feature_error=None)
    return feature_set(pd.DataFrame({"item_id": ids, "label": y}), tables, dataset="bench"), cfg


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=240, help="clips for the throughput runs")
    ap.add_argument(
        "--scaling-clips",
        type=int,
        default=960,
        help="clips for the 1-vs-2-shard run (a real shard's size)",
    )
    ap.add_argument(
        "--cv-items", type=int, default=100_000, help="items of the synthetic feature table"
    )
    ap.add_argument("--cv-jobs", type=int, default=1, help="blind-CV worker processes")
    ap.add_argument("--skip", nargs="*", default=[], choices=["throughput", "scaling", "cv"])
    args = ap.parse_args()

    from lalm_audit import io
    from lalm_audit.config import parse_config

    cfg = parse_config({"datasets": {"bench": {"loader": "table", "path": "x"}}})
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lalm-bench-") as tmp:
        tmp = Path(tmp)
        if "throughput" not in args.skip:
            man = make_clips(tmp / "clips", args.clips)
            man_path = tmp / "manifest.parquet"
            io.write_table(man, man_path)
            warm = man.iloc[:3]
            bare_loop(warm, cfg)  # library warm-up (numba caches, openSMILE config) for both
            io.write_table(warm, tmp / "warm.parquet")
            pipeline(tmp / "warm.parquet", tmp / "warm", cfg)
            pairs = []
            for _ in range(2):  # interleaved repeats: the machine's load hits both alike
                pairs.append((bare_loop(man, cfg), pipeline(man_path, tmp / "feat", cfg)))
            bare = min(b for b, _ in pairs)
            pipe = min(p for _, p in pairs)
            print(
                f"\n[throughput] {args.clips} clips of 2-4 s (1/3 at 8 kHz), all four groups, best of 2"
            )
            print(
                f"  bare loop (decode + librosa + openSMILE + metadata stats): {args.clips / bare:7.2f} clips/s  ({bare:.1f} s)"
            )
            print(
                f"  feature pipeline (shard jobs' bodies + merges, Parquet):    {args.clips / pipe:7.2f} clips/s  ({pipe:.1f} s)"
            )
            print(
                f"  pipeline overhead over the bare loop: {100 * (pipe / bare - 1):+.1f}%  (target <= 15%)",
                flush=True,
            )
        if "scaling" not in args.skip:
            man = make_clips(tmp / "clips2", args.scaling_clips, seed=1)
            man_path = tmp / "manifest2.parquet"
            io.write_table(man, man_path)
            one, two, startup = shard_scaling(man_path, tmp / "scale")
            print(
                f"\n[shards] {args.scaling_clips} clips, every group; each shard a fresh process (imports included)"
            )
            print(f"  a job's fixed cost (process start, imports, a 1-clip shard): {startup:.1f} s")
            print(f"  1 shard on 1 process: {one:.1f} s; 2 shards on 2 processes: {two:.1f} s")
            print(f"  speed-up: {one / two:.2f}x  (target >= 1.8x)", flush=True)
        if "cv" not in args.skip:
            from lalm_audit.blind import cross_validate

            t0 = time.perf_counter()
            fs, cfg = synthetic_feature_set(args.cv_items)
            built = time.perf_counter() - t0
            cols = sum(len(g.all) for g in fs.groups.values())
            print(
                f"\n[blind CV] {len(fs):,} items, {cols} input columns ({', '.join(f'{g}: {len(c.all)}' for g, c in fs.groups.items())}); table built in {built:.1f} s"
            )
            b = cfg.blind
            print(f"  {b.folds}-fold, groups + combined, {b.classifiers}, permutation control {b.permutation_control.shuffles} shuffles "
                  f"({b.permutation_control.classifiers}), explanations; {args.cv_jobs} worker process(es)", flush=True)  # fmt: skip
            t0 = time.perf_counter()
            res = cross_validate(
                fs, cfg.blind, cfg.evaluation, seed=0, dataset="bench", n_jobs=args.cv_jobs
            )
            took = time.perf_counter() - t0
            own, kids = peak_rss_mb()
            print(f"  wall time: {took:.0f} s ({took / 60:.1f} min)")
            print(
                f"  peak memory (max RSS): this process {own:,.0f} MB; largest worker {kids:,.0f} MB"
            )
            best = res.metrics.query("control == 'blind' and stronger")
            print(
                "  AUC (stronger):",
                ", ".join(f"{g} {a:.3f}" for g, a in zip(best["group"], best["auc"], strict=True)),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
