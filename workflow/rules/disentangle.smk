# Modality disentanglement: perturbed conditions against the original, per split and target.


rule disentangle:
    input:
        original=lambda wc: L.indicators(
            wc.model, wc.dataset, "original", original_response(wc.response)
        ),
        conditions=lambda wc: [
            L.indicators(wc.model, wc.dataset, c, wc.response) for c in CONDITIONS
        ],
        splits=split_files,
        status=split_status,
    output:
        table=L.disentangle(),
        png=report(
            L.disentangle(ext="png"),
            caption="../report/disentangle.rst",
            category="5. Modality disentanglement",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "dataset": "{dataset}",
                "response": "{response}",
            },
        ),
        pdf=L.disentangle(ext="pdf"),
    log:
        L.log("disentangle"),
    conda:
        ENV
    params:
        stage=stage_params("disentangle"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/disentangle.py"
