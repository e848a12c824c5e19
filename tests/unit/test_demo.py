"""The demo world: ground truth by construction, determinism, a large sentence space."""

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lalm_audit.config import DemoConfig
from lalm_audit.demo import DATASETS, build_world, make_speakers, plan_world
from lalm_audit.demo.espeak import Voice, engine
from lalm_audit.demo.sentences import VOCABULARY, SentenceGenerator

SMALL = DemoConfig(sizes={"matched": 8, "shifted": 8, "partial": 10, "binding": 6, "pretrain": 8})


def test_speakers_are_distinct_and_grouped():
    spk = make_speakers(DemoConfig())
    assert len(spk) >= 16 and len({s.voice.name for s in spk}) == len(spk)
    assert Counter(s.group for s in spk) == {"A": 10, "B": 8}


def test_plan_has_the_promised_ground_truth():
    world = plan_world(DemoConfig())
    n = DemoConfig().sizes
    m = world["demo-matched"]
    assert Counter(u.label for u in m) == {1: n.matched, 0: n.matched}
    assert {(u.speaker.group, u.condition) for u in m} == {("A", "clean")}
    sh = world["demo-shifted"]
    assert {(u.speaker.group, u.condition) for u in sh if u.label == 1} == {("A", "clean")}
    assert {(u.speaker.group, u.condition) for u in sh if u.label == 0} == {("B", "shifted")}
    words = lambda us: np.mean([len(u.text.split()) for u in us])  # noqa: E731
    assert words([u for u in sh if u.label == 0]) < words([u for u in sh if u.label == 1]) - 2
    p = world["demo-partial"]
    replaced = [u for u in p if u.role == "replaced"]
    assert len(replaced) == round(0.3 * n.partial)
    assert all(
        u.label == 0 and u.speaker.group == "B" and u.condition == "shifted" for u in replaced
    )
    assert {(u.speaker.group, u.condition) for u in p if u.role == "core"} == {("A", "clean")}
    b = world["demo-binding"]
    pairs: dict[str, list] = {}
    for u in b:
        pairs.setdefault(u.pair_id, []).append(u)
    assert len(pairs) == n.binding
    for us in pairs.values():
        assert sorted(u.label for u in us) == [0, 1]
        assert us[0].text == us[1].text and us[0].speaker != us[1].speaker
        assert {u.speaker.group for u in us} == {"A"}
    # sentences never repeat across datasets (except the two renderings of a binding pair)
    texts = [u.text for ds in DATASETS for u in world[ds]]
    assert len(set(texts)) == len(texts) - n.binding
    # ids carry no trace of the label: sorted by id, the labels are shuffled
    labels = [u.label for u in m]
    assert labels != sorted(labels) and labels != sorted(labels, reverse=True)


def test_sentence_space_is_large_and_lengths_are_controlled():
    assert len(VOCABULARY) > 800
    gen = SentenceGenerator(np.random.default_rng(0))
    sents = [gen.sentence(6, 11) for _ in range(5000)]
    assert len(set(sents)) > 4950
    assert all(6 <= len(s.split()) <= 11 for s in sents)
    short = [gen.sentence(3, 6) for _ in range(500)]
    assert all(3 <= len(s.split()) <= 6 for s in short)


def test_espeak_rendering_does_not_depend_on_history():
    e = engine()
    v = Voice("en-us+f3", rate=170, pitch=60)
    first = e.synthesize("The old dog slept near the river.", v)
    e.synthesize("Something else entirely, in another voice.", Voice("en-us+m3"))
    again = e.synthesize("The old dog slept near the river.", v)
    assert np.array_equal(first, again)
    assert not np.array_equal(
        first,
        e.synthesize("The old dog slept near the river.", Voice("en-us+f3", rate=170, pitch=30)),
    )


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_world_is_bit_identical_for_a_seed_and_differs_for_another(tmp_path):
    build_world(SMALL, tmp_path / "a", workers=1)
    build_world(SMALL, tmp_path / "b", workers=2)
    build_world(SMALL.model_copy(update={"seed": 1}), tmp_path / "c", workers=1)
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert len(a) == 5 + 2 * (8 + 8 + 10 + 6) + 8
    assert a == b
    assert set(a) == set(c)  # same layout ...
    assert sum(a[k] != c[k] for k in a) == len(a)  # ... every file different


def test_world_tables_load_as_manifests(tmp_path, monkeypatch):
    from lalm_audit.config import parse_config
    from lalm_audit.manifest import build_manifest

    build_world(SMALL, tmp_path / "results" / "demo")
    monkeypatch.chdir(tmp_path)
    cfg = parse_config(
        {
            "datasets": {
                "demo-shifted": {
                    "loader": "table",
                    "path": "results/demo/demo-shifted.parquet",
                    "min_items_per_class": 4,
                },
                "demo-pretrain": {
                    "loader": "table",
                    "path": "results/demo/demo-pretrain.parquet",
                    "role": "train_pool",
                },
            }
        }
    )
    res = build_manifest(cfg, "demo-shifted")
    assert res.summary["rejected"] == 0 and res.summary["kept"] == 16
    by_label = res.kept.groupby("label")["sample_rate"].unique()
    assert list(by_label[0]) == [8000] and list(by_label[1]) == [16000]
    assert {"meta_speaker_group", "meta_condition", "meta_role", "meta_voice"} <= set(
        res.kept.columns
    )
    assert build_manifest(cfg, "demo-pretrain").summary["kept_members"] == 8


@pytest.mark.slow
def test_speaker_identity_is_recoverable_from_egemaps(tmp_path):
    """A speaker-ID sanity check: 'speaker' means something in the demo world."""
    import opensmile
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from lalm_audit.demo.sentences import SentenceGenerator
    from lalm_audit.demo.world import Utterance, render

    cfg = DemoConfig()
    speakers = make_speakers(cfg)
    gen = SentenceGenerator(np.random.default_rng(5))
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    feats, labels = [], []
    per_speaker = 6
    for spk in speakers:
        for k in range(per_speaker):
            u = Utterance(
                "sid", f"{spk.speaker_id}-{k}", gen.sentence(5, 9), spk, "clean", 1, "x", "core"
            )
            x, sr, _ = render(u, cfg)
            feats.append(smile.process_signal(x, sr).to_numpy()[0])
            labels.append(spk.speaker_id)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    acc = cross_val_score(clf, np.array(feats), np.array(labels), cv=cv).mean()
    chance = 1 / len(speakers)
    assert acc > 0.8, f"speaker-ID accuracy {acc:.2f} (chance {chance:.2f})"
