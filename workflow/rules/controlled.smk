# Controlled-membership audit (only with a `controlled` section): a random member/held-out draw
# from a pool the models have not seen, a LoRA fine-tune of each base model on the members, and
# an audit of the fine-tune with its base as reference, with epsilon lower bounds.
# `snakemake ... controlled` builds only this; CONTROLLED_TARGETS are also in the default target.

CONTROLLED_TARGETS = []

if CFG.controlled is not None:
    CONTROLLED = CFG.controlled
    CONTROLLED_MODELS = list(CONTROLLED.models)
    CONTROLLED_MANIFEST = L.manifest(CONTROLLED.dataset)

    wildcard_constraints:
        cmodel="|".join(re.escape(m) for m in CONTROLLED_MODELS) or "^$",

    CONTROLLED_TARGETS = [
        L.controlled_blind("md"),
        *expand(L.controlled_audit(file="summary.md"), cmodel=CONTROLLED_MODELS),
    ]

    rule controlled:
        input:
            CONTROLLED_TARGETS,

    rule controlled_blind:
        input:
            manifest=CONTROLLED_MANIFEST,
            features=expand(
                L.features("{pool}"),
                pool=CONTROLLED.pool,
                group=CFG.features.groups,
            ),
        output:
            metrics=L.controlled_blind("parquet"),
            verdict=L.controlled_blind("verdict.json"),
            summary=L.controlled_blind("md"),
        log:
            L.log("controlled_blind"),
        benchmark:
            L.benchmark("controlled_blind")
        conda:
            ENV
        params:
            stage=stage_params("controlled_blind"),
        script:
            "../scripts/controlled_blind.py"

    rule controlled_split:
        input:
            L.manifest(CONTROLLED.pool),
        output:
            manifest=CONTROLLED_MANIFEST,
            summary=L.manifest_report(CONTROLLED.dataset),
        log:
            L.log("controlled_split", dataset=CONTROLLED.dataset),
        conda:
            ENV
        params:
            stage=stage_params("controlled_split"),
        script:
            "../scripts/controlled_split.py"

    rule controlled_finetune:
        input:
            manifest=CONTROLLED_MANIFEST,
            model=lambda wc: (
                [L.model_dir(wc.cmodel)] if wc.cmodel in DEMO_MODELS else []
            ),
        output:
            directory(L.controlled_adapter()),
        log:
            L.log("controlled_finetune"),
        benchmark:
            L.benchmark("controlled_finetune")
        conda:
            ENV
        threads: 1
        params:
            stage=stage_params("controlled_finetune"),
        script:
            "../scripts/controlled_finetune.py"

    rule controlled_audit:
        input:
            manifest=CONTROLLED_MANIFEST,
            adapter=L.controlled_adapter(),
            model=lambda wc: (
                [L.model_dir(wc.cmodel)] if wc.cmodel in DEMO_MODELS else []
            ),
        output:
            scores=L.controlled_audit(file="scores.parquet"),
            metrics=L.controlled_audit(file="metrics.parquet"),
            bounds=L.controlled_audit(file="bounds.json"),
            summary=L.controlled_audit(file="summary.md"),
            png=report(
                L.controlled_audit(file="repetitions.png"),
                caption="../report/controlled.rst",
                category="6. Controlled audit",
                labels=lambda wc: {"model": wc.cmodel},
            ),
            pdf=L.controlled_audit(file="repetitions.pdf"),
        log:
            L.log("controlled_audit"),
        benchmark:
            L.benchmark("controlled_audit")
        conda:
            ENV
        threads: 1
        params:
            stage=stage_params("controlled_audit"),
        script:
            "../scripts/controlled_audit.py"
