# Blind-baseline features: one job per (dataset, group, shard), merged per (dataset, group).
# Each group is its own cached table, so adding a dataset or a group runs only its jobs.


localrules:
    features_merge,


rule features_shard:
    input:
        manifest="results/manifests/{dataset}.parquet",
    output:
        "results/features/{dataset}/shards/{group}/{shard}-of-{n_shards}.parquet",
    log:
        "results/logs/features/{dataset}/shards/{group}/{shard}-of-{n_shards}.log",
    benchmark:
        "results/benchmarks/features/{dataset}/{group}/{shard}-of-{n_shards}.tsv"
    wildcard_constraints:
        dataset=AUDIT_DATASET_RE,
    conda:
        ENV
    threads: 1
    params:
        stage=stage_params("features"),
        # Features by clip content: datasets sharing clips extract each once (rm it to force).
        cache_dir="results/cache/features",
    script:
        "../scripts/features_shard.py"


rule features_merge:
    input:
        shards=feature_shards,
        manifest="results/manifests/{dataset}.parquet",
    output:
        "results/features/{dataset}/{group}.parquet",
    log:
        "results/logs/features/{dataset}/{group}.log",
    wildcard_constraints:
        dataset=AUDIT_DATASET_RE,
    conda:
        ENV
    params:
        stage=stage_params("features"),
    script:
        "../scripts/features_merge.py"
