"""Canaries: unique utterances a data owner mixes into a fine-tuning set, and checks for later.

Each canary comes in a pair of two fresh utterances of the same kind, length
range and voice; a fair coin per pair (the seeded ``balanced`` draw with the
pair as stratum) decides which one is released into the training data (the
*member*) and which stays private (its *held-out twin*). A model that never
saw the member has no reason to prefer it to its twin, so under "not trained
on my data" each pair's member has the lower loss with probability at most
1/2, independently: the number of such pairs is a sign test with an exact
binomial p-value. Because the labels are a controlled draw, the same items
also give an epsilon lower bound (:mod:`.privacy`, Clopper-Pearson on each
item's own loss; the pair score is not used there, since a pair's two
scores are one trial seen twice).

Speech comes from the offline espeak-ng engine of the demo
(:mod:`lalm_audit.demo.espeak`), so a canary set is a pure function of the
config: same seed, same texts, same samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lalm_audit.config import CanaryConfig, PrivacyConfig
from lalm_audit.controlled.privacy import EpsilonBound, clopper_pearson_bound
from lalm_audit.controlled.split import COLUMNS, ControlledSplit, _assign
from lalm_audit.errors import LalmAuditError

log = logging.getLogger(__name__)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def canary_texts(cfg: CanaryConfig, n: int, avoid: set[str] | None = None) -> list[str]:
    """``n`` distinct texts (none in ``avoid``): grammar sentences or digit strings read as words."""
    rng = np.random.default_rng([cfg.seed, 0])
    used = set(avoid or ())
    if cfg.kind == "sentence":
        from lalm_audit.demo.sentences import SentenceGenerator

        return SentenceGenerator(rng).unique(n, cfg.words[0], cfg.words[1], used)
    if 10**cfg.digits < 4 * n:  # leave room so the draw of distinct strings ends quickly
        raise LalmAuditError(
            f"canaries: {n} distinct {cfg.digits}-digit strings are too many for the digit space; "
            "raise controlled.canaries.digits"
        )
    out: list[str] = []
    while len(out) < n:
        text = " ".join(DIGIT_WORDS[d] for d in rng.integers(0, 10, cfg.digits))
        if text not in used:
            used.add(text)
            out.append(text)
    return out


def make_canaries(
    cfg: CanaryConfig,
    out_dir: str | Path,
    *,
    name: str = "canaries",
    sample_rate: int = 16000,
    avoid: set[str] | None = None,
) -> pd.DataFrame:
    """Render ``cfg.count`` canaries (``count // 2`` pairs) to ``out_dir/audio``; return the manifest.

    The manifest follows the ``MANIFEST`` contract with the controlled-draw
    columns (``meta_controlled_*``), so :meth:`ControlledSplit.from_manifest`
    reads its record back. Write its members (``label == 1``) into the
    fine-tuning set; keep the twins private.
    """
    from lalm_audit.audio import write_audio

    n_pairs = cfg.count // 2
    texts = canary_texts(cfg, 2 * n_pairs, avoid)
    render, voice_of = _renderer(cfg, sample_rate)
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for p in range(n_pairs):
        voice = voice_of(p)  # both of a pair in one voice: the voice predicts nothing
        for k, side in enumerate("ab"):
            item_id = f"{name}-{p:04d}{side}"
            samples = render(texts[2 * p + k], p, 2 * p + k, item_id)
            path = out / "audio" / f"{item_id}.wav"
            write_audio(path, samples, sample_rate)
            dur = samples.shape[0] / sample_rate
            rows.append(
                {
                    "item_id": item_id,
                    "dataset": name,
                    "audio_path": str(path),
                    "audio_bytes": None,
                    "audio_format": "WAV",
                    "offset_s": 0.0,
                    "duration_s": dur,
                    "source_duration_s": dur,
                    "sample_rate": np.int32(sample_rate),
                    "channels": np.int16(1),
                    "text": texts[2 * p + k],
                    "speaker_id": voice,
                    "source_split": "canary",
                    "truncated": False,
                    "stratum": f"{name}-{p:04d}",
                }
            )
    table = pd.DataFrame(rows)
    assigned = _assign(table[["item_id", "stratum"]], cfg.seed, "balanced", (1,))
    record = ControlledSplit(
        pool=name,
        seed=cfg.seed,
        draw="balanced",
        repetition_set=(1,),
        items=assigned.sort_values("item_id", ignore_index=True),
    )
    by_id = record.items.set_index("item_id")
    ids = table["item_id"]
    table["label"] = ids.map(by_id["label"]).astype(np.int8)
    table[COLUMNS["role"]] = np.where(table["label"] == 1, "member", "heldout")
    table[COLUMNS["repetitions"]] = ids.map(by_id["repetitions"]).astype(np.int64)
    table[COLUMNS["stratum"]] = table.pop("stratum")
    table[COLUMNS["seed"]] = np.int64(cfg.seed)
    table[COLUMNS["draw"]] = "balanced"
    table[COLUMNS["pool"]] = name
    table[COLUMNS["repetition_set"]] = "1"
    table[COLUMNS["digest"]] = record.digest
    table["meta_canary_kind"] = cfg.kind
    return table


def _renderer(cfg: CanaryConfig, sample_rate: int) -> tuple[Any, Any]:
    """(render(text, pair, index, item_id) -> samples at ``sample_rate``, voice_of(pair) -> speaker id)."""
    from lalm_audit.audio import resample

    if cfg.engine == "transformers":
        from lalm_audit.config import ResynthesisCondition
        from lalm_audit.perturb.tts import TransformersTTS

        tts = TransformersTTS(
            ResynthesisCondition(
                kind="resynthesis",
                engine="transformers",
                model=cfg.model,
                revision=cfg.revision,
                trust_remote_code=cfg.trust_remote_code,
                device=cfg.device,
            )
        )

        def render_tts(text: str, pair: int, index: int, item_id: str) -> np.ndarray:
            # one seed per utterance: stochastic models render each canary the same in every run
            return tts.synthesize(text, seed=cfg.seed * 1_000_003 + index, target_sr=sample_rate)

        return render_tts, lambda pair: f"tts:{cfg.model}"

    from lalm_audit.demo.espeak import ESPEAK_SAMPLE_RATE, EspeakError, Voice, engine

    if not cfg.voices:
        raise LalmAuditError(
            "controlled.canaries.voices is empty; list espeak-ng voices, e.g. en-us"
        )
    try:
        voices = [Voice.parse(v) for v in cfg.voices]
    except ValueError as exc:
        raise LalmAuditError(f"controlled.canaries.voices: {exc}") from None
    espeak = engine()

    def render_espeak(text: str, pair: int, index: int, item_id: str) -> np.ndarray:
        try:
            pcm = espeak.synthesize(text, voices[pair % len(voices)]).astype(np.float32) / 32768.0
        except EspeakError as exc:
            raise LalmAuditError(
                f"canary {item_id}: {exc}. Fix: controlled.canaries.voices (e.g. en-us, en-us+f3)"
            ) from None
        return resample(pcm, ESPEAK_SAMPLE_RATE, sample_rate)

    return render_espeak, lambda pair: voices[pair % len(voices)].key


def release_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """The members only, as the data owner releases them: item id, audio file, transcript."""
    members = manifest[manifest["label"] == 1]
    return members[["item_id", "audio_path", "text", "speaker_id"]].reset_index(drop=True)


@dataclass(frozen=True)
class CanaryAudit:
    """What a model's losses say about the canary pairs."""

    pairs: int
    member_wins: int  # pairs whose member has the lower loss
    p_value: float  # P[>= member_wins of pairs] under "not trained on the members"
    auc: float  # member vs twin, on the pair-referenced score
    bound: EpsilonBound
    per_item: pd.DataFrame  # item_id, label, stratum, loss, score

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "member_wins": self.member_wins,
            "p_value": self.p_value,
            "auc": self.auc,
            "epsilon_lower_bound": self.bound.as_dict(),
            "verdict": self.verdict(),
        }

    def verdict(self, alpha: float = 0.05) -> str:
        if self.p_value < alpha:
            return (
                f"trained on the canaries: {self.member_wins} of {self.pairs} members beat their "
                f"twin (sign test p = {self.p_value:.2g} < {alpha:g})"
            )
        return (
            f"no evidence of training on the canaries: {self.member_wins} of {self.pairs} members "
            f"beat their twin (sign test p = {self.p_value:.2g}); absence of evidence, not proof"
        )


