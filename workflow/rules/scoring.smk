# Target-model scoring: stage-1 generation, stage-2 token statistics.
# One job per (model, dataset, condition, shard); shards are merged per stage.


localrules:
    merge_generations,


rule generate:
    input:
        manifest=condition_manifest,
        model=model_files,
    output:
        generations=L.generations_shard(),
        rejected=L.generations_shard(rejected=True),
    log:
        L.log("generate"),
    benchmark:
        L.benchmark("generate")
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
        generations=expand(L.generations_shard(), shard=SHARDS, allow_missing=True),
        rejected=expand(
            L.generations_shard(rejected=True), shard=SHARDS, allow_missing=True
        ),
    output:
        generations=L.generations(),
        rejected=L.generations(rejected=True),
    log:
        L.log("merge_generations"),
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
            L.token_stats_shard(condition="original"),
            response=RESPONSES,
            allow_missing=True,
        ),
    log:
        L.log("score"),
    benchmark:
        L.benchmark("score")
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
        expand(L.token_stats_shard(), response=PERTURB_RESPONSES, allow_missing=True),
    log:
        L.log("score_perturbed"),
    benchmark:
        L.benchmark("score_perturbed")
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
