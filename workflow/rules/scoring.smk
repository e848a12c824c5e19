# Target-model scoring: stage-1 generation, stage-2 token statistics.
# One job per (model, dataset, condition, shard); shards are merged per stage.


localrules:
    merge_generations,


rule generate:
    input:
        manifest=condition_manifest,
        model=model_files,
    output:
        generations="results/scores/{model}/{dataset}/{condition}/generations/shard-{shard}.parquet",
        rejected="results/scores/{model}/{dataset}/{condition}/generations/shard-{shard}.rejected.parquet",
    log:
        "results/logs/scores/{model}/{dataset}/{condition}/generations/shard-{shard}.log",
    benchmark:
        "results/benchmarks/scores/{model}/{dataset}/{condition}/generations/shard-{shard}.tsv"
    wildcard_constraints:
        condition="|".join(SCORE_CONDITIONS),
    conda:
        ENV
    threads: 1
    resources:
        gpu=model_gpus,
    params:
        stage=stage_params("generate"),
    script:
        "../scripts/generate.py"


rule merge_generations:
    input:
        generations=expand(
            "results/scores/{{model}}/{{dataset}}/{{condition}}/generations/shard-{shard}.parquet",
            shard=SHARDS,
        ),
        rejected=expand(
            "results/scores/{{model}}/{{dataset}}/{{condition}}/generations/shard-{shard}.rejected.parquet",
            shard=SHARDS,
        ),
    output:
        generations="results/scores/{model}/{dataset}/{condition}/generations.parquet",
        rejected="results/scores/{model}/{dataset}/{condition}/generations.rejected.parquet",
    log:
        "results/logs/scores/{model}/{dataset}/{condition}/generations.log",
    wildcard_constraints:
        condition="|".join(SCORE_CONDITIONS),
    conda:
        ENV
    params:
        stage=stage_params("generate"),
    script:
        "../scripts/merge_generations.py"


rule score:
    input:
        manifest=condition_manifest,
        model=model_files,
        generations=response_generations,
    output:
        expand(
            "results/scores/{{model}}/{{dataset}}/original/{response}/token_stats/shard-{{shard}}.parquet",
            response=RESPONSES,
        ),
    log:
        "results/logs/scores/{model}/{dataset}/original/token_stats/shard-{shard}.log",
    benchmark:
        "results/benchmarks/scores/{model}/{dataset}/original/token_stats/shard-{shard}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        gpu=model_gpus,
    params:
        stage=stage_params("score"),
        condition="original",
        responses=RESPONSES,
    script:
        "../scripts/score.py"


rule score_perturbed:
    input:
        manifest=condition_manifest,
        model=model_files,
        generations=response_generations,
    output:
        expand(
            "results/scores/{{model}}/{{dataset}}/{{condition}}/{response}/token_stats/shard-{{shard}}.parquet",
            response=PERTURB_RESPONSES,
        ),
    log:
        "results/logs/scores/{model}/{dataset}/{condition}/token_stats/shard-{shard}.log",
    benchmark:
        "results/benchmarks/scores/{model}/{dataset}/{condition}/token_stats/shard-{shard}.tsv"
    wildcard_constraints:
        condition="|".join(CONDITIONS) or "^$",
    conda:
        ENV
    threads: 1
    resources:
        gpu=model_gpus,
    params:
        stage=stage_params("score"),
        condition=lambda wc: wc.condition,
        responses=PERTURB_RESPONSES,
    script:
        "../scripts/score.py"
