"""The controlled commands: canaries-make writes the release and the private manifest;
controlled-bounds prints an epsilon for a controlled split and refuses a post-hoc one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from lalm_audit import io
from lalm_audit.cli import main
from lalm_audit.controlled.split import COLUMNS


def _config(tmp_path, threshold="bonferroni"):
    cfg = {
        "datasets": {"pool": {"loader": "table", "path": "unused.csv"}},
        "controlled": {
            "pool": "pool",
            "privacy": {"threshold": threshold, "delta": 0.0},
            "canaries": {"count": 8, "words": [3, 5], "voices": ["en-us"], "seed": 2},
        },
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_canaries_make_then_bounds(tmp_path, capsys):
    conf = _config(tmp_path)
    assert main(["canaries-make", "-c", conf, "-o", str(tmp_path / "can")]) == 0
    manifest = io.read_table(tmp_path / "can" / "canaries.parquet")
    released = pd.read_csv(tmp_path / "can" / "members.csv")
    assert len(manifest) == 8 and len(released) == 4
    assert set(released["item_id"]) == set(manifest.loc[manifest["label"] == 1, "item_id"])
    # a perfect attack on 4 + 4 items: 2 distinct scores, 4 intervals at 0.05/4 = 0.0125:
    # TPR_lo = 0.0125^(1/4) = 0.33437, FPR_hi = 0.66563 -> ln(0.50234) < 0: the bound is 0
    scores = pd.DataFrame(
        {
            "item_id": manifest["item_id"],
            "label": manifest["label"],
            "slice": "response",
            "indicator": "loss",
            "score": manifest["label"].astype(float),
        }
    )
    io.write_table(scores, tmp_path / "scores.parquet")
    out = tmp_path / "bounds.json"
    args = [
        "controlled-bounds",
        "-c",
        conf,
        "--manifest",
        str(tmp_path / "can" / "canaries.parquet"),
    ]
    assert main([*args, "--scores", str(tmp_path / "scores.parquet"), "-o", str(out)]) == 0
    bound = json.loads(out.read_text())[0]
    assert bound["epsilon"] == 0.0 and bound["counts"]["tp"] == 4
    assert "epsilon >= 0.000 at delta = 0" in capsys.readouterr().out


def test_bounds_refuse_a_post_hoc_manifest(tmp_path, capsys):
    conf = _config(tmp_path)
    assert main(["canaries-make", "-c", conf, "-o", str(tmp_path / "can")]) == 0
    manifest = io.read_table(tmp_path / "can" / "canaries.parquet")
    post_hoc = manifest.drop(columns=[c for c in COLUMNS.values()])
    io.write_table(post_hoc, tmp_path / "post_hoc.parquet")
    scores = pd.DataFrame(
        {"item_id": manifest["item_id"], "slice": "response", "indicator": "loss", "score": 1.0}
    )
    io.write_table(scores, tmp_path / "scores.parquet")
    rc = main(
        ["controlled-bounds", "-c", conf, "--manifest", str(tmp_path / "post_hoc.parquet"),
         "--scores", str(tmp_path / "scores.parquet")]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2 and "epsilon >=" not in captured.out
    assert "post-hoc" in captured.err


def test_the_commands_are_listed_also_under_python_m():
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "lalm_audit.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0
    for cmd in ("controlled-split", "controlled-finetune", "controlled-audit", "controlled-bounds",
                "canaries-make", "canaries-audit"):  # fmt: skip
        assert cmd in res.stdout


def test_canaries_audit_on_a_saved_model(tmp_path, capsys):
    from lalm_audit.models.testing import save_tiny

    model = save_tiny("qwen2_audio", tmp_path / "tiny")
    cfg = yaml.safe_load(Path(_config(tmp_path)).read_text())
    cfg["models"] = {
        "tiny": {"family": "qwen2_audio", "path_or_hub_id": str(model), "device": "cpu"}
    }
    conf = tmp_path / "m.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    assert main(["canaries-make", "-c", str(conf), "-o", str(tmp_path / "can")]) == 0
    out = tmp_path / "audit.json"
    args = [
        "canaries-audit",
        "-c",
        str(conf),
        "--canaries",
        str(tmp_path / "can" / "canaries.parquet"),
    ]
    assert main([*args, "-m", "tiny", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    # an untrained model: whatever its wins, 4 pairs can never reach p < 0.05 (1/16 at best)
    assert result["pairs"] == 4 and 0 <= result["member_wins"] <= 4
    assert result["p_value"] >= 1 / 16 and result["verdict"].startswith("no evidence")
    assert "sign test" in capsys.readouterr().out
