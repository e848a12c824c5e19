# The synthetic demo world (only when the config has a `demo` section) and the demo models
# trained on it (only when the config has `demo_models`).


if CFG.demo is not None:

    rule demo_data:
        output:
            tables=expand("results/demo/{name}.parquet", name=DEMO_DATASETS),
            audio=directory("results/demo/audio"),
        log:
            "results/logs/demo_data.log",
        benchmark:
            "results/benchmarks/demo_data.tsv"
        conda:
            ENV
        threads: 4
        params:
            stage=stage_params("demo_data"),
        script:
            "../scripts/demo_data.py"


if DEMO_MODELS:

    rule demo_model:
        input:
            demo_model_manifests,
        output:
            directory("results/models/{demo_model}"),
        log:
            "results/logs/demo_model/{demo_model}.log",
        benchmark:
            "results/benchmarks/demo_model/{demo_model}.tsv"
        conda:
            ENV
        threads: 1
        params:
            stage=stage_params("demo_model"),
        script:
            "../scripts/demo_model.py"
