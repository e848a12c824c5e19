"""Join the stage-2 shards (rule merge_token_stats)."""

from lalm_audit.scoring.merge import merge_shards
from lalm_audit.workflow import start_job

start_job(snakemake)
merge_shards(snakemake.input, snakemake.output[0], "token_stats")
