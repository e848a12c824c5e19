"""Join the stage-1 shards (rule merge_generations)."""

from lalm_audit.scoring.merge import merge_shards
from lalm_audit.workflow import start_job

start_job(snakemake)
merge_shards(snakemake.input.generations, snakemake.output.generations, "generations")
merge_shards(snakemake.input.rejected, snakemake.output.rejected, "rejected")
