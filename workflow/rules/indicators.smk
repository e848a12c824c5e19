# Membership indicators from stored token statistics (no model).


rule indicators:
    input:
        stats=expand(L.token_stats_shard(), shard=SHARDS, allow_missing=True),
        manifest=condition_manifest,
        reference=reference_stats,
    output:
        L.indicators(),
    log:
        L.log("indicators"),
    conda:
        ENV
    params:
        stage=stage_params("indicators"),
    script:
        "../scripts/indicators.py"
