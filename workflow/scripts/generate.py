"""Stage 1 for one shard: greedy responses to audio + prompt (rule generate)."""

from lalm_audit.scoring.run import run_generate
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
wc = snakemake.wildcards
out = snakemake.output
run_generate(cfg, wc.model, wc.dataset, wc.condition, int(wc.shard),
             snakemake.input.manifest, out.generations, out.rejected)  # fmt: skip
