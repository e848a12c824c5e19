"""Typed configuration: the one source of truth for every config key.

``workflow/schemas/config.schema.json`` (what Snakemake validates against) is
generated from these models by ``lalm-audit config-schema``; a test fails when
the two drift. Every model forbids unknown keys, so a typo is an error that
names the key instead of a setting that is silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lalm_audit.errors import ConfigError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME_RE = re.compile(NAME_PATTERN)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- audio


class AudioConfig(Strict):
    """How every clip is decoded and what counts as unusable audio."""

    sample_rate: int = Field(
        16000,
        ge=8000,
        description="Target sample rate (Hz); audio is resampled to it, mono, float32.",
    )
    max_duration_s: float = Field(
        30.0, gt=0, description="Longest clip accepted, in seconds (after offset/duration cuts)."
    )
    long_clip_policy: Literal["truncate", "reject"] = Field(
        "truncate",
        description="Clips longer than max_duration_s: 'truncate' keeps the first max_duration_s seconds and "
        "records truncated=true on the item; 'reject' writes the item to the rejected table.",
    )
    min_duration_s: float = Field(0.1, ge=0, description="Shorter clips are rejected as empty.")
    silence_threshold_dbfs: float = Field(
        -60.0,
        description="A clip whose peak level is below this (dBFS) is rejected as silent-only.",
    )


# --------------------------------------------------------------------------- datasets


class ColumnMap(Strict):
    """Which source column holds each manifest field (None: the field is absent in the source)."""

    item_id: str | None = Field(
        "item_id", description="Unique item id; None: '<file stem>-<row>' is used."
    )
    audio: str = Field(
        "audio_path",
        description="Audio file path (relative to audio_root) or HF-style {bytes, path} struct.",
    )
    text: str = Field("text", description="Transcript.")
    speaker_id: str | None = Field("speaker_id", description="Speaker id; None: 'unknown'.")
    label: str | None = Field(
        "label",
        description="Membership label (1 member / 0 non-member); None: derived from source_split.",
    )
    source_split: str | None = Field(
        "source_split", description="Source split name (e.g. train/test)."
    )
    offset_s: str | None = Field(None, description="Segment start within the file, seconds.")
    duration_s: str | None = Field(None, description="Segment duration, seconds.")


class DatasetBase(Strict):
    """Settings every dataset shares, whatever its loader."""

    role: Literal["audit", "train_pool"] = Field(
        "audit",
        description="'audit': a member/non-member dataset that every later stage audits; "
        "'train_pool': items only used to train demo models (one class allowed, never audited).",
    )
    member_splits: list[str] = Field(
        default_factory=list,
        description="Source splits whose items are members (label 1) when no label column exists.",
    )
    nonmember_splits: list[str] = Field(
        default_factory=list, description="Source splits whose items are non-members (label 0)."
    )
    min_items_per_class: int = Field(
        10, ge=1, description="Fewer kept items in either class stops the run."
    )
    max_items_per_class: int | None = Field(
        None,
        ge=1,
        description="Balanced random subsample per class (seeded); the rest are recorded as 'subsampled'.",
    )
    description: str = ""

    @model_validator(mode="after")
    def _splits_disjoint(self) -> DatasetBase:
        both = set(self.member_splits) & set(self.nonmember_splits)
        if both:
            raise ValueError(
                f"splits {sorted(both)} are listed as both member_splits and nonmember_splits"
            )
        return self


class TableDataset(DatasetBase):
    """A generic table (CSV, TSV, JSONL or Parquet), one row per item."""

    loader: Literal["table"]
    path: str = Field(description="Table file.")
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet"] = "auto"
    columns: ColumnMap = Field(default_factory=ColumnMap)
    audio_root: str | None = Field(
        None, description="Base folder of relative audio paths; default: the table's folder."
    )
    metadata_columns: list[str] | Literal["all"] = Field(
        "all", description="Extra source columns carried into the manifest as meta_<name>."
    )


class LibriSpeechDataset(DatasetBase):
    """The LibriSpeech folder layout: <root>/<split>/<speaker>/<chapter>/*.flac + *.trans.txt."""

    loader: Literal["librispeech"]
    root: str = Field(
        description="Folder holding the split folders (e.g. train-clean-100/, test-clean/)."
    )
    audio_ext: str = "flac"

    @model_validator(mode="after")
    def _needs_splits(self) -> LibriSpeechDataset:
        if self.role == "audit" and not (self.member_splits and self.nonmember_splits):
            raise ValueError(
                "librispeech needs member_splits and nonmember_splits (e.g. [train-clean-100] / [test-clean])"
            )
        return self


class HFColumns(Strict):
    audio: str = "audio"
    text: str = "text"
    item_id: str | None = "id"
    speaker_id: str | None = "speaker_id"


class HFParquetDataset(DatasetBase):
    """Hugging Face ``datasets`` Parquet shards with audio as {bytes, path} structs."""

    loader: Literal["hf_parquet"]
    files: dict[str, str | list[str]] = Field(
        description="Source split -> glob(s) of its shards, e.g. {train: 'data/train-*.parquet'}."
    )
    columns: HFColumns = Field(default_factory=HFColumns)
    metadata_columns: list[str] | Literal["all"] = "all"

    @model_validator(mode="after")
    def _splits_known(self) -> HFParquetDataset:
        unknown = (set(self.member_splits) | set(self.nonmember_splits)) - set(self.files)
        if unknown:
            raise ValueError(f"member/nonmember splits {sorted(unknown)} have no entry in files")
        return self


LOADER_NAMES = ("table", "librispeech", "hf_parquet")

DatasetConfig = Annotated[
    TableDataset | LibriSpeechDataset | HFParquetDataset, Field(discriminator="loader")
]


# --------------------------------------------------------------------------- demo world


class DemoSizes(Strict):
    """Items per class for each demo dataset (pretrain: total items)."""

    matched: int = Field(60, ge=4)
    shifted: int = Field(60, ge=4)
    partial: int = Field(60, ge=4)
    binding: int = Field(60, ge=4)
    pretrain: int = Field(120, ge=4)


class DemoConfig(Strict):
    """The synthetic demo world: espeak-ng speakers in two groups, datasets with known ground truth."""

    seed: int = 0
    n_speakers_a: int = Field(
        10, ge=4, description="Group A: the members' speakers (and matched non-members')."
    )
    n_speakers_b: int = Field(8, ge=2, description="Group B: the shifted non-members' speakers.")
    sizes: DemoSizes = Field(default_factory=DemoSizes)
    partial_replaced_fraction: float = Field(0.3, ge=0, le=1)
    words_clean: tuple[int, int] = Field(
        (6, 11), description="Sentence length range (words) of clean items."
    )
    words_shifted: tuple[int, int] = Field(
        (3, 6), description="Sentence length range (words) of shifted items."
    )
    clean_snr_db: float = Field(40.0, description="Noise floor of clean recordings (SNR, dB).")
    shifted_snr_db: tuple[float, float] = Field(
        (6.0, 14.0), description="SNR range (dB) of shifted recordings."
    )
    shifted_band_hz: tuple[float, float] = Field(
        (300.0, 3400.0), description="Pass band of shifted recordings (telephone-like)."
    )
    shifted_sample_rate: int = Field(
        8000, description="Shifted recordings are stored at this rate."
    )

    @field_validator("words_clean", "words_shifted")
    @classmethod
    def _range(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError(f"word range {v} must satisfy 1 <= low <= high")
        return v


# --------------------------------------------------------------------------- evaluation


class EvaluationConfig(Strict):
    """How every score (blind or MIA) is evaluated; see ``lalm_audit.evaluation``."""

    bootstrap: int = Field(1000, ge=100, description="Stratified bootstrap resamples for every CI.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of every CI.")
    fpr_targets: tuple[float, ...] = Field(
        (0.001, 0.01, 0.05), description="FPR bounds at which TPR is reported (0.001 = 0.1%)."
    )

    @field_validator("fpr_targets")
    @classmethod
    def _fprs(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 < f < 1 for f in v):
            raise ValueError("fpr_targets must be fractions in (0, 1)")
        return tuple(sorted(v))


# --------------------------------------------------------------------------- indicators


class AggregateConfig(Strict):
    """The aggregated attack: a logistic regression over all indicators (metrics.md)."""

    folds: int = Field(10, ge=2, description="Stratified CV folds (fewer when a class is smaller).")
    C: float = Field(
        1.0, gt=0, description="Inverse L2 regularization strength of the logistic regression."
    )
    slices: list[str] | None = Field(
        None, description="Slices whose indicators feed it; null: every scored slice."
    )


class IndicatorsConfig(Strict):
    """Membership indicators computed from stored token statistics (no model pass)."""

    families: list[str] = Field(
        default_factory=lambda: [
            "loss",
            "zlib",
            "min_k",
            "max_k",
            "min_k_pp",
            "renyi",
            "mod_entropy",
            "max_prob_gap",
        ],
        description="Indicator families (lalm_audit.indicators.FAMILIES); parameterized ones expand over k_grid.",
    )
    k_grid: list[float] = Field(
        default_factory=lambda: [0, 5, 10, 20, 30, 40, 50, 60, 100],
        description="K% values of Min-K%, Max-K%, Min-K%++ and MaxRenyi-K% (0 = the single extreme token).",
    )
    slices: list[Literal["audio", "prompt", "response", "prompt+response"]] = Field(
        default_factory=lambda: ["audio", "prompt", "response", "prompt+response"],
        description="Token slices to score; target-based indicators skip 'audio'.",
    )
    reference: dict[str, str] = Field(
        default_factory=dict,
        description="Model alias -> reference model alias: adds ref_loss_diff = loss(model) - loss(reference).",
    )
    aggregate: AggregateConfig = Field(default_factory=AggregateConfig)

    @field_validator("families")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from lalm_audit.indicators import FAMILIES

        unknown = sorted(set(v) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown indicator families {unknown}; known: {sorted(FAMILIES)}")
        return v

    @field_validator("k_grid")
    @classmethod
    def _k(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 <= k <= 100 for k in v):
            raise ValueError("k_grid values must lie in [0, 100]")
        return v


# --------------------------------------------------------------------------- perturbations


class SilenceCondition(Strict):
    """Audio replaced by digital silence (the text-only condition)."""

    kind: Literal["silence"]
    length: Literal["same", "fixed"] = Field(
        "fixed",
        description="'same': zeros as long as the original (still carries the clip's duration!); "
        "'fixed': zeros of `seconds` for every item, so only the text differs between items.",
    )
    seconds: float = Field(3.0, gt=0, description="Length of fixed-length silence.")


class NoiseCondition(Strict):
    """Audio replaced by Gaussian noise with the original's length and RMS (the noise-only condition)."""

    kind: Literal["noise"]


class ResynthesisCondition(Strict):
    """The transcript re-spoken by text-to-speech in other voices; scores averaged over renderings."""

    kind: Literal["resynthesis"]
    engine: Literal["espeak", "transformers"] = Field(
        "espeak",
        description="'espeak': offline espeak-ng voices; 'transformers': a text-to-speech model.",
    )
    voices: list[str] | None = Field(
        None,
        description="espeak voices ('en-us+f3/r170/p60/g50'), one rendering each; null: the three voices the demo "
        "world reserves for re-synthesis (never used by a demo speaker).",
    )
    renderings: int = Field(
        3, ge=1, description="Renderings per item (transformers engine: seeds 0..N-1)."
    )
    model: str | None = Field(
        None, description="transformers engine: hub id or local path of a text-to-speech model."
    )
    revision: str | None = Field(
        None, description="transformers engine: model revision (branch, tag or commit)."
    )
    trust_remote_code: bool = Field(
        False, description="transformers engine: allow the model's own code (off unless set)."
    )
    device: str = Field("cpu", description="transformers engine: torch device.")

    @model_validator(mode="after")
    def _engine_settings(self) -> ResynthesisCondition:
        if self.engine == "transformers" and not self.model:
            raise ValueError(
                "resynthesis with engine 'transformers' needs `model` (hub id or local path)"
            )
        if (
            self.engine == "espeak"
            and self.voices is not None
            and len(self.voices) != self.renderings
        ):
            raise ValueError(
                f"{len(self.voices)} voices given for {self.renderings} renderings: give one voice per rendering"
            )
        return self


class PitchShiftCondition(Strict):
    """Speaker perturbation that keeps the words: pitch shifted by a fixed number of semitones."""

    kind: Literal["pitch_shift"]
    semitones: float = Field(4.0, description="Shift in semitones (positive: up).")


class VtlpCondition(Strict):
    """Speaker perturbation that keeps the words: vocal tract length perturbation (frequency-axis warp)."""

    kind: Literal["vtlp"]
    alpha: float = Field(
        1.2,
        gt=0.5,
        lt=2.0,
        description="Warp factor (>1 moves formants up, a shorter vocal tract).",
    )
    boundary_hz: float = Field(
        4800.0, gt=0, description="Warp boundary frequency F_hi of Jaitly & Hinton (2013)."
    )


class SnrNoiseCondition(Strict):
    """Gaussian noise added to the original at a set SNR."""

    kind: Literal["snr_noise"]
    snr_db: float = Field(10.0, description="Signal-to-noise ratio in dB.")


class BandlimitCondition(Strict):
    """The original band-limited (telephone-like by default)."""

    kind: Literal["bandlimit"]
    low_hz: float = Field(300.0, ge=0)
    high_hz: float = Field(3400.0, gt=0)

    @model_validator(mode="after")
    def _band(self) -> BandlimitCondition:
        if self.low_hz >= self.high_hz:
            raise ValueError("low_hz must be below high_hz")
        return self


PerturbCondition = Annotated[
    SilenceCondition
    | NoiseCondition
    | ResynthesisCondition
    | PitchShiftCondition
    | VtlpCondition
    | SnrNoiseCondition
    | BandlimitCondition,
    Field(discriminator="kind"),
]


def _default_conditions() -> dict[str, Any]:
    return {
        "silence": SilenceCondition(kind="silence", length="fixed"),
        "silence_same_length": SilenceCondition(kind="silence", length="same"),
        "noise": NoiseCondition(kind="noise"),
        "resynthesis": ResynthesisCondition(kind="resynthesis"),
        "pitch_up": PitchShiftCondition(kind="pitch_shift"),
        "vtlp": VtlpCondition(kind="vtlp"),
        "snr_10": SnrNoiseCondition(kind="snr_noise"),
        "telephone": BandlimitCondition(kind="bandlimit"),
    }


class PerturbConfig(Strict):
    """Modality disentanglement: re-score items under perturbed audio (phase 3 of the paper)."""

    datasets: list[str] | None = Field(
        None, description="Datasets to perturb; null: every audit dataset."
    )
    models: list[str] | None = Field(
        None, description="Models re-scored under perturbations; null: every scored model."
    )
    conditions: dict[str, PerturbCondition] = Field(
        default_factory=_default_conditions,
        description="Condition name -> perturbation; items become <item>__<name>.",
    )
    responses: list[Literal["generated", "regenerated", "transcript"]] = Field(
        default_factory=lambda: ["generated", "transcript"],
        description="Which text stage 2 scores under a perturbation: the stage-1 response to the ORIGINAL audio "
        "('generated'), a response regenerated from the perturbed audio ('regenerated'), or the transcript.",
    )

    @field_validator("conditions")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if name == "original" or not _NAME_RE.match(name) or "__" in name:
                raise ValueError(
                    f"condition name {name!r} must match {NAME_PATTERN}, not contain '__' and not be 'original'"
                )
        return v


# --------------------------------------------------------------------------- analysis


class AnalysisConfig(Strict):
    """Correlation with blind artifacts, confound adjustment and condition comparisons."""

    targets: list[str] = Field(
        default_factory=lambda: [
            "response/loss",
            "response/min_k_20",
            "prompt+response/loss",
            "audio/renyi_2_max_k_100",
        ],
        description="'<slice>/<indicator>' scores that the correlation, confound-adjustment, ROC and "
        "disentanglement analyses report; the first is the disentanglement chart's. The correlation stage and the "
        "ROC curves add the aggregated attack ('all/aggregate') themselves.",
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Significance level (after Holm's correction) of condition comparisons.",
    )
    confound_adjust: bool = Field(
        True, description="Compute the confound-adjusted AUC and the blind + indicator gain."
    )

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t.count("/") != 1]
        if bad:
            raise ValueError(f"targets must read '<slice>/<indicator>' (got {bad})")
        return v


# --------------------------------------------------------------------------- models and scoring

#: LALM families with an adapter (``lalm_audit.models.ADAPTERS``; a test keeps the two in sync).
MODEL_FAMILIES = (
    "qwen2_audio",
    "audio_flamingo3",
    "music_flamingo",
    "qwen2_5_omni",
    "voxtral",
)


class ModelConfig(Strict):
    """One target model, by alias: where to load it from and how to run it."""

    family: Literal[MODEL_FAMILIES] = Field(  # type: ignore[valid-type]
        description="Adapter family: " + ", ".join(MODEL_FAMILIES) + "."
    )
    path_or_hub_id: str = Field(
        description="Hugging Face hub id (e.g. nvidia/audio-flamingo-3-hf) or a local folder."
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit) to pin; null: the default branch."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weights dtype; auto: bfloat16 on a GPU that supports it, else float16 "
        "on GPU, float32 on CPU. Statistics are always computed in float32.",
    )
    device: str = Field(
        "auto", description="auto (cuda if available, else cpu), cpu, cuda, cuda:N."
    )
    batch_size: int = Field(8, ge=1, description="Items per batch in both stages.")
    prompt: str = Field(
        "Transcribe the audio.", min_length=1, description="Text prompt given with the audio."
    )
    max_new_tokens: int = Field(128, ge=1, description="Longest stage-1 response, in tokens.")
    trust_remote_code: bool = Field(
        False, description="Run the checkpoint's own Python code (only for models that need it)."
    )
    long_clip_policy: Literal["truncate", "reject"] = Field(
        "truncate",
        description="Clips longer than the model's audio window: 'truncate' scores the first "
        "window (recorded as audio_window_truncated, with a warning); 'reject' records the item "
        "as rejected ('too_long_for_model') and does not score it.",
    )
    attn_implementation: str | None = Field(
        None,
        description="transformers attention backend (sdpa, eager, flash_attention_2); null: default.",
    )


class ScoringConfig(Strict):
    """Two-stage scoring: stage-1 generation, stage-2 teacher-forced statistics."""

    models: list[str] | None = Field(
        None, description="Model aliases to score; null: every configured model."
    )
    responses: list[Literal["generated", "transcript"]] = Field(
        default_factory=lambda: ["generated", "transcript"],
        description="Texts stage 2 scores on original audio: the model's greedy response "
        "('generated', as in VL-MIA) and/or the ground-truth transcript.",
    )
    shards: int = Field(
        4, ge=1, description="Jobs per (model, dataset, stage); a killed job loses one shard."
    )
    chunk_positions: int = Field(
        256, ge=1, description="Positions whose logits are materialized at once in stage 2."
    )
    compile_stats: Literal["auto", "always", "never"] = Field(
        "auto",
        description="torch.compile the statistics (fuses ~20 passes over the vocabulary); "
        "auto: on CUDA only (compilation costs seconds per process).",
    )
    local_files_only: bool = Field(
        False, description="Never contact the hub (also on when HF_HUB_OFFLINE=1)."
    )


class DemoModelSpec(Strict):
    train_members: bool = Field(
        description="Also train on the members of every audit dataset (true: the model under "
        "audit; false: a control that saw no member)."
    )


class DemoModelsConfig(Strict):
    """Small Qwen2-Audio models trained on the demo data on CPU (the demo's target models)."""

    seed: int = Field(0, description="Seed of the tokenizer sample, initialization and shuffling.")
    epochs: int = Field(20, ge=1, description="Passes over the training items.")
    learning_rate: float = Field(
        4e-3,
        gt=0,
        description="AdamW peak learning rate (one epoch of warm-up, then linear decay).",
    )
    batch_size: int = Field(12, ge=1, description="Items per optimizer step.")
    window_s: int = Field(
        5,
        ge=1,
        description="Audio window (Whisper chunk_length, seconds); longer clips get the model's "
        "long_clip_policy.",
    )
    vocab_size: int = Field(768, ge=300, description="Byte-level BPE vocabulary size.")
    hidden_size: int = Field(
        64, ge=16, description="Hidden size of the text and audio transformers."
    )
    layers: int = Field(2, ge=1, description="Layers of the text and audio transformers.")
    heads: int = Field(
        4, ge=1, description="Attention heads (the text model has half as many KV heads)."
    )
    models: dict[str, DemoModelSpec] = Field(
        default_factory=lambda: {
            "demo-target": DemoModelSpec(train_members=True),
            "demo-control": DemoModelSpec(train_members=False),
        },
        description="Alias -> recipe; each alias must also be configured under models (family "
        "qwen2_audio, path_or_hub_id results/models/<alias>).",
    )


# --------------------------------------------------------------------------- features (blind baseline)

FEATURE_GROUPS = ("text", "spectral", "prosodic", "metadata")
FeatureGroupName = Literal["text", "spectral", "prosodic", "metadata"]


class SpectralConfig(Strict):
    """librosa clip statistics (features group ``spectral``), computed at ``audio.sample_rate``."""

    n_mfcc: int = Field(13, ge=1, le=40, description="MFCCs per frame (their deltas too).")
    n_mels: int = Field(40, ge=8, description="Mel bands the MFCCs are computed from.")
    n_fft: int = Field(512, ge=64, description="STFT window (samples; 512 = 32 ms at 16 kHz).")
    hop_length: int = Field(160, ge=16, description="STFT hop (samples; 160 = 10 ms at 16 kHz).")
    contrast_bands: int = Field(
        5,
        ge=1,
        description="Spectral-contrast octave bands above 200 Hz (must stay below Nyquist).",
    )
    rolloff_percent: float = Field(
        0.85,
        gt=0,
        lt=1,
        description="Spectral rolloff: frequency below which this energy share lies.",
    )
    percentiles: tuple[float, ...] = Field(
        (10.0, 50.0, 90.0),
        description="Percentiles of every frame series reported beside its mean and std.",
    )


class ProsodicConfig(Strict):
    """openSMILE functionals (features group ``prosodic``)."""

    feature_set: Literal["eGeMAPSv02", "GeMAPSv01b"] = Field(
        "eGeMAPSv02", description="openSMILE feature set (Functionals level)."
    )


class MetadataFeaturesConfig(Strict):
    """File and signal facts (features group ``metadata``), read at the source's own rate."""

    silence_top_db: float = Field(
        40.0,
        gt=0,
        description="Leading/trailing silence: frames this many dB below the clip's peak.",
    )
    clip_level: float = Field(
        0.999, gt=0, le=1, description="|sample| at or above this counts as clipped."
    )


class FeaturesConfig(Strict):
    """Blind-baseline feature extraction: one cached table per dataset and group."""

    groups: list[FeatureGroupName] = Field(
        default_factory=lambda: list(FEATURE_GROUPS),
        description="Feature groups to extract and classify (text, spectral, prosodic, metadata).",
    )
    shards: int = Field(
        4, ge=1, description="Extraction jobs per dataset and audio group (text runs as one job)."
    )
    dataset_shards: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Dataset alias -> shard count, overriding 'shards'."
    )
    max_failed_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A group whose share of failed items exceeds this stops the run (failures are "
        "recorded per item in feature_error; above this share a bug or bad input is likelier than bad items).",
    )
    spectral: SpectralConfig = Field(default_factory=SpectralConfig)
    prosodic: ProsodicConfig = Field(default_factory=ProsodicConfig)
    metadata: MetadataFeaturesConfig = Field(default_factory=MetadataFeaturesConfig)

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("features.groups must list at least one group, each once")
        return v

    def n_shards(self, dataset: str, group: str) -> int:
        """Extraction jobs for one dataset and group (text is cheap: always one)."""
        if group == "text":
            return 1
        return self.dataset_shards.get(dataset, self.shards)


# --------------------------------------------------------------------------- blind classifiers


class LogisticConfig(Strict):
    """The paper's blind classifier: L2 logistic regression on standardized features."""

    C: float = Field(
        0.1, gt=0, description="Inverse L2 strength (small: many features, few items)."
    )
    max_iter: int = Field(5000, ge=100, description="lbfgs iterations.")


class GBTConfig(Strict):
    """Gradient-boosted trees (scikit-learn HistGradientBoostingClassifier): finds non-linear shifts."""

    max_iter: int = Field(100, ge=1, description="Boosting rounds.")
    learning_rate: float = Field(0.1, gt=0, le=1)
    max_depth: int = Field(3, ge=1, description="Depth of each tree.")
    min_samples_leaf: int = Field(10, ge=1, description="Fewest training items per leaf.")
    l2_regularization: float = Field(0.0, ge=0)
    max_bins: int = Field(
        255,
        ge=2,
        le=255,
        description="Histogram bins per feature (fewer: faster; enough for small sets).",
    )
    early_stopping: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Stop boosting when a 10% validation split of the training fold stops improving; "
        "'auto': only above 10,000 training items (scikit-learn's rule).",
    )


class TfidfConfig(Strict):
    """TF-IDF of the transcript (text group), always fit inside each training fold."""

    ngram_max: int = Field(
        2, ge=1, le=3, description="Word n-grams from 1 to this (2: unigrams + bigrams)."
    )
    min_df: int = Field(
        2,
        ge=1,
        description="Drop n-grams seen in fewer training transcripts (a singleton cannot generalize).",
    )
    max_features: int | None = Field(
        None, ge=1, description="Keep the most frequent n-grams (logistic regression); null: all."
    )
    tree_max_features: int = Field(
        200,
        ge=1,
        description="Most frequent n-grams the trees see (they need a dense matrix).",
    )
    sublinear_tf: bool = Field(True, description="Use 1 + log(tf).")


class PermutationControlConfig(Strict):
    """The label-permutation null of the blind CV: the same CV, every check, on shuffled labels.

    It gives every blind verdict its p-value (``lalm_audit.verdicts``): each shuffle
    refits every check (group x classifier) on the same shuffled labels, so the
    null includes the refit variance that a bootstrap of fixed out-of-fold
    scores misses, and the maximum over checks handles their multiplicity.
    """

    enabled: bool = True
    shuffles: int = Field(
        19,
        ge=1,
        description="Label shuffles of the whole CV. The permutation p-value is (1 + #shuffles at least "
        "as extreme) / (1 + shuffles): 19 resolves p = 0.05, 99 resolves 0.01. Each costs one blind CV.",
    )


class HeatmapConfig(Strict):
    """Cross-dataset heatmap (the paper's Figure 2): blind AUC between every two groups of items."""

    enabled: bool = True
    pairing: Literal["label", "dataset"] = Field(
        "label",
        description="'label': each dataset's members and non-members are two sides; 'dataset': one side "
        "per dataset.",
    )
    classifier: Literal["logistic", "gbt", "stronger"] = Field(
        "logistic", description="Classifier of each pair ('stronger' runs both: twice the time)."
    )
    groups: list[FeatureGroupName] | None = Field(
        None, description="Feature groups it uses, combined; null: every extracted group."
    )
    folds: int = Field(5, ge=2, description="Stratified CV folds of each pair.")


class BlindConfig(Strict):
    """Blind classifiers: membership from features alone (no model), per group and combined."""

    folds: int = Field(
        10, ge=2, description="Stratified CV folds (fewer when a class has fewer items)."
    )
    classifiers: list[Literal["logistic", "gbt"]] = Field(
        default_factory=lambda: ["logistic", "gbt"],
        description="Classifiers run on every group; the reported one is logistic regression unless "
        "another is significantly stronger (paired bootstrap of the AUC difference).",
    )
    combined: bool = Field(True, description="Also classify with every group's features at once.")
    gbt_groups: list[str] = Field(
        default_factory=lambda: ["combined"],
        description="Groups the trees run on (they cost about 3x a logistic fit per check and every "
        "check is refit on every permutation shuffle); 'combined' sees every feature at once. "
        "Use [all] for every group.",
    )
    group_same_text: bool = Field(
        True,
        description="Keep items whose transcript occurs in BOTH classes in one CV fold (otherwise the same "
        "sentence read by a member and a non-member pushes the text AUC far below 0.5). A transcript "
        "found in one class only is never grouped: its repetition is a vocabulary shift the CV must see.",
    )
    group_by_speaker: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Keep each speaker's items in one CV fold, so the blind classifier cannot score by "
        "recognizing speakers it saw in training ('auto': on when the manifest has speaker ids). The "
        "item-level AUC is reported beside the speaker-level one.",
    )
    logistic: LogisticConfig = Field(default_factory=LogisticConfig)
    gbt: GBTConfig = Field(default_factory=GBTConfig)
    tfidf: TfidfConfig = Field(default_factory=TfidfConfig)
    permutation_control: PermutationControlConfig = Field(default_factory=PermutationControlConfig)
    top_features: int = Field(
        5, ge=1, description="Features explained in words per group and classifier."
    )
    importance_repeats: int = Field(
        3, ge=1, description="Shuffles per feature of the trees' held-out permutation importance."
    )
    importance_max_items: int = Field(
        5000,
        ge=10,
        description="Held-out items the trees' permutation importance is computed on (a seeded subset "
        "of larger sets).",
    )
    heatmap: HeatmapConfig = Field(default_factory=HeatmapConfig)

    @field_validator("classifiers")
    @classmethod
    def _clfs(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("blind.classifiers must list at least one classifier, each once")
        return v


# --------------------------------------------------------------------------- clean splits


class FilterConfig(Strict):
    """Selection by filtering: drop the most confidently placed items of both classes, in balanced steps."""

    step_fraction: float = Field(
        0.02,
        gt=0,
        le=0.25,
        description="Items dropped per step, as a fraction of the dataset (split over both classes).",
    )
    tail_q: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="Tail test: how far into each class's extreme the excess test looks.",
    )
    tail_alpha: float = Field(
        0.01, gt=0, lt=1, description="Tail test level: a smaller p keeps filtering."
    )
    gap_sd: float = Field(
        0.0,
        ge=0,
        description="Largest reach of one class beyond the other's range, in blind-logit SDs "
        "(0: keep filtering while either class reaches past the other's extreme at all).",
    )


class MatchConfig(Strict):
    """Selection by 1:1 nearest-neighbour matching of members to non-members on the blind logit."""

    caliper_sd: float = Field(
        0.2,
        gt=0,
        description="Largest logit distance of a pair, in SDs of the logit (Austin's 0.2).",
    )


class SplitsConfig(Strict):
    """Clean splits: subsets on which the blind baseline is at chance, re-verified by a fresh CV."""

    methods: list[Literal["filter", "match"]] = Field(
        default_factory=lambda: ["filter", "match"],
        description="Selection methods; each gives one split named after it.",
    )
    selection: Literal["most_separating", "combined"] = Field(
        "most_separating",
        description="Whose out-of-fold predictions choose the items: the blind check (group x classifier) that "
        "separates the classes most, or the combined group's reported classifier.",
    )
    min_items_per_class: int = Field(
        20, ge=2, description="A split never keeps fewer items per class."
    )
    min_fraction: float = Field(
        0.25, gt=0, le=1, description="... nor fewer than this fraction of the smaller class."
    )
    max_rounds: int = Field(
        3, ge=1, description="Select-then-verify rounds before the verdict is 'not auditable'."
    )
    filter: FilterConfig = Field(default_factory=FilterConfig)
    match: MatchConfig = Field(default_factory=MatchConfig)


# --------------------------------------------------------------------------- verdicts


class VerdictsConfig(Strict):
    """The rules every verdict reads (``lalm_audit.verdicts``); recorded with every verdict."""

    alpha: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="False-positive rate of every verdict: 'shifted' on data without a shift, 'clean' on "
        "data shifted by the margin, 'membership signal' on a model that never saw a member.",
    )
    margin: float = Field(
        0.1,
        gt=0,
        lt=0.5,
        description="Equivalence margin of 'clean': a split is clean when every blind check's AUC is "
        "below 0.5 + margin with confidence 1 - alpha (what an auditor accepts as no shift).",
    )
    power: float = Field(
        0.8,
        gt=0.5,
        lt=1,
        description="Power at which the smallest detectable shift is stated beside every verdict.",
    )
    aggregate_shuffles: int = Field(
        99,
        ge=19,
        description="Label shuffles of the aggregated attack's CV for its permutation p-value.",
    )


# --------------------------------------------------------------------------- controlled audits


class LoraRecipe(Strict):
    """LoRA fine-tuning of a target model on the controlled members (through peft)."""

    prompt: str = Field(
        "Transcribe the audio.", description="Task prompt; the target response is the transcript."
    )
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Linear layers that get LoRA adapters (module-name suffixes).",
    )
    scope: Literal["language_model", "all"] = Field(
        "language_model",
        description="'language_model': adapt those layers in the text model only (the audio "
        "encoder stays frozen as released); 'all': wherever the names occur.",
    )
    rank: int = Field(8, ge=1, description="LoRA rank r.")
    alpha: float = Field(16.0, gt=0, description="LoRA alpha (the update is scaled by alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    learning_rate: float = Field(2e-4, gt=0, description="AdamW peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay on the LoRA weights.")
    warmup_fraction: float = Field(
        0.1, ge=0, lt=1, description="Share of the steps with linear warm-up (then linear decay)."
    )
    epochs: int = Field(3, ge=1, description="Passes over the members (each repeated as drawn).")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (null: all epochs)."
    )
    batch_size: int = Field(4, ge=1, description="Clips per optimizer step.")
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass (less memory, ~30% slower)."
    )
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Training dtype; 'auto': bfloat16 on a GPU that has it, else float32."
    )
    device: str = Field("auto", description="Torch device ('auto': CUDA when available).")
    seed: int = Field(0, description="Seed of the LoRA initialization and the batch order.")
    keep_epoch_checkpoints: bool = Field(
        False, description="Also save the adapter after every epoch (adapter_epoch<k>)."
    )


class PrivacyConfig(Strict):
    """Epsilon lower bounds, computed only on controlled splits."""

    delta: float = Field(1e-5, ge=0, lt=1, description="The delta every bound is stated at.")
    confidence: float = Field(0.95, ge=0.5, lt=1, description="Confidence of every bound.")
    threshold: Literal["heldout", "bonferroni"] = Field(
        "heldout",
        description="Clopper-Pearson bound: choose the threshold on a held-out part of the items "
        "('heldout') or take the best ROC threshold with a Bonferroni correction.",
    )
    heldout_fraction: float = Field(
        0.5, gt=0, lt=1, description="Share of items that choose the threshold ('heldout')."
    )
    guess_fraction: float = Field(
        0.1,
        gt=0,
        le=0.5,
        description="One-run audit: guess 'member' for this share of the canaries with the "
        "highest scores and 'held-out' for the same share with the lowest (fixed in advance).",
    )


class CanaryConfig(Strict):
    """Unique utterances spoken by the offline TTS, each with a held-out twin."""

    count: int = Field(64, ge=4, description="Canaries (members and twins together).")
    kind: Literal["sentence", "digits"] = Field(
        "sentence", description="Unique random sentences, or digit strings read out."
    )
    digits: int = Field(10, ge=4, description="Length of a digit-string canary.")
    words: tuple[int, int] = Field(
        (8, 12), description="Word count range of a sentence canary (inclusive)."
    )
    engine: Literal["espeak", "transformers"] = Field(
        "espeak",
        description="'espeak': offline espeak-ng voices; 'transformers': a text-to-speech model "
        "(hub id or local path) through transformers' text-to-speech pipeline.",
    )
    model: str | None = Field(
        None, description="transformers engine: hub id or local path of a text-to-speech model."
    )
    revision: str | None = Field(None, description="transformers engine: model revision.")
    trust_remote_code: bool = Field(
        False, description="transformers engine: allow the model's own code (off unless set)."
    )
    device: str = Field("cpu", description="transformers engine: torch device.")
    voices: list[str] = Field(
        default_factory=lambda: ["en-us", "en-us+f3"],
        description="espeak-ng voices (demo Voice specs, e.g. en-us+f4/r170/p60/g50), one per pair in turn.",
    )
    seed: int = Field(0, description="Seed of the texts, the draw and the TTS sampling.")

    @model_validator(mode="after")
    def _engine(self) -> CanaryConfig:
        if self.engine == "transformers" and not self.model:
            raise ValueError(
                "controlled.canaries with engine 'transformers' needs `model` (hub id or local path)"
            )
        return self


class ControlledConfig(Strict):
    """Controlled-membership audits: a random member/held-out draw, a LoRA fine-tune, exact labels."""

    pool: str = Field(description="Dataset alias whose items are drawn (none the model has seen).")
    dataset: str = Field(
        "controlled", description="Alias of the drawn split (a dataset of its own in results/)."
    )
    seed: int = Field(0, description="Seed of the draw.")
    draw: Literal["balanced", "bernoulli"] = Field(
        "balanced",
        description="'balanced': half of each stratum are members; 'bernoulli': a fair coin per "
        "item (needed by the one-run audit).",
    )
    stratify_by_speaker: bool = Field(
        True, description="Draw within each speaker when the pool knows its speakers."
    )
    use_items: Literal["nonmembers", "all"] = Field(
        "nonmembers",
        description="Candidates: the pool's non-members only (its members may have been seen), "
        "or every item.",
    )
    repetitions: list[int] = Field(
        default_factory=lambda: [1],
        description="Times fine-tuning sees a member per epoch, dealt out evenly (e.g. [1, 2, 4, 8]).",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Base model aliases (config: models) to fine-tune on the members.",
    )
    finetune: LoraRecipe = Field(default_factory=LoraRecipe)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    canaries: CanaryConfig = Field(default_factory=CanaryConfig)

    @field_validator("repetitions")
    @classmethod
    def _reps(cls, v: list[int]) -> list[int]:
        if not v or any(r < 1 for r in v) or len(set(v)) != len(v):
            raise ValueError(
                "controlled.repetitions must list distinct counts >= 1, e.g. [1, 2, 4, 8]"
            )
        return v


# --------------------------------------------------------------------------- top level


class Config(Strict):
    """The whole lalm-audit configuration (see config/config.yaml for a commented example)."""

    seed: int = Field(
        1234,
        description="Master seed for every random choice that the config does not seed itself.",
    )
    audio: AudioConfig = Field(default_factory=AudioConfig)
    datasets: dict[str, DatasetConfig] = Field(description="Dataset alias -> how to load it.")
    demo: DemoConfig | None = Field(
        None, description="Present only in the demo config: build the demo world."
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    indicators: IndicatorsConfig = Field(default_factory=IndicatorsConfig)
    perturb: PerturbConfig = Field(default_factory=PerturbConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    models: dict[str, ModelConfig] = Field(
        default_factory=dict, description="Target model alias -> how to load and run it."
    )
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    demo_models: DemoModelsConfig | None = Field(
        None, description="Present only in the demo config: train the demo models."
    )
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    blind: BlindConfig = Field(default_factory=BlindConfig)
    splits: SplitsConfig = Field(default_factory=SplitsConfig)
    verdicts: VerdictsConfig = Field(default_factory=VerdictsConfig)
    controlled: ControlledConfig | None = Field(
        None,
        description="Controlled-membership audit: random split, LoRA fine-tune, privacy bounds.",
    )

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("at least one dataset is needed")
        for name in v:
            if not _NAME_RE.match(name) or "__" in name:
                raise ValueError(
                    f"dataset name {name!r} must match {NAME_PATTERN} and not contain '__' "
                    "(it becomes part of file paths and item ids)"
                )
        return v

    @field_validator("models")
    @classmethod
    def _model_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not _NAME_RE.match(name) or "__" in name:
                raise ValueError(
                    f"model alias {name!r} must match {NAME_PATTERN} and not contain '__'"
                )
        return v

    @model_validator(mode="after")
    def _model_references(self) -> Config:
        unknown = sorted(set(self.scoring.models or []) - set(self.models))
        if unknown:
            raise ValueError(f"scoring.models names unconfigured models {unknown}")
        for alias in self.demo_models.models if self.demo_models else {}:
            m = self.models.get(alias)
            want = f"results/models/{alias}"
            if m is None or m.family != "qwen2_audio" or m.path_or_hub_id.rstrip("/") != want:
                raise ValueError(
                    f"demo model {alias!r} must also be configured under models with family "
                    f"qwen2_audio and path_or_hub_id {want!r}"
                )
        return self

    def scored_models(self) -> list[str]:
        """Model aliases the scoring stage runs, in config order."""
        chosen = self.scoring.models
        return [m for m in self.models if chosen is None or m in chosen]

    @model_validator(mode="after")
    def _feature_shards_name_datasets(self) -> Config:
        unknown = sorted(set(self.features.dataset_shards) - set(self.datasets))
        if unknown:
            raise ValueError(f"features.dataset_shards names unknown datasets {unknown}")
        return self

    @model_validator(mode="after")
    def _controlled_references(self) -> Config:
        c = self.controlled
        if c is None:
            return self
        if c.pool not in self.datasets:
            raise ValueError(f"controlled.pool names unknown dataset {c.pool!r}")
        if c.dataset in self.datasets:
            raise ValueError(
                f"controlled.dataset {c.dataset!r} is already a configured dataset; pick a new alias"
            )
        unknown = sorted(set(c.models) - set(self.models))
        if unknown:
            raise ValueError(f"controlled.models names unconfigured models {unknown}")
        return self

    def audit_datasets(self) -> list[str]:
        """Datasets every audit stage runs on, in config order."""
        return [n for n, d in self.datasets.items() if d.role == "audit"]

    def perturbed_datasets(self) -> list[str]:
        """Audit datasets the disentanglement stage perturbs."""
        chosen = self.perturb.datasets
        return [d for d in self.audit_datasets() if chosen is None or d in chosen]

    @model_validator(mode="after")
    def _references(self) -> Config:
        unknown = [d for d in (self.perturb.datasets or []) if d not in self.datasets]
        if unknown:
            raise ValueError(f"perturb.datasets names unknown datasets {unknown}")
        unknown_models = [m for m in (self.perturb.models or []) if m not in self.models]
        if unknown_models:
            raise ValueError(f"perturb.models names unconfigured models {unknown_models}")
        not_audit = [d for d in (self.perturb.datasets or []) if self.datasets[d].role != "audit"]
        if not_audit:
            raise ValueError(
                f"perturb.datasets {not_audit} are not audit datasets (role: train_pool)"
            )
        return self


# --------------------------------------------------------------------------- loading and hashing


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        parts = list(e["loc"])
        if len(parts) > 2 and parts[0] == "datasets" and parts[2] in LOADER_NAMES:
            del parts[2]  # pydantic puts the union member (the loader) in the location
        loc = ".".join(str(p) for p in parts)
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key {loc!r}: remove it or check its spelling")
        else:
            lines.append(f"  {loc or '<top>'}: {e['msg']}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any]) -> Config:
    """Validate a config mapping; errors name every offending key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError("invalid configuration:\n" + _format_errors(err)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """One YAML config file as a mapping; any problem is one :class:`ConfigError` naming the file."""
    p = Path(path)
    if not p.is_file():
        where = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ConfigError(
            f"config file {str(p)!r} {where}; fix: check the path given to -c/--config "
            "(or --configfile); config/config.yaml is a commented example to copy"
        )
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {str(p)!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
            f"at position {exc.start}); fix: save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"config file {str(p)!r} is not valid YAML{where}: {problem}; fix: correct the "
            "syntax there (indent with spaces, quote values holding ': ' or '#')"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(p)!r} holds a YAML {type(data).__name__}, not a mapping of "
            "settings; fix: write it as 'key: value' lines (e.g. 'datasets:' at the top level), "
            "not a '- item' list"
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(
            f"config file {str(p)!r} has top-level keys that are not names: {bad_keys}; "
            "fix: use names such as 'datasets' or 'audio'"
        )
    return data


def load_config(*paths: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load and merge YAML config files (later files win, recursively), then validate."""
    merged: dict[str, Any] = {}
    for p in paths:
        merged = deep_merge(merged, read_config_file(p))
    if overrides:
        merged = deep_merge(merged, overrides)
    return parse_config(merged)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def config_json_schema() -> dict[str, Any]:
    """The JSON schema Snakemake validates the config against (generated, never hand-edited)."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lalm-audit configuration"
    schema["description"] = (
        "Generated from lalm_audit.config by `lalm-audit config-schema`; do not edit by hand."
    )
    return schema


def stable_hash(obj: Any) -> str:
    """A short, stable hash of a JSON-able object or a config model (key order does not matter)."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
