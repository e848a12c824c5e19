# Membership indicators from stored token statistics (no model), MIA evaluation per split,
# and modality disentanglement (perturbed conditions against the original).


localrules:
    mia_summary,


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


rule mia:
    input:
        scores="results/indicators/{model}/{dataset}/original/{response}.parquet",
        splits=split_files,
        status=split_status,
    output:
        metrics="results/mia/{model}/{dataset}/{response}/metrics.parquet",
        aggregate="results/mia/{model}/{dataset}/{response}/aggregate.parquet",
        table="results/mia/{model}/{dataset}/{response}/metrics.md",
    log:
        "results/logs/mia/{model}/{dataset}/{response}.log",
    benchmark:
        "results/benchmarks/mia/{model}/{dataset}/{response}.tsv"
    conda:
        ENV
    params:
        stage=stage_params("mia"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/mia.py"


rule mia_summary:
    input:
        mia_metric_files,
    output:
        table="results/mia/summary.parquet",
        markdown="results/mia/summary.md",
    log:
        "results/logs/mia/summary.log",
    conda:
        ENV
    params:
        stage=stage_params("mia_summary"),
    script:
        "../scripts/mia_summary.py"


rule disentangle:
    input:
        original=lambda wc: f"results/indicators/{wc.model}/{wc.dataset}/original/{original_response(wc.response)}.parquet",
        conditions=lambda wc: [
            f"results/indicators/{wc.model}/{wc.dataset}/{c}/{wc.response}.parquet"
            for c in CONDITIONS
        ],
        splits=split_files,
        status=split_status,
    output:
        table="results/disentangle/{model}/{dataset}/{response}.parquet",
        png=report(
            "results/disentangle/{model}/{dataset}/{response}.png",
            caption="../report/disentangle.rst",
            category="5. Modality disentanglement",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "dataset": "{dataset}",
                "response": "{response}",
            },
        ),
        pdf="results/disentangle/{model}/{dataset}/{response}.pdf",
    log:
        "results/logs/disentangle/{model}/{dataset}/{response}.log",
    conda:
        ENV
    params:
        stage=stage_params("disentangle"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/disentangle.py"
