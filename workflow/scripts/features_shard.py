"""Extract one feature group for one shard of a dataset's manifest (rule features_shard)."""

from lalm_audit.features import run_features_shard
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
w = snakemake.wildcards
run_features_shard(
    cfg,
    w.dataset,
    w.group,
    int(w.shard),
    int(w.n_shards),
    snakemake.input.manifest,
    snakemake.output[0],
    cache_dir=snakemake.params.cache_dir,
)
