"""The README's generated demo blocks: strict on the README's machine, by shape elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from lalm_audit.layout import Layout
from lalm_audit.report import readme

TABLE = """| condition   | AUC                  | significant   |
|:------------|:---------------------|:--------------|
| original    | 0.974 [0.942, 1.000] | no            |
| noise       | {noise} [0.905, 0.988] | {sig}            |
"""


def _readme(tmp_path, machine: str, noise: str, sig: str):
    text = (
        "intro\n<!-- demo:machine -->\n"
        + machine
        + "<!-- /demo:machine -->\n\n<!-- demo:disentangle -->\n"
        + TABLE.format(noise=noise, sig=sig)
        + "<!-- /demo:disentangle -->\n"
    )
    p = tmp_path / "README.md"
    p.write_text(text)
    return p


@pytest.fixture
def fresh(monkeypatch):
    """A 'run' on machine B whose noise condition reads 0.831, significant."""
    monkeypatch.setattr(
        readme,
        "SNIPPETS",
        {
            readme.MACHINE: lambda r: "Numbers below are from a demo run on: `B`.\n",
            "disentangle": lambda r: TABLE.format(noise="0.831", sig="yes"),
        },
    )


def test_on_the_readme_machine_numbers_and_words_must_agree(tmp_path, fresh):
    md = _readme(tmp_path, "Numbers below are from a demo run on: `B`.\n", "0.953", "no")
    cmp = readme.compare(md, tmp_path, tol=0.05)
    assert cmp.strict
    assert len(cmp.diffs) == 1 and cmp.diffs[0].startswith("disentangle (values)")
    same = _readme(tmp_path, "Numbers below are from a demo run on: `B`.\n", "0.850", "yes")
    assert readme.compare(same, tmp_path, tol=0.05).diffs == []


def test_on_another_machine_only_the_table_shape_must_agree(tmp_path, fresh):
    md = _readme(tmp_path, "Numbers below are from a demo run on: `A`.\n", "0.953", "no")
    cmp = readme.compare(md, tmp_path, tol=0.05)
    assert not cmp.strict and cmp.diffs == []
    # a missing row is a drift on any machine
    short = md.read_text().replace("| noise       | 0.953 [0.905, 0.988] | no            |\n", "")
    md.write_text(short)
    cmp = readme.compare(md, tmp_path, tol=0.05)
    assert len(cmp.diffs) == 1 and cmp.diffs[0].startswith("disentangle (table shape)")


def test_sync_writes_the_machine_block(tmp_path, fresh):
    md = _readme(tmp_path, "", "0.953", "no")
    text = readme.sync(md, tmp_path)
    assert "<!-- demo:machine -->\nNumbers below are from a demo run on: `B`.\n" in text
    assert "0.831" in text
    md.write_text(text)
    assert readme.compare(md, tmp_path).strict


def test_figures_are_copied_from_the_run_or_named_when_missing(tmp_path):
    results, img = tmp_path / "results", tmp_path / "img"
    img.mkdir()
    lay = Layout(str(results))
    for i, artifact in enumerate(readme.FIGURES.values()):
        Path(artifact(lay)).parent.mkdir(parents=True, exist_ok=True)
        Path(artifact(lay)).write_bytes(bytes([i]) * 10)
    out = readme.sync_figures(results, img)
    assert sorted(p.name for p in out) == sorted(readme.FIGURES)
    first = next(iter(readme.FIGURES))
    assert (img / first).read_bytes() == bytes([0]) * 10
    Path(readme.FIGURES[first](lay)).unlink()
    with pytest.raises(FileNotFoundError, match=first):
        readme.sync_figures(results, img)
