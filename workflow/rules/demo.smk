# The synthetic demo world (only when the config has a `demo` section).


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
