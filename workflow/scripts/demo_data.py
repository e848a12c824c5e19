"""Render the demo world (rule demo_data)."""

from pathlib import Path

from lalm_audit.demo import build_world
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
build_world(cfg.demo, Path(snakemake.output.audio).parent, workers=snakemake.threads)
