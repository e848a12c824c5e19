"""Decode benchmark: peak memory of decoding against the clip cap (``audio.max_duration_s``).

Prints, for each case, measured in a fresh process each (so one case's high-water
mark cannot hide another's):

- a 1 s FLAC whose header claims 2^36 samples (~50 days at 16 kHz);
- a WAV whose header says 1 Hz (rejected from the header alone);
- a one-hour 16 kHz mono recording (WAV, 115 MB on disk);

decoded as the manifest stage decodes them (capped at ``--max-duration`` seconds),
and, for comparison, uncapped (the old ``read(frames=-1)`` path: trust the header,
read everything, resample everything). Columns: wall time, peak of traced Python/
numpy allocations (``tracemalloc``), growth of the process's peak RSS over its
baseline after imports, and the cap's own size (float32 read buffer at the source
rate plus the resampled clip). The capped rows must stay within a small multiple of
the cap whatever the header says. (Uncapped, the lying header asks for 256 GiB at
once: ``tracemalloc`` records the request, and the decode fails with MemoryError
where the kernel refuses it, or the process is killed where it overcommits.)

    .venv/bin/python benchmarks/bench_decode.py                  # cap 30 s, 1-hour file
    .venv/bin/python benchmarks/bench_decode.py --max-duration 10 --hours 0.5
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

_CHILD = r"""
import json, resource, sys, time, tracemalloc
from lalm_audit.audio import decode
from lalm_audit.errors import AudioError
path, cap = sys.argv[1], (None if sys.argv[2] == "none" else float(sys.argv[2]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.perf_counter()
try:
    d = decode(path, target_sr=16000, max_duration_s=cap)
    outcome = f"{d.source_duration_s:.1f} s source, {len(d.samples) / 16000:.1f} s decoded"
except AudioError as e:
    outcome = f"{e.code}: {str(e)[:70]}"
wall = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"wall_s": wall, "traced_mb": peak / 2**20, "rss_mb": rss / 1024, "outcome": outcome}))
"""


def lying_flac(path: Path) -> dict:
    buf = io.BytesIO()
    t = np.arange(16000) / 16000
    sf.write(buf, (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format="FLAC")
    b = bytearray(buf.getvalue())
    b[18:26] = (int.from_bytes(b[18:26], "big") | ((1 << 36) - 1)).to_bytes(8, "big")
    path.write_bytes(bytes(b))
    return {"sr": 16000, "channels": 1}


def one_hz_wav(path: Path) -> dict:
    sf.write(path, np.full(16000, 0.3, np.float32), 1, subtype="PCM_16")
    return {"sr": 1, "channels": 1}


def long_wav(path: Path, hours: float) -> dict:
    """Speech-like noise written a minute at a time (never held whole in memory here)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(round(hours * 60)):
            f.write((0.1 * rng.standard_normal(16000 * 60)).astype(np.float32))
    return {"sr": 16000, "channels": 1}


def run_case(path: Path, cap: float | None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), "none" if cap is None else str(cap)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {
            "wall_s": float("nan"),
            "traced_mb": float("nan"),
            "rss_mb": float("nan"),
            "outcome": f"process died (rc {out.returncode}): {out.stderr.strip()[-80:]}",
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-duration", type=float, default=30.0, help="audio.max_duration_s")
    ap.add_argument("--hours", type=float, default=1.0, help="length of the long recording")
    args = ap.parse_args()
    cap = args.max_duration
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = {
            "lying FLAC header (1 s, claims 2^36 samples)": (tmp / "lying.flac", lying_flac),
            "1 Hz WAV header (32 kB)": (tmp / "onehz.wav", one_hz_wav),
            f"{args.hours:g}-hour 16 kHz mono WAV": (
                tmp / "long.wav",
                lambda p: long_wav(p, args.hours),
            ),
        }
        print(f"cap: audio.max_duration_s = {cap:g} s")
        print(
            f"{'case':46s} {'mode':9s} {'wall s':>7s} {'traced MB':>10s} {'RSS +MB':>8s} "
            f"{'cap MB':>7s}  outcome"
        )
        ok = True
        for label, (path, make) in cases.items():
            fmt = make(path)
            # What the cap allows: the float32 read buffer at the source rate + the 16 kHz clip.
            cap_mb = (cap * fmt["sr"] * fmt["channels"] * 4 + cap * 16000 * 4) / 2**20
            for mode, c in (("capped", cap), ("uncapped", None)):
                r = run_case(path, c)
                print(
                    f"{label:46s} {mode:9s} {r['wall_s']:7.2f} {r['traced_mb']:10.1f} "
                    f"{r['rss_mb']:8.1f} {cap_mb:7.1f}  {r['outcome']}"
                )
                if mode == "capped" and not r["traced_mb"] <= 3 * cap_mb + 1:
                    ok = False
        print("capped peaks within 3x the cap:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
