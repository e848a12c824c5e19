"""ROC curves of the analysis targets and the aggregated attack, per split (rule roc)."""

from lalm_audit.report.build import run_roc
from lalm_audit.workflow import split_paths, start_job

cfg = start_job(snakemake)
wc, inp, out = snakemake.wildcards, snakemake.input, snakemake.output
run_roc(
    cfg,
    inp.scores,
    inp.aggregate,
    split_paths(snakemake.params.splits, inp.splits),
    out.png,
    out.pdf,
    title=f"{wc.model} on {wc.dataset} ({wc.response})",
)
