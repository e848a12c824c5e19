"""The one layout: every artifact path defined once, wildcards kept, the rules spelling none."""

import re
from pathlib import Path

from lalm_audit.layout import JOBS, Layout
from lalm_audit.scoring import paths
from tests.conftest import REPO

L = Layout()


def test_values_left_out_stay_wildcards():
    assert L.manifest() == "results/manifests/{dataset}.parquet"
    assert L.manifest("demo-clean") == "results/manifests/demo-clean.parquet"
    assert L.mia("m", "d", "transcript", "aggregate.parquet") == (
        "results/mia/m/d/transcript/aggregate.parquet"
    )
    assert L.token_stats_shard(condition="original") == (
        "results/scores/{model}/{dataset}/original/{response}/token_stats/shard-{shard}.parquet"
    )
    assert (
        L.split("d", file=".verification.parquet")
        == "results/splits/d/{method}.verification.parquet"
    )


def test_a_value_is_inserted_as_it_is_never_reformatted():
    # a value holding braces (a wildcard of another name) is not formatted again
    assert L.features("{pool}", "text") == "results/features/{pool}/text.parquet"
    assert L.manifest("a{b}") == "results/manifests/a{b}.parquet"


def test_the_root_moves_every_path():
    other = Layout("/data/audit/results")
    assert other.heatmap("png") == "/data/audit/results/blind/heatmap.png"
    assert other.log("mia", model="m", dataset="d", response="generated") == (
        "/data/audit/results/logs/mia/m/d/generated.log"
    )
    assert other.benchmark("blind", dataset="d") == "/data/audit/results/benchmarks/blind/d.tsv"


def test_conditions_read_their_own_manifest():
    assert L.condition_manifest("d", "original") == L.manifest("d")
    assert L.condition_manifest("d", "silence") == "results/perturb/d/silence.parquet"


def test_scoring_paths_come_from_the_layout(tmp_path):
    root = tmp_path
    lay = Layout(str(tmp_path / "results"))
    assert str(paths.manifest_path("d", "noise", root)) == lay.perturbed_manifest("d", "noise")
    assert str(paths.generations_path("m", "d", "noise", "generated", root)) == lay.generations(
        "m", "d", "original"
    )
    assert str(paths.generations_path("m", "d", "noise", "regenerated", root)) == lay.generations(
        "m", "d", "noise"
    )
    assert paths.generations_path("m", "d", "noise", "transcript", root) is None
    assert str(paths.token_stats_shard("m", "d", "original", "generated", 3, root)) == (
        lay.token_stats_shard("m", "d", "original", "generated", 3)
    )


def _rule_files():
    return [*sorted((REPO / "workflow" / "rules").glob("*.smk")), REPO / "Snakefile"]


def test_no_rule_spells_an_artifact_path():
    """Rules ask the layout (L.<artifact>(), L.log, L.benchmark); a literal results/ path in a
    rule file would be a second definition that can drift."""
    offenders = []
    for f in _rule_files():
        for n, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"""["']results/""", code):
                offenders.append(f"{f.name}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_rule_that_logs_has_a_job_key():
    logged = set()
    for f in _rule_files():
        logged |= set(re.findall(r"""L\.(?:log|benchmark)\("(\w+)"\)""", f.read_text()))
    assert logged, "no rule asks the layout for its log"
    assert logged <= set(JOBS), sorted(logged - set(JOBS))
    # and every job key belongs to a rule that exists
    rules = set()
    for f in _rule_files():
        rules |= set(re.findall(r"^\s*rule (\w+):", f.read_text(), re.M))
    assert set(JOBS) <= rules, sorted(set(JOBS) - rules)


def test_the_cli_writes_where_the_rules_read(tmp_path, monkeypatch):
    """`lalm-audit manifest` and `features` put their artifacts at the layout's paths (the ones
    the rules declare), under whatever results folder -r names."""
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from lalm_audit import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for k in range(24):
        sf.write(tmp_path / f"clips/{k}.wav", 0.1 * rng.standard_normal(8000), 16000)
        rows.append({"path": f"clips/{k}.wav", "text": f"clip {k}", "label": k % 2})
    pd.DataFrame(rows).to_csv(tmp_path / "clips.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "datasets:\n  mine:\n    loader: table\n    path: clips.csv\n    columns: {audio: path}\n"
        "features:\n  shards: 1\n  groups: [metadata]\n"
    )
    out = Layout(str(tmp_path / "elsewhere"))
    assert cli.main(["manifest", "-c", "c.yaml", "-r", out.root]) == 0
    assert cli.main(["features", "-c", "c.yaml", "-r", out.root]) == 0
    for path in (
        out.manifest("mine"),
        out.manifest_rejected("mine"),
        out.manifest_report("mine"),
        out.feature_shard("mine", "metadata", 0, 1),
        out.features("mine", "metadata"),
    ):
        assert Path(path).is_file(), path
    assert not (tmp_path / "results").exists()  # nothing went to the default folder
