"""Perturbation conditions against the original audio (rule disentangle)."""

from lalm_audit.disentangle import run_disentangle
from lalm_audit.workflow import split_paths, start_job

cfg = start_job(snakemake)
wc, inp, out = snakemake.wildcards, snakemake.input, snakemake.output
conditions = dict(zip(cfg.perturb.conditions, inp.conditions, strict=True))
splits = split_paths(snakemake.params.splits, inp.splits)
run_disentangle(
    cfg,
    inp.original,
    conditions,
    splits,
    out.table,
    out.png,
    out.pdf,
    title=f"{wc.model} on {wc.dataset} ({wc.response})",
    status_path=inp.status,
)
