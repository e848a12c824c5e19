"""The demo world: synthetic multi-speaker speech with known membership ground truth.

Speakers are espeak-ng voices (variant x pitch x rate x range) split into two
groups. Group A speaks every member (and the matched non-members) in a clean
condition; group B speaks the shifted non-members, band-limited, noisy,
stored at a telephone sample rate, with shorter sentences: the
LibriSpeech-style confound. Datasets (see ``DATASETS``):

- ``demo-matched``: members and non-members from the same group-A speakers,
  sentence distribution and clean condition; any MIA signal is memorization.
- ``demo-shifted``: members group A clean; non-members group B shifted.
- ``demo-partial``: a matched core, with ``partial_replaced_fraction`` of the
  non-members replaced by group-B shifted items (``meta_role`` = 'replaced').
- ``demo-binding``: each sentence spoken by two group-A speakers; one rendering
  is the member, the other the non-member: only voice-text pairing differs.
- ``demo-pretrain``: a disjoint pool of group-A clean speech, the generic
  training data of the demo models (``role: train_pool``).

Planning (who says what, where) is a pure function of the config; rendering an
item is a pure function of its plan, so the world is bit-identical for a seed
whatever the number of worker processes.
"""

from __future__ import annotations

import logging
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal

from lalm_audit import io
from lalm_audit.audio import resample, write_audio
from lalm_audit.config import DemoConfig
from lalm_audit.demo.espeak import ESPEAK_SAMPLE_RATE, Voice, engine
from lalm_audit.demo.sentences import SentenceGenerator
from lalm_audit.logs import progress

log = logging.getLogger(__name__)

DATASETS = ("demo-matched", "demo-shifted", "demo-partial", "demo-binding", "demo-pretrain")
TRAIN_POOL = "demo-pretrain"
WORKING_RATE = 16000

# espeak-ng voice variants that sound like distinct, natural-ish speakers (median F0 75-250 Hz).
VOICE_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f5", "Annie", "Andy", "david",
    "klatt4", "klatt2", "Alicia", "belinda", "grandma", "ian", "linda", "paul", "quincy", "robert",
    "steph", "victor", "aunty",
)  # fmt: skip

# Voices reserved for re-synthesis (the disentanglement stage): no demo speaker uses these
# variants, so a re-synthesized demo item is always spoken by a voice that is neither of its
# speakers (in demo-binding: a third voice for both renderings of a sentence).
RESYNTHESIS_VOICES = (
    "en-us+Lee/r165/p50/g50",
    "en-us+travis/r165/p45/g50",
    "en-us+f4/r165/p55/g50",
)


@dataclass(frozen=True)
class Speaker:
    speaker_id: str
    group: str  # "A" or "B"
    voice: Voice


@dataclass(frozen=True)
class Utterance:
    """The full recipe of one demo item."""

    dataset: str
    item_id: str
    text: str
    speaker: Speaker
    condition: str  # "clean" or "shifted"
    label: int
    source_split: str
    role: str  # "core", "replaced", "pair", "pretrain"
    pair_id: str = ""  # demo-binding: the id shared by the two renderings of a sentence


def make_speakers(cfg: DemoConfig) -> list[Speaker]:
    """``n_speakers_a + n_speakers_b`` speakers, each with its own voice variant."""
    n = cfg.n_speakers_a + cfg.n_speakers_b
    if n > len(VOICE_VARIANTS):
        raise ValueError(f"at most {len(VOICE_VARIANTS)} demo speakers (asked for {n})")
    rng = np.random.default_rng([cfg.seed, 1])
    variants = rng.permutation(len(VOICE_VARIANTS))[:n]
    speakers = []
    for i, v in enumerate(variants):
        group = "A" if i < cfg.n_speakers_a else "B"
        idx = i + 1 if group == "A" else i - cfg.n_speakers_a + 1
        voice = Voice(
            name=f"en-us+{VOICE_VARIANTS[v]}",
            rate=int(rng.choice(np.arange(140, 195, 10))),
            pitch=int(rng.choice(np.arange(25, 80, 5))),
            range=int(rng.choice(np.arange(35, 75, 5))),
        )
        speakers.append(Speaker(f"spk-{group}{idx:02d}", group, voice))
    return speakers


def plan_world(cfg: DemoConfig) -> dict[str, list[Utterance]]:
    """Who says what in which dataset; fast and deterministic (no audio)."""
    rng = np.random.default_rng([cfg.seed, 2])
    gen = SentenceGenerator(rng)
    speakers = make_speakers(cfg)
    group_a = [s for s in speakers if s.group == "A"]
    group_b = [s for s in speakers if s.group == "B"]
    used: set[str] = set()
    s = cfg.sizes

    def draw(n: int, pool: list[Speaker]) -> list[Speaker]:
        return [pool[int(i)] for i in rng.integers(len(pool), size=n)]

    def items(n: int, pool: list[Speaker], cond: str, label: int, role: str) -> list[tuple]:
        words = cfg.words_shifted if cond == "shifted" else cfg.words_clean
        texts = gen.unique(n, *words, used)
        return [(t, spk, cond, label, role) for t, spk in zip(texts, draw(n, pool), strict=True)]

    plans: dict[str, list[tuple]] = {}
    plans["demo-matched"] = items(s.matched, group_a, "clean", 1, "core") + items(
        s.matched, group_a, "clean", 0, "core"
    )
    plans["demo-shifted"] = items(s.shifted, group_a, "clean", 1, "core") + items(
        s.shifted, group_b, "shifted", 0, "core"
    )
    n_rep = round(cfg.partial_replaced_fraction * s.partial)
    plans["demo-partial"] = (
        items(s.partial, group_a, "clean", 1, "core")
        + items(s.partial - n_rep, group_a, "clean", 0, "core")
        + items(n_rep, group_b, "shifted", 0, "replaced")
    )
    binding: list[tuple] = []
    for k, text in enumerate(gen.unique(s.binding, *cfg.words_clean, used)):
        a, b = rng.choice(len(group_a), size=2, replace=False)
        pair = f"pair-{k:04d}"
        binding += [
            (text, group_a[int(a)], "clean", 1, "pair", pair),
            (text, group_a[int(b)], "clean", 0, "pair", pair),
        ]
    plans["demo-binding"] = binding
    plans[TRAIN_POOL] = items(s.pretrain, group_a, "clean", 1, "pretrain")

    world: dict[str, list[Utterance]] = {}
    for ds, rows in plans.items():
        order = rng.permutation(len(rows))  # ids carry no trace of the label
        utts = []
        for rank, row in zip(order, rows, strict=True):
            text, spk, cond, label, role, *pair = row
            split = "pretrain" if role == "pretrain" else ("train" if label == 1 else "test")
            utts.append(
                Utterance(
                    ds,
                    f"{ds}-{rank:04d}",
                    text,
                    spk,
                    cond,
                    label,
                    split,
                    role,
                    pair[0] if pair else "",
                )
            )
        world[ds] = sorted(utts, key=lambda u: u.item_id)
    return world