def audit_canaries(
    adapter: Any,
    manifest: pd.DataFrame,
    *,
    prompt: str,
    batch_size: int = 8,
    privacy: PrivacyConfig | None = None,
) -> CanaryAudit:
    """Score every canary (mean response-token loss of its transcript) and test the pairs."""
    from sklearn.metrics import roc_auc_score

    from lalm_audit.models.base import load_clips
    from lalm_audit.scoring.pipeline import score

    split = ControlledSplit.from_manifest(manifest)
    privacy = privacy or PrivacyConfig()
    clips, rejected = load_clips(adapter, manifest, "truncate", dataset=str(split.pool))
    if rejected:
        raise LalmAuditError(
            f"canaries {[r['item_id'] for r in rejected][:3]} cannot be read: {rejected[0]['reason']}"
        )
    texts = dict(zip(manifest["item_id"], manifest["text"], strict=True))
    tok = score(adapter, clips, texts, prompt=prompt, batch_size=batch_size)
    resp = tok[tok["slice"] == "response"].set_index("item_id")
    loss = resp["logp"].map(lambda lp: -float(np.mean(lp)))
    items = split.items.set_index("item_id").assign(loss=loss)
    # the twin is the reference: the score is how much lower an item's loss is than its pair's
    pair_total = items.groupby("stratum")["loss"].transform("sum")
    items["score"] = (pair_total - items["loss"]) - items["loss"]
    members = items[items["label"] == 1]
    wins = int((members["score"] > 0).sum())
    n_pairs = int(members.shape[0])
    p_value = float(stats.binom.sf(wins - 1, n_pairs, 0.5))
    # the bound takes each item's own loss: the pair scores are +d/-d, two views of one trial
    bound = clopper_pearson_bound(
        split,
        -items["loss"],
        delta=privacy.delta,
        confidence=privacy.confidence,
        threshold=privacy.threshold,
        heldout_fraction=privacy.heldout_fraction,
        seed=split.seed,
    )
    auc = float(roc_auc_score(items["label"], items["score"]))
    per_item = items.reset_index()[["item_id", "label", "stratum", "loss", "score"]]
    return CanaryAudit(n_pairs, wins, p_value, auc, bound, per_item)
