# Modality disentanglement: perturbed conditions against the original, per split and target.


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
