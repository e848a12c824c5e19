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
    """The chance check: the same CV on shuffled labels; its AUC should sit at 0.5."""

    enabled: bool = True
    classifiers: Literal["stronger", "all"] = Field(
        "stronger",
        description="Run it for each group's reported classifier ('stronger') or for every classifier.",
    )
    shuffles: int = Field(
        5,
        ge=1,
        description="Independent label shuffles; the control reports the mean AUC and the mean CI bounds "
        "over shuffles (the CI one shuffled run typically reports; their spread is auc_sd).",
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
    group_same_text: bool = Field(
        True,
        description="Keep items with identical transcripts in the same CV fold (otherwise the same sentence "
        "read by a member and a non-member pushes the text AUC far below 0.5).",
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
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    blind: BlindConfig = Field(default_factory=BlindConfig)

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

    @model_validator(mode="after")
    def _feature_shards_name_datasets(self) -> Config:
        unknown = sorted(set(self.features.dataset_shards) - set(self.datasets))
        if unknown:
            raise ValueError(f"features.dataset_shards names unknown datasets {unknown}")
        return self

    def audit_datasets(self) -> list[str]:
        """Datasets every audit stage runs on, in config order."""
        return [n for n, d in self.datasets.items() if d.role == "audit"]


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


def load_config(*paths: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load and merge YAML config files (later files win, recursively), then validate."""
    merged: dict[str, Any] = {}
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            merged = deep_merge(merged, yaml.safe_load(fh) or {})
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
