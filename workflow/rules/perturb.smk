# Modality disentanglement: derived items with silenced, replaced, re-spoken or perturbed audio.


rule perturb:
    input:
        manifest=L.manifest(),
    output:
        manifest=L.perturbed_manifest(),
        rejected=L.perturbed_rejected(),
        audio=directory(L.perturbed_audio()),
    log:
        L.log("perturb"),
    benchmark:
        L.benchmark("perturb")
    conda:
        ENV
    params:
        stage=stage_params("perturb"),
    script:
        "../scripts/perturb.py"
