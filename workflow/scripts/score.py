"""Stage 2 for one shard, every configured response with one model load (rules score, score_perturbed)."""

from lalm_audit.scoring.run import run_score_responses
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
wc, p = snakemake.wildcards, snakemake.params
run_score_responses(
    cfg,
    wc.model,
    wc.dataset,
    p.condition,
    p.responses,
    int(wc.shard),
    snakemake.input.manifest,
    list(snakemake.output),
)
