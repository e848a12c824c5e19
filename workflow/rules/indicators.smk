# Membership indicators from stored token statistics (no model).


rule indicators:
    input:
        stats=expand(
            "results/scores/{{model}}/{{dataset}}/{{condition}}/{{response}}/token_stats/shard-{shard}.parquet",
            shard=SHARDS,
        ),
        manifest=condition_manifest,
        reference=reference_stats,
    output:
        "results/indicators/{model}/{dataset}/{condition}/{response}.parquet",
    log:
        "results/logs/indicators/{model}/{dataset}/{condition}/{response}.log",
    conda:
        ENV
    params:
        stage=stage_params("indicators"),
    script:
        "../scripts/indicators.py"
