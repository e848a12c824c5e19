"""The features/blind config sections: defaults, validation, shard counts."""

import pytest

from lalm_audit.config import load_config, parse_config
from lalm_audit.errors import ConfigError
from tests.conftest import REPO

MINIMAL = {"datasets": {"d": {"loader": "table", "path": "t.csv"}}}


def test_defaults_follow_the_paper():
    cfg = parse_config(MINIMAL)
    assert cfg.features.groups == ["text", "spectral", "prosodic", "metadata"]
    assert cfg.blind.folds == 10 and cfg.blind.classifiers == ["logistic", "gbt"]
    assert cfg.blind.tfidf.ngram_max == 2  # unigrams + bigrams
    assert cfg.evaluation.fpr_targets == (0.001, 0.01, 0.05)


def test_shards_per_dataset_and_group():
    cfg = parse_config({**MINIMAL, "features": {"shards": 3, "dataset_shards": {"d": 7}}})
    assert cfg.features.n_shards("d", "spectral") == 7
    assert cfg.features.n_shards("other", "spectral") == 3
    assert cfg.features.n_shards("d", "text") == 1  # text is cheap: one job
    with pytest.raises(ConfigError, match="unknown datasets"):
        parse_config({**MINIMAL, "features": {"dataset_shards": {"nope": 2}}})


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"features": {"groups": ["text", "pitch"]}}, "features.groups"),
        ({"features": {"groups": []}}, "at least one group"),
        ({"blind": {"clasifiers": ["gbt"]}}, "unknown key 'blind.clasifiers'"),
        ({"blind": {"heatmap": {"pairing": "speaker"}}}, "blind.heatmap.pairing"),
        ({"blind": {"folds": 1}}, "blind.folds"),
    ],
)
def test_bad_blind_settings_name_the_key(patch, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_config({**MINIMAL, **patch})


def test_demo_config_keeps_the_blind_stage_small():
    demo = load_config(REPO / "config" / "demo.yaml")
    assert demo.features.shards == 1
    assert demo.blind.gbt.max_bins <= 64
