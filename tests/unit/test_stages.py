"""The stage contract: declared config reads, the guard that enforces them, code identity.

The model-free stages that read the config run here in-process under the guard (a read their
contract does not declare fails the test); the workflow-level stages (manifest, features, blind,
heatmap, splits, report) run under it in tests/workflow/test_declared_inputs.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lalm_audit import io, stages
from lalm_audit.config import parse_config, stable_hash
from tests.conftest import REPO

BASE = {"datasets": {"d": {"loader": "table", "path": "x"}, "e": {"loader": "table", "path": "y"}}}


def cfg(**over):
    return parse_config({**BASE, **over})


# --------------------------------------------------------------------------- the guard


def test_an_undeclared_read_names_the_stage_the_key_and_the_fix():
    g = stages.guard(cfg(), "blind", dataset="d")
    with pytest.raises(
        stages.UndeclaredConfigRead, match=r"'blind' read config key 'blind\.heatmap'.*stages\.py"
    ):
        g.blind.heatmap  # noqa: B018
    with pytest.raises(stages.UndeclaredConfigRead, match="'splits'"):
        g.splits  # noqa: B018
    with pytest.raises(stages.UndeclaredConfigRead, match=r"'datasets\.e'"):
        g.datasets["e"]


def test_declared_reads_pass_through_with_their_values():
    c = cfg(blind={"folds": 4})
    g = stages.guard(c, "blind", dataset="d")
    assert g.blind.folds == 4 and g.seed == c.seed
    assert g.evaluation is c.evaluation  # a fully declared section is the typed model itself
    assert g.datasets["d"].role == "audit"


def test_config_methods_read_through_the_guard():
    c = cfg()
    assert stages.guard(c, "heatmap").audit_datasets() == ["d", "e"]  # declares datasets.*.role
    with pytest.raises(stages.UndeclaredConfigRead, match=r"datasets\.e"):
        stages.guard(c, "blind", dataset="d").audit_datasets()


def test_a_placeholder_without_its_wildcard_is_a_clear_error():
    with pytest.raises(stages.ConfigError, match="needs the wildcard 'dataset'"):
        stages.config_subset(cfg(), "blind")


# --------------------------------------------------------------------------- config subsets


def test_a_heatmap_setting_is_in_the_heatmap_subset_only():
    a, b = cfg(), cfg(blind={"heatmap": {"folds": 3}})
    assert stages.config_subset(a, "blind", dataset="d") == stages.config_subset(
        b, "blind", dataset="d"
    )
    assert stages.config_subset(a, "splits", dataset="d") == stages.config_subset(
        b, "splits", dataset="d"
    )
    assert stages.config_subset(a, "heatmap") != stages.config_subset(b, "heatmap")


def test_spelling_out_a_default_changes_nothing_and_another_dataset_is_not_read():
    a = stages.config_subset(cfg(), "manifest", dataset="d")
    b = stages.config_subset(cfg(audio={"sample_rate": 16000}), "manifest", dataset="d")
    c = stages.config_subset(
        {**BASE, "datasets": {**BASE["datasets"], "e": {"loader": "table", "path": "z"}}},
        "manifest", dataset="d",
    )  # fmt: skip
    assert a == b == c
    assert "datasets.e" not in a and a["datasets.d"]["path"] == "x"


def test_the_manifest_reads_the_seed_only_when_it_subsamples():
    assert "seed" not in stages.config_subset(cfg(), "manifest", dataset="d")
    sub = {**BASE, "datasets": {"d": {"loader": "table", "path": "x", "max_items_per_class": 5}}}
    assert stages.config_subset(sub, "manifest", dataset="d")["seed"] == 1234


def test_every_stage_that_draws_random_numbers_declares_the_seed():
    for stage in ("blind", "heatmap", "splits", "perturb", "mia", "correlation", "disentangle"):
        assert "seed" in stages.get(stage).reads, stage
    for stage in ("features", "generate", "score", "indicators", "roc", "report_tables"):
        assert "seed" not in stages.get(stage).reads, stage


def test_every_rule_has_a_contract_and_takes_its_params_from_it():
    rules = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text(encoding="utf-8")
        for m in re.finditer(r"^\s*rule (\w+):\n(.*?)(?=^\s*rule \w+:|\Z)", text, re.M | re.S):
            if "script:" in m.group(
                2
            ):  # a job (target-only rules such as `controlled` run nothing)
                rules[m.group(1)] = m.group(2)
    assert set(rules) == set(stages.RULE_STAGE)
    for rule, body in rules.items():
        assert f'stage=stage_params("{stages.RULE_STAGE[rule]}")' in body, rule
        # no hand-copied config section as a trigger beside the contract
        assert "config.get(" not in body and 'config["' not in body, rule


# --------------------------------------------------------------------------- code identity


def test_code_modules_follow_imports_including_function_local_ones():
    assert "lalm_audit.render.figures" in stages.code_modules(
        "heatmap"
    )  # imported inside run_heatmap
    assert "lalm_audit.evaluation" in stages.code_modules("blind")
    assert "lalm_audit.splits" not in stages.code_modules("blind")
    assert not set(stages.code_modules("mia")) & stages.INFRASTRUCTURE
    assert "lalm_audit.mia" not in stages.code_modules(
        "score"
    )  # indicator code never reruns a model


def test_the_code_hash_ignores_comments_but_not_code(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(REPO / "src" / "lalm_audit", tmp_path / "lalm_audit")
    monkeypatch.setattr(stages, "_ROOT", tmp_path / "lalm_audit")
    hashes = []
    for addition in ("", "\n# only a comment\n", "\nX = 1\n"):
        with (tmp_path / "lalm_audit" / "splits.py").open("a", encoding="utf-8") as fh:
            fh.write(addition)
        stages.code_modules.cache_clear()
        stages.code_hash.cache_clear()
        hashes.append((stages.code_hash("splits"), stages.code_hash("blind")))
    stages.code_modules.cache_clear()
    stages.code_hash.cache_clear()
    assert hashes[0] == hashes[1]
    assert hashes[2][0] != hashes[0][0] and hashes[2][1] == hashes[0][1]


def test_provenance_hashes_the_declared_subset_and_records_the_code():
    a = io.provenance("blind", cfg(), dataset="d")
    assert a["code_hash"] == stages.code_hash("blind") and a["seed"] == 1234
    assert a["config_hash"] == stable_hash(stages.config_subset(cfg(), "blind", dataset="d"))
    assert io.provenance("blind", cfg(blind={"heatmap": {"folds": 3}}), dataset="d") == a
    assert io.provenance("blind", cfg(seed=7), dataset="d")["seed"] == 7
    assert (
        io.provenance("blind", cfg(blind={"folds": 4}), dataset="d")["config_hash"]
        != a["config_hash"]
    )
    # a stage that does not read the seed does not record one
    assert "seed" not in io.provenance("indicators", cfg(), model="m")


def test_git_commit_is_the_checkout_head_or_none():
    commit = stages.git_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit)


# --------------------------------------------------------------------------- stages under the guard

N = 40


def _stats_world() -> None:
    """Token statistics, a manifest, a clean split and blind artifacts of one dataset ``d``."""
    from lalm_audit.schemas import TOKEN_STATS
    from tests.unit.test_indicators import naive_stats

    rng = np.random.default_rng(0)
    ids = [f"d-{i:02d}" for i in range(N)]
    y = np.arange(N) % 2
    rows = []
    for item, label in zip(ids, y, strict=True):
        for sl, t in (("audio", 6), ("prompt", 3), ("response", 5)):
            logits = rng.normal(size=(t, 7)) * (3.0 if label and sl != "prompt" else 1.0)
            p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            tok = p.argmax(1) if sl != "prompt" else rng.integers(0, 7, t)
            st = naive_stats(p, tok)
            rows.append({"item_id": item, "slice": sl, "n_tokens": t, "token_ids": tok.tolist(),
                         "text": "" if sl == "audio" else "abc",
                         **{k: v.astype(np.float32).tolist() for k, v in st.items()}})  # fmt: skip
    io.write_table(pd.DataFrame(rows), "stats.parquet", schema=TOKEN_STATS)
    io.write_table(pd.DataFrame({"item_id": ids, "label": y}), "results/manifests/d.parquet")
    io.write_table(pd.DataFrame({"item_id": ids[: N // 2]}), "clean.parquet")
    snr = rng.normal(30, 3, size=N)
    io.write_table(
        pd.DataFrame({"item_id": ids, "feature_error": None, "snr": snr, "dur": rng.normal(size=N)}),
        "results/features/d/metadata.parquet",
    )  # fmt: skip
    io.write_table(
        pd.DataFrame({"item_id": ids, "feature_error": None, "n0": rng.normal(size=N)}),
        "results/features/d/spectral.parquet",
    )  # fmt: skip


def test_model_free_stages_read_only_what_they_declare(in_tmp):
    from lalm_audit.blind import run_blind
    from lalm_audit.correlation import run_correlation
    from lalm_audit.disentangle import run_disentangle
    from lalm_audit.mia import run_indicators, run_mia
    from lalm_audit.report.build import run_roc

    _stats_world()
    c = parse_config({
        "datasets": {"d": {"loader": "table", "path": "x"}}, "evaluation": {"bootstrap": 100},
        "features": {"groups": ["metadata", "spectral"]},
        "blind": {"folds": 3, "classifiers": ["logistic"], "permutation_control": {"shuffles": 2}},
        "indicators": {"k_grid": [0, 50], "aggregate": {"folds": 3}},
        "analysis": {"targets": ["response/loss"]}, "splits": {"methods": ["match"]},
    })  # fmt: skip
    splits = {"full": None, "match": "clean.parquet"}
    run_blind(stages.guard(c, "blind", dataset="d"), "d")
    run_indicators(stages.guard(c, "indicators", model="m"), "m", "stats.parquet",
                   "results/manifests/d.parquet", "scores.parquet")  # fmt: skip
    metrics = run_mia(
        stages.guard(c, "mia"), "scores.parquet", splits, "m.parquet", "a.parquet", "t.md"
    )
    run_roc(stages.guard(c, "roc"), "scores.parquet", "a.parquet", splits, "roc.png")
    _, adj = run_correlation(
        stages.guard(c, "correlation", dataset="d"), "d", "scores.parquet", "a.parquet", splits,
        correlation_out="corr.parquet", adjusted_out="adj.parquet",
    )  # fmt: skip
    scores = io.read_table("scores.parquet")
    twin = scores.assign(item_id=scores["item_id"] + "__silence")
    io.write_table(twin, "silence.parquet")
    table = run_disentangle(stages.guard(c, "disentangle"), "scores.parquet",
                            {"silence": "silence.parquet"}, splits, "dis.parquet", None, None)  # fmt: skip
    # the stages ran to the end on the guarded config and wrote what they always write
    assert set(metrics["split"]) == {"full", "match"} and len(adj) > 0
    assert set(table["split"]) == {"full", "match"} and Path("roc.png").stat().st_size > 1000
    assert io.read_provenance("m.parquet")["code_hash"] == stages.code_hash("mia")


def test_the_architecture_table_equals_the_contract():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w+) \| (`.*?`) \| (.*?) \|", text, re.M)
    assert {name for name, _, _ in rows} == set(stages.STAGES)
    for name, rules, sections in rows:
        s = stages.get(name)
        assert re.findall(r"`(\w+)`", rules) == list(s.rules), name
        assert set(re.findall(r"`(\w+)`", sections)) == {r.split(".")[0] for r in s.reads}, name


def test_perturb_reads_only_its_condition_the_sample_rate_and_the_seed(in_tmp):
    from lalm_audit.perturb import run_perturb
    from lalm_audit.schemas import MANIFEST
    from tests.conftest import sine, write

    rows = []
    for i in range(3):
        path = write(in_tmp / f"a{i}.wav", sine(200 + 50 * i, dur=1.0))
        rows.append({"item_id": f"a{i}", "dataset": "d", "audio_path": path.name, "audio_bytes": None,
                     "audio_format": "WAV", "offset_s": 0.0, "duration_s": 1.0, "source_duration_s": 1.0,
                     "sample_rate": 16000, "channels": 1, "text": f"item {i}", "speaker_id": "s",
                     "label": i % 2, "source_split": "x", "truncated": False})  # fmt: skip
    io.write_table(pd.DataFrame(rows), "m.parquet", schema=MANIFEST)
    c = cfg(perturb={"conditions": {"quiet": {"kind": "silence", "length": "fixed", "seconds": 1.0},
                                    "loud": {"kind": "silence", "length": "fixed", "seconds": 2.0}}})  # fmt: skip
    g = stages.guard(c, "perturb", dataset="d", condition="quiet")
    s = run_perturb(g, "d", "quiet", "m.parquet", "q.parquet", "q.rej.parquet", "audio")
    assert s["perturbed"] == 3
    # the other condition is not part of this job's config, so editing it reruns nothing here
    other = cfg(
        perturb={"conditions": {"quiet": {"kind": "silence", "length": "fixed", "seconds": 1.0}}}
    )
    assert stages.config_subset(other, "perturb", condition="quiet") == stages.config_subset(
        c, "perturb", condition="quiet"
    )
    assert io.read_provenance("q.parquet")["seed"] == c.seed
