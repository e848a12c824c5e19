"""The report's tables (Markdown, LaTeX and one HTML page) and ROC figures, from the stages' Parquet outputs.

Everything here reads results the workflow already wrote; nothing is
recomputed, so regenerating the report is cheap and reruns only what changed.

- :func:`run_roc`: ROC curves (log-scaled FPR) of the analysis targets and the
  aggregated attack, one panel per split, for one model x dataset x response.
- :func:`run_report_tables`: the blind table (per dataset: blind AUC per
  feature group with CIs and the clean-split verdicts), the MIA table (per
  dataset x model x response x split), the confound-adjustment table and the
  disentanglement table, each as ``.md`` and ``.tex``, plus ``tables.html``
  (all of them on one page, for the Snakemake HTML report).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_audit import io, verdicts
from lalm_audit.render.tables import adjusted_table, fmt_ci, to_latex, to_markdown

# --------------------------------------------------------------------------- ROC curves


def run_roc(
    cfg: Any,
    scores_path: str,
    aggregate_path: str | None,
    splits: Mapping[str, str | None],
    png: str,
    pdf: str | None = None,
    title: str = "",
) -> Any:
    """ROC curves of the analysis targets and the aggregate, one panel per split (members positive); returns the figure."""
    import matplotlib.pyplot as plt

    from lalm_audit.render.mia_figures import draw_roc
    from lalm_audit.render.style import save
    from lalm_audit.targets import average_renderings, parse_targets, target_scores

    scores = average_renderings(io.read_table(scores_path))
    labels = scores.drop_duplicates("item_id").set_index("item_id")["label"].astype(int)
    aggregate = io.read_table(aggregate_path) if aggregate_path else None
    targets = parse_targets(cfg.analysis.targets)
    if aggregate is not None and ("all", "aggregate") not in targets:
        targets.append(("all", "aggregate"))
    n = len(splits)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.2), squeeze=False, layout="constrained")
    for ax, (split, path) in zip(axes.flat, splits.items(), strict=True):
        items = None if path is None else set(io.read_table(path, columns=["item_id"])["item_id"])
        curves = {}
        for (sl, ind), x in target_scores(scores, aggregate, split, targets).items():
            if items is not None:
                x = x[x.index.isin(items)]
            y = labels.loc[x.index].to_numpy()
            if len(np.unique(y)) == 2:
                curves[f"{sl}/{ind}"] = (y, x.to_numpy())
        draw_roc(ax, curves, legend_size=6)
        ax.set_title(f"split {split}", fontsize=9)
    fig.suptitle(title or "ROC", fontsize=10)
    save(fig, *[p for p in (png, pdf) if p])
    return fig


# --------------------------------------------------------------------------- tables


def blind_table(
    metrics_paths: Sequence[str], split_lines: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Per dataset x feature group: the reported classifier's blind AUC [CI], its permutation control and the
    dataset's blind verdicts per split (``split_lines``: dataset -> text, from :func:`split_verdicts`)."""
    rows = []
    for p in metrics_paths:
        m = io.read_table(p)
        rep = m[m["stronger"]]
        for (ds, group), g in rep.groupby(["dataset", "group"], sort=False):
            b = g[g["control"] == "blind"]
            c = g[g["control"] == "permutation"]
            if b.empty:
                continue
            r = b.iloc[0]
            rows.append({
                "dataset": ds, "group": group, "classifier": r["classifier"],
                "members / non-members": f"{r['n_members']} / {r['n_nonmembers']}",
                "blind AUC [95% CI]": fmt_ci(r["auc"], r["auc_lo"], r["auc_hi"]),
                "permutation null AUC": fmt_ci(c.iloc[0]["auc"], c.iloc[0]["auc_lo"], c.iloc[0]["auc_hi"])
                if len(c) else "-",
                "p (this check)": f"{r['p_perm']:.2g}" if pd.notna(r.get("p_perm")) else "-",
                "blind verdicts": (split_lines or {}).get(ds, "not run"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def split_verdicts(status_paths: Sequence[str]) -> dict[str, str]:
    """Dataset -> one line on its blind verdicts, e.g. 'full: SHIFTED; filter: inconclusive, 118 items'.

    The words are :func:`lalm_audit.verdicts.state_word` of each split's state (a shifted clean
    split reads NOT AUDITABLE: no subset was found free of the shift).
    """
    out = {}
    for p in status_paths:
        st = io.read_table(p)
        parts = [
            f"{r['split']}: "
            + ("NOT AUDITABLE" if r["split"] != "full" and r["state"] == verdicts.SHIFTED
               else verdicts.state_word(r["state"]))
            + f", {r['n_members'] + r['n_nonmembers']} items"
            for _, r in st.iterrows()
        ]  # fmt: skip
        (ds,) = io.identity_of(p, "dataset")
        out[ds] = "; ".join(parts) or "-"
    return out


def splits_table(status_paths: Sequence[str]) -> pd.DataFrame:
    """Per dataset x split: sizes, the re-verified blind AUC and the verdict."""
    rows = []
    for p in status_paths:
        (ds,) = io.identity_of(p, "dataset")
        for _, r in io.read_table(p).iterrows():
            rows.append({
                "dataset": ds, "split": r["split"],
                "members / non-members": f"{r['n_members']} / {r['n_nonmembers']}",
                "blind AUC [95% CI]": fmt_ci(r["blind_auc"], r["blind_lo"], r["blind_hi"]),
                "blind verdict": verdicts.state_word(r["state"]),
                "p (permutation)": f"{r['p_value']:.2g}",
                "detectable AUC": f"{r['detectable_auc']:.2f}",
                "verdict": r["verdict"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def mia_table(summary_path: str) -> pd.DataFrame:
    """The MIA headline table (per dataset x model x response x split) from ``results/mia/summary.parquet``."""
    from lalm_audit.mia import summary_frame

    return summary_frame(io.read_table(summary_path))


def adjusted_tables(paths: Sequence[str]) -> pd.DataFrame:
    frames = []
    for p in paths:
        model, ds, response = io.identity_of(p, "model", "dataset", "response")
        t = adjusted_table(io.read_table(p))
        t.insert(0, "response", response)
        t.insert(0, "model", model)
        t.insert(0, "dataset", ds)
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def disentangle_table(paths: Sequence[str]) -> pd.DataFrame:
    rows = []
    for p in paths:
        model, ds, response = io.identity_of(p, "model", "dataset", "response")
        for _, r in io.read_table(p).iterrows():
            orig = r["condition"] == "original"
            rows.append({
                "dataset": ds, "model": model, "response": response, "split": r["split"],
                "target": f"{r['slice']}/{r['indicator']}", "condition": r["condition"],
                "AUC [95% CI]": fmt_ci(r["auc"], r["auc_lo"], r["auc_hi"]),
                "vs original [95% CI]": "-" if orig else fmt_ci(r["diff"], r["diff_lo"], r["diff_hi"]),
                "p (Holm)": "-" if orig or pd.isna(r["p_holm"]) else f"{r['p_holm']:.2g}",
                "significant": "" if orig else ("*" if r["significant"] else ""),
            })  # fmt: skip
    return pd.DataFrame(rows)


TABLES = {
    "blind": "Blind baseline: members vs non-members without any model (reported classifier per feature group)",
    "splits": "Clean splits: re-verified blind AUC of the retained items and the verdict",
    "mia": "Membership inference: headline results per dataset, model, scored response and split",
    "adjusted": "MIA signal against blind artifacts: correlation with the blind logit, confound-adjusted AUC, "
    "gain over the blind classifier",
    "disentangle": "Modality disentanglement: AUC per audio condition against the original (paired bootstrap, "
    "Holm-corrected)",
}


def run_report_tables(
    out_dir: str | Path,
    *,
    blind_metrics: Sequence[str] = (),
    split_status: Sequence[str] = (),
    mia_summary: str | None = None,
    adjusted: Sequence[str] = (),
    disentangle: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """Write every table as ``<name>.md`` and ``<name>.tex`` under ``out_dir``, and ``tables.html``."""
    out = Path(out_dir)
    frames = {
        "blind": blind_table(blind_metrics, split_verdicts(split_status)),
        "splits": splits_table(split_status),
        "mia": mia_table(mia_summary) if mia_summary else pd.DataFrame(),
        "adjusted": adjusted_tables(adjusted),
        "disentangle": disentangle_table(disentangle),
    }
    page = [
        "<html><head><meta charset='utf-8'><style>table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>",
        "<h1>lalm-audit: tables</h1>",
    ]
    for name, df in frames.items():
        caption = TABLES[name]
        if df.empty:
            io.write_text(
                f"# {caption}\n\n(no rows: this stage is not configured)\n", out / f"{name}.md"
            )
            io.write_text(f"% {caption}: no rows\n", out / f"{name}.tex")
            page.append(
                f"<h2>{html.escape(caption)}</h2><p>(no rows: this stage is not configured)</p>"
            )
            continue
        io.write_text(f"# {caption}\n\n" + to_markdown(df), out / f"{name}.md")
        io.write_text(to_latex(df, caption=caption, label=f"tab:{name}"), out / f"{name}.tex")
        page.append(f"<h2>{html.escape(caption)}</h2>")
        page.append(df.to_html(index=False, escape=True, border=0))
    page.append("</body></html>")
    io.write_text("\n".join(page), out / "tables.html")
    return frames
