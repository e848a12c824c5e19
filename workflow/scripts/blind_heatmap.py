"""Blind AUC between every two groups of items, as a table and a figure (rule blind_heatmap)."""

from lalm_audit.heatmap import run_heatmap
from lalm_audit.layout import Layout
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
out = snakemake.output
run_heatmap(
    cfg,
    snakemake.params.datasets,
    results=Layout().root,  # the rules' layout (workflow/rules/common.smk: L = Layout())
    out=out.table,
    figure=[out.png, out.pdf],
    workers=snakemake.threads,
)