def item_rng(seed: int, item_id: str) -> np.random.Generator:
    """A generator private to one item: rendering does not depend on order or workers."""
    return np.random.default_rng([seed, zlib.crc32(item_id.encode())])


def _add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    p_signal = float(np.mean(x**2))
    noise = rng.standard_normal(x.shape[0]).astype(np.float32)
    return x + noise * np.float32(np.sqrt(p_signal / 10 ** (snr_db / 10)))


def render(utt: Utterance, cfg: DemoConfig) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Synthesize and apply the recording condition. Returns (samples, storage rate, metadata)."""
    rng = item_rng(cfg.seed, utt.item_id)
    raw = engine().synthesize(utt.text, utt.speaker.voice).astype(np.float32) / 32768.0
    x = resample(raw, ESPEAK_SAMPLE_RATE, WORKING_RATE)
    x = (
        x / max(float(np.abs(x).max()), 1e-9) * np.float32(rng.uniform(0.35, 0.9))
    )  # recording level
    if utt.condition == "clean":
        snr = cfg.clean_snr_db
        x = _add_noise(x, snr, rng)
        rate = WORKING_RATE
    else:
        lo, hi = cfg.shifted_band_hz
        sos = signal.butter(
            6, [lo, min(hi, WORKING_RATE / 2 - 1)], btype="bandpass", fs=WORKING_RATE, output="sos"
        )
        x = signal.sosfilt(sos, x).astype(np.float32)
        snr = float(rng.uniform(*cfg.shifted_snr_db))
        x = _add_noise(x, snr, rng)
        rate = cfg.shifted_sample_rate
        x = resample(x, WORKING_RATE, rate)
    peak = float(np.abs(x).max())
    if peak > 0.99:
        x = x * np.float32(0.99 / peak)
    return x.astype(np.float32), rate, {"snr_db": round(snr, 3)}


def _render_to_file(args: tuple[Utterance, DemoConfig, str]) -> dict[str, Any]:
    utt, cfg, path = args
    x, rate, meta = render(utt, cfg)
    write_audio(path, x, rate)
    return meta


def build_world(cfg: DemoConfig, out_dir: str | Path, *, workers: int = 1) -> dict[str, Path]:
    """Render every demo dataset under ``out_dir``: ``audio/<dataset>/<item>.flac`` and ``<dataset>.parquet``.

    Table columns follow the manifest names (so the generic table loader needs no
    column mapping); audio paths are relative to ``out_dir``; ground truth is in
    ``speaker_group``, ``condition``, ``role``, ``pair_id``, ``voice``, ``snr_db``.
    """
    out = Path(out_dir)
    world = plan_world(cfg)
    jobs: list[tuple[Utterance, DemoConfig, str]] = []
    for ds, utts in world.items():
        (out / "audio" / ds).mkdir(parents=True, exist_ok=True)
        jobs += [(u, cfg, str(out / "audio" / ds / f"{u.item_id}.flac")) for u in utts]
    log.info("rendering %d demo utterances with %d worker(s)", len(jobs), workers)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            metas = list(
                progress(
                    pool.map(_render_to_file, jobs, chunksize=16),
                    total=len(jobs),
                    desc="demo audio",
                )
            )
    else:
        metas = [_render_to_file(j) for j in progress(jobs, desc="demo audio")]
    meta_by_item = {j[0].item_id: m for j, m in zip(jobs, metas, strict=True)}

    prov = io.provenance("demo-data", cfg, seed=cfg.seed)
    tables: dict[str, Path] = {}
    for ds, utts in world.items():
        df = pd.DataFrame(
            [
                {
                    "item_id": u.item_id,
                    "audio_path": f"audio/{ds}/{u.item_id}.flac",
                    "text": u.text,
                    "speaker_id": u.speaker.speaker_id,
                    "label": u.label,
                    "source_split": u.source_split,
                    "speaker_group": u.speaker.group,
                    "condition": u.condition,
                    "role": u.role,
                    "pair_id": u.pair_id,
                    "voice": u.speaker.voice.key,
                    **meta_by_item[u.item_id],
                }
                for u in utts
            ]
        )
        tables[ds] = out / f"{ds}.parquet"
        io.write_table(df, tables[ds], prov=prov)
    return tables
