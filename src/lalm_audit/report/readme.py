"""The README's demo numbers, generated from a run's results so that they cannot drift.

The README holds blocks between ``<!-- demo:NAME -->`` and ``<!-- /demo:NAME -->``;
:func:`snippets` renders each block from a results folder, :func:`sync` writes them
into the README (``lalm-audit readme --write``) and :func:`differences` compares
(``lalm-audit readme --check``, run by the end-to-end test on a fresh demo run).

The comparison is exact on words and within ``tol`` on numbers: a fresh run on another
CPU may differ in the last digits of an AUC (torch and BLAS take other paths), never in a
verdict or by more than the tolerance. Snippets show only what the demo answers robustly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lalm_audit import io, verdicts
from lalm_audit.mia import status_word
from lalm_audit.report.tables import fmt_ci, to_markdown

_NUM = re.compile(r"-?\d+(?:\.\d+)?")
BLOCK = re.compile(
    r"(<!-- demo:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /demo:(?P=name) -->)", re.S
)


def _mia(results: Path) -> str:
    t = io.read_table(results / "mia" / "summary.parquet")
    rows = [
        ("demo-matched", "demo-target"),
        ("demo-matched", "demo-control"),
        ("demo-shifted", "demo-control"),
        ("demo-binding", "demo-target"),
        ("demo-binding", "demo-control"),
    ]
    t = t[(t["response"] == "transcript") & (t["split"] == "full")].set_index(["dataset", "model"])
    out = []
    for key in rows:
        r = t.loc[key]
        out.append({
            "dataset": key[0], "model": key[1], "blind baseline": status_word(r),
            "loss AUC": fmt_ci(r["loss_auc"], r["loss_lo"], r["loss_hi"]),
            "aggregate AUC": fmt_ci(r["agg_auc"], r["agg_lo"], r["agg_hi"]),
            "aggregate (permutation p)": f"{r['agg_verdict']} (p = {r['p_perm']:.2g})",
        })  # fmt: skip
    return to_markdown(pd.DataFrame(out))


def _splits(results: Path) -> str:
    out = []
    for ds in ("demo-matched", "demo-partial", "demo-shifted", "demo-binding"):
        st = io.read_table(results / "splits" / ds / "status.parquet")
        for r in st.to_dict("records"):
            out.append({
                "dataset": ds, "split": r["split"], "members / non-members":
                f"{r['n_members']} / {r['n_nonmembers']}", "blind verdict": verdicts.state_word(r["state"]),
                "largest blind AUC": f"{r['blind_auc']:.2f}",
                "detectable AUC (80% power)": f"{r['detectable_auc']:.2f}",
            })  # fmt: skip
    return to_markdown(pd.DataFrame(out))


def _correlation(results: Path) -> str:
    picks = [
        ("demo-control", "demo-shifted", ("all", "aggregate")),
        ("demo-target", "demo-matched", ("response", "loss")),
    ]
    out = []
    for model, ds, (sl, ind) in picks:
        a = io.read_table(results / "correlation" / model / ds / "transcript" / "adjusted.parquet")
        r = a.set_index(["split", "slice", "indicator"]).loc[("full", sl, ind)]
        member = verdicts.is_membership_signal(str(r["verdict"]))
        out.append({
            "model": model, "dataset": ds, "score": f"{sl}/{ind}",
            "AUC": fmt_ci(r["auc"], r["auc_lo"], r["auc_hi"]), "r with blind logit": f"{r['pearson_r']:+.2f}",
            "membership signal beyond the artifacts": "yes" if member else "no",
        })  # fmt: skip
    return to_markdown(pd.DataFrame(out))


def _disentangle(results: Path) -> str:
    d = io.read_table(
        results / "disentangle" / "demo-target" / "demo-binding" / "transcript.parquet"
    )
    d = d[(d["split"] == "full") & (d["slice"] == "response") & (d["indicator"] == "loss")]
    out = [
        {
            "condition": r["condition"],
            "AUC": fmt_ci(r["auc"], r["auc_lo"], r["auc_hi"]),
            "difference": "-" if r["condition"] == "original" else f"{r['diff']:+.2f}",
            "Holm p": "-" if pd.isna(r["p_holm"]) else f"{r['p_holm']:.2f}",
            "significant": "yes" if r["significant"] else "no",
        }
        for r in d.to_dict("records")
    ]
    return to_markdown(pd.DataFrame(out))


SNIPPETS: dict[str, Callable[[Path], str]] = {
    "mia": _mia,
    "splits": _splits,
    "correlation": _correlation,
    "disentangle": _disentangle,
}


def snippets(results: str | Path) -> dict[str, str]:
    """Every README block rendered from ``results``."""
    return {name: fn(Path(results)) for name, fn in SNIPPETS.items()}


def blocks(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}


def sync(readme: str | Path, results: str | Path) -> str:
    """The README text with every block replaced by its fresh rendering."""
    fresh = snippets(results)
    text = Path(readme).read_text()
    missing = sorted(set(fresh) - set(blocks(text)))
    if missing:
        raise ValueError(
            f"{readme} lacks the blocks {missing} (<!-- demo:NAME --> ... <!-- /demo:NAME -->)"
        )
    return BLOCK.sub(lambda m: m.group(1) + fresh[m.group("name")] + m.group(4), text)


def _same(a: str, b: str, tol: float) -> bool:
    na, nb = _NUM.findall(a), _NUM.findall(b)
    if _NUM.sub("#", a).split() != _NUM.sub("#", b).split() or len(na) != len(nb):
        return False
    return all(abs(float(x) - float(y)) <= tol for x, y in zip(na, nb, strict=True))


def differences(readme: str | Path, results: str | Path, *, tol: float = 0.05) -> list[str]:
    """Blocks whose README text differs from a fresh rendering (words exactly, numbers within ``tol``)."""
    have, fresh = blocks(Path(readme).read_text()), snippets(results)
    out = []
    for name, text in fresh.items():
        if name not in have:
            out.append(f"{name}: missing from {readme}")
        elif not _same(have[name], text, tol):
            out.append(f"{name}: README\n{have[name]}\nfresh run\n{text}")
    return out
