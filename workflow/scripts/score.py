"""Stage 2 for one shard: teacher-forced pass and per-token statistics (rule score)."""

from lalm_audit.scoring.run import run_score
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
wc = snakemake.wildcards
gen = snakemake.input.generations
run_score(cfg, wc.model, wc.dataset, wc.condition, wc.response, int(wc.shard),
          snakemake.input.manifest, snakemake.output[0],
          generations_path=gen[0] if gen else None)  # fmt: skip
