"""The README's demo numbers, generated from a run's results so that they cannot drift.

The README holds blocks between ``<!-- demo:NAME -->`` and ``<!-- /demo:NAME -->``;
:func:`snippets` renders each block from a results folder, :func:`sync` writes them
into the README (``lalm-audit readme --write``) and :func:`differences` compares
(``lalm-audit readme --check``, run by the end-to-end test on a fresh demo run).

The ``machine`` block names the machine the numbers came from (the run's provenance,
:func:`lalm_audit.io.machine_identity`). On that kind of machine a fresh run is
byte-identical, so the comparison is strict: exact on words, within ``tol`` on numbers.
On another CPU it cannot be: the demo trains its models on the spot, torch and BLAS take
other floating-point paths, and the trained models differ by more than the last digits
(measured: the *noise* condition's AUC 0.953 on one machine, 0.831 on an AMD EPYC; the
control model's aggregate on demo-binding 0.354 vs 0.403). There the comparison checks
what holds on any machine: every block has the same tables, columns and rows. The
design's verdicts that hold on any machine are asserted by the end-to-end tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lalm_audit import io, verdicts
from lalm_audit.layout import Layout
from lalm_audit.render.tables import fmt_ci, to_markdown
from lalm_audit.verdicts import status_word

_NUM = re.compile(r"-?\d+(?:\.\d+)?")
BLOCK = re.compile(
    r"(<!-- demo:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /demo:(?P=name) -->)", re.S
)


def _mia(results: Path) -> str:
    t = io.read_table(Layout(str(results)).mia_summary("parquet"))
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
        st = io.read_table(Layout(str(results)).split_status(ds))
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
        a = io.read_table(Layout(str(results)).correlation(model, ds, "transcript"))
        r = a.set_index(["split", "slice", "indicator"]).loc[("full", sl, ind)]
        member = verdicts.is_membership_signal(str(r["verdict"]))
        out.append({
            "model": model, "dataset": ds, "score": f"{sl}/{ind}",
            "AUC": fmt_ci(r["auc"], r["auc_lo"], r["auc_hi"]), "r with blind logit": f"{r['pearson_r']:+.2f}",
            "membership signal beyond the artifacts": "yes" if member else "no",
        })  # fmt: skip
    return to_markdown(pd.DataFrame(out))


def _disentangle(results: Path) -> str:
    d = io.read_table(Layout(str(results)).disentangle("demo-target", "demo-binding", "transcript"))
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


def run_machine(results: Path) -> str:
    """The machine a demo run computed its results on (from the MIA summary's provenance)."""
    prov = io.read_provenance(Layout(str(results)).mia_summary("parquet"))
    return str(prov.get("machine", "an unrecorded machine"))


def _machine(results: Path) -> str:
    return f"Numbers below are from a demo run on: `{run_machine(results)}`.\n"


def _controlled(results: Path) -> str:
    lay = Layout(str(results))
    v = io.read_json(lay.controlled_blind("verdict.json"))
    m = io.read_table(lay.controlled_audit("demo-control", "metrics.parquet"))
    m = m[m["indicator"].isin(["base_loss", "loss", "ref_loss_diff"])]
    picks = [("base_loss", "all"), ("loss", "all"), ("ref_loss_diff", "all")]
    reps = dict.fromkeys(s for s in m["subset"] if str(s).startswith("repetitions="))
    picks += [("ref_loss_diff", s) for s in reps]  # each repetition count once
    by = m.set_index(["indicator", "subset"])
    rows = [{
        "indicator": "blind baseline (every check, calibrated verdict)", "members": "all",
        "members / held-out": f"{v['n_members']} / {v['n_nonmembers']}",
        "AUC [95% CI]": f"{verdicts.state_word(v['state'])} (permutation p = {v['p_value']:.2g}; "
        f"largest check {v['auc']:.2f})",
    }]  # fmt: skip
    for ind, sub in picks:
        r = by.loc[(ind, sub)]
        rows.append({
            "indicator": f"`{ind}`", "members": sub.replace("repetitions=", "seen ") + ("x" if sub != "all" else ""),
            "members / held-out": f"{int(r['n_members'])} / {int(r['n_nonmembers'])}",
            "AUC [95% CI]": fmt_ci(r["auc"], r["auc_lo"], r["auc_hi"]),
        })  # fmt: skip
    bounds = io.read_json(lay.controlled_audit("demo-control", "bounds.json"))["bounds"]
    eps = [
        {
            "indicator": f"`{b['indicator']}`", "method": b["method"],
            "epsilon lower bound": f"{b['epsilon']:.3f}", "delta": f"{b['delta']:g}",
            "confidence": f"{b['confidence']:g}",
        }
        for b in bounds
        if b["indicator"] in ("base_loss", "ref_loss_diff")
    ]  # fmt: skip
    return to_markdown(pd.DataFrame(rows)) + "\n" + to_markdown(pd.DataFrame(eps))


def _audit_wide(results: Path) -> str:
    path = Path(Layout(str(results)).mia_summary("md"))
    line = next((ln for ln in path.read_text().splitlines() if ln.startswith("Audit-wide:")), None)
    if line is None:
        raise ValueError(f"{path} has no audit-wide line")
    return f"> {line}\n"


MACHINE = "machine"
SNIPPETS: dict[str, Callable[[Path], str]] = {
    MACHINE: _machine,
    "mia": _mia,
    "audit-wide": _audit_wide,
    "splits": _splits,
    "correlation": _correlation,
    "disentangle": _disentangle,
    "controlled": _controlled,
}


# The README's figures (docs/img/) and the run's files they are copied from by ``sync_figures``.
#: README figure -> the artifact it copies (a function of the run's layout)
FIGURES: dict[str, Callable[[Layout], str]] = {
    "blind-heatmap-demo.png": lambda lay: lay.heatmap("png"),
    "clean-split-partial-demo.png": lambda lay: lay.split(
        "demo-partial", "filter", ".before_after.png"
    ),
    "correlation-control-shifted-demo.png": lambda lay: lay.correlation(
        "demo-control", "demo-shifted", "transcript", "scatter.png"
    ),
    "disentangle-binding-demo.png": lambda lay: lay.disentangle(
        "demo-target", "demo-binding", "transcript", "png"
    ),
    "controlled-repetitions-demo.png": lambda lay: lay.controlled_audit(
        "demo-control", "repetitions.png"
    ),
}


def sync_figures(results: str | Path, img_dir: str | Path) -> list[Path]:
    """Copy the README's figures from a run into ``img_dir`` (the figures match the blocks)."""
    import shutil

    out = []
    lay = Layout(str(results))
    for name, artifact in FIGURES.items():
        src = Path(artifact(lay))
        if not src.is_file():
            raise FileNotFoundError(f"{src}: the README figure {name} comes from it; run the demo")
        dst = Path(img_dir) / name
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


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


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _same_shape(a: str, b: str) -> bool:
    """The same table: identical header and separator, the same rows under the same first cell."""
    if not a.lstrip().startswith("|"):  # a sentence: the same words, any numbers
        return _NUM.sub("#", a).split() == _NUM.sub("#", b).split()
    la, lb = a.strip().splitlines(), b.strip().splitlines()
    if len(la) != len(lb) or la[:2] != lb[:2]:
        return False
    return all(
        len(_cells(x)) == len(_cells(y)) and _cells(x)[0] == _cells(y)[0]
        for x, y in zip(la[2:], lb[2:], strict=True)
    )


@dataclass
class Comparison:
    """The README's demo blocks against a fresh run's rendering of them."""

    readme_machine: str
    run_machine: str
    diffs: list[str] = field(default_factory=list)

    @property
    def strict(self) -> bool:
        """Whether the run was on the README's kind of machine (so words and numbers must agree)."""
        return self.readme_machine == self.run_machine


def compare(readme: str | Path, results: str | Path, *, tol: float = 0.05) -> Comparison:
    """Compare every block: strictly on the README's machine, by table shape on any other."""
    have, fresh = blocks(Path(readme).read_text()), snippets(results)
    cmp = Comparison(have.get(MACHINE, "").strip(), fresh[MACHINE].strip())
    for name, text in fresh.items():
        if name not in have:
            cmp.diffs.append(f"{name}: missing from {readme}")
        elif name == MACHINE:
            continue
        elif not (_same(have[name], text, tol) if cmp.strict else _same_shape(have[name], text)):
            kind = "values" if cmp.strict else "table shape"
            cmp.diffs.append(f"{name} ({kind}): README\n{have[name]}\nfresh run\n{text}")
    return cmp


def differences(readme: str | Path, results: str | Path, *, tol: float = 0.05) -> list[str]:
    """Blocks whose README text differs from a fresh rendering (see :func:`compare`)."""
    return compare(readme, results, tol=tol).diffs
