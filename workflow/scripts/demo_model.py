"""Train one demo model on the demo manifests (rule demo_model)."""

from lalm_audit.models.demo import run_demo_model
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
manifests = dict(snakemake.input.items())  # dataset -> manifest (named inputs)
run_demo_model(cfg, snakemake.wildcards.demo_model, manifests, snakemake.output[0])
