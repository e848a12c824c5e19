# The synthetic demo world (only when the config has a `demo` section) and the demo models
# trained on it (only when the config has `demo_models`).


if CFG.demo is not None:

    rule demo_data:
        output:
            tables=expand(L.demo_table(), name=DEMO_DATASETS),
            audio=directory(L.demo_audio()),
        log:
            L.log("demo_data"),
        benchmark:
            L.benchmark("demo_data")
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
            unpack(demo_model_manifests),
        output:
            directory(L.model_dir("{demo_model}")),
        log:
            L.log("demo_model"),
        benchmark:
            L.benchmark("demo_model")
        conda:
            ENV
        threads: 1
        params:
            stage=stage_params("demo_model"),
        script:
            "../scripts/demo_model.py"
