"""Indicators against blind artifacts: correlation, confound adjustment, verdicts (rule correlation)."""

from lalm_audit.correlation import run_correlation
from lalm_audit.layout import Layout
from lalm_audit.workflow import split_paths, start_job

cfg = start_job(snakemake)
wc, inp, out = snakemake.wildcards, snakemake.input, snakemake.output
run_correlation(
    cfg,
    wc.dataset,
    inp.scores,
    inp.aggregate,
    split_paths(snakemake.params.splits, inp.splits),
    correlation_out=out.correlation,
    adjusted_out=out.adjusted,
    markdown_out=out.table,
    latex_out=out.latex,
    figure_png=out.png,
    figure_pdf=out.pdf,
    results=Layout().root,  # the rules' layout (workflow/rules/common.smk: L = Layout())
    manifest=inp.manifest,
    status_path=inp.status,
    mia_metrics_path=inp.mia,
    title=f"{wc.model} on {wc.dataset} ({wc.response})",
)
