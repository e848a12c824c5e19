# Blind-baseline features: one job per (dataset, group, shard), merged per (dataset, group).
# Each group is its own cached table, so adding a dataset or a group runs only its jobs.


localrules:
    features_merge,


rule features_shard:
    input:
        manifest=L.manifest(),
    output:
        L.feature_shard(),
    log:
        L.log("features_shard"),
    benchmark:
        L.benchmark("features_shard")
    wildcard_constraints:
        dataset=AUDIT_DATASET_RE,
    conda:
        ENV
    threads: 1
    params:
        stage=stage_params("features"),
        # Features by clip content: datasets sharing clips extract each once (rm it to force).
        cache_dir=L.feature_cache(),
    script:
        "../scripts/features_shard.py"


rule features_merge:
    input:
        shards=feature_shards,
        manifest=L.manifest(),
    output:
        L.features(),
    log:
        L.log("features_merge"),
    wildcard_constraints:
        dataset=AUDIT_DATASET_RE,
    conda:
        ENV
    params:
        stage=stage_params("features"),
    script:
        "../scripts/features_merge.py"
