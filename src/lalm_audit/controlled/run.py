"""The controlled-audit stages as functions of (config, paths): what the rules and the CLI call.

split -> finetune (per base model) -> audit (score the fine-tune with the base
as reference; AUC with CI overall and per repetition count; the base model
on the same items; epsilon lower bounds). Canaries: make, then audit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_audit import io
from lalm_audit.config import Config, ControlledConfig
from lalm_audit.controlled.split import COLUMNS, ControlledSplit, draw_controlled
from lalm_audit.errors import LalmAuditError
from lalm_audit.evaluation import tpr_column
from lalm_audit.layout import RESULTS
from lalm_audit.render.tables import tpr_cell
from lalm_audit.schemas import MANIFEST

log = logging.getLogger(__name__)


def _controlled(cfg: Config) -> ControlledConfig:
    if cfg.controlled is None:
        raise LalmAuditError(
            "the config has no 'controlled' section; add one (see README, Controlled audits)"
        )
    return cfg.controlled


def run_controlled_split(cfg: Config, pool_manifest: str | Path, out: str | Path) -> pd.DataFrame:
    """Draw the controlled split from the pool's manifest; write its manifest and a summary beside it."""
    c = _controlled(cfg)
    pool = io.read_table(pool_manifest)
    manifest, record = draw_controlled(
        pool,
        pool_name=c.pool,
        dataset=c.dataset,
        seed=c.seed,
        draw=c.draw,
        stratify_by_speaker=c.stratify_by_speaker,
        repetitions=tuple(c.repetitions),
        use_items=c.use_items,
    )
    prov = io.provenance("controlled_split", c.model_dump(mode="json"), seed=c.seed)
    io.write_table(manifest, out, schema=MANIFEST, prov={**prov, "digest": record.digest})
    reps = manifest[manifest["label"] == 1][COLUMNS["repetitions"]].value_counts().sort_index()
    summary = {
        "digest": record.digest,
        "pool": c.pool,
        "draw": c.draw,
        "seed": c.seed,
        "members": int(manifest["label"].sum()),
        "heldout": int((manifest["label"] == 0).sum()),
        "strata": int(record.items["stratum"].nunique()),
        "members_per_repetitions": {str(k): int(v) for k, v in reps.items()},
    }
    io.write_json(summary, Path(out).with_suffix(".summary.json"))
    log.info(
        "controlled split %s: %d members, %d held-out",
        record.digest,
        summary["members"],
        summary["heldout"],
    )
    return manifest


def _train_items(adapter: Any, manifest: pd.DataFrame, policy: str) -> list[Any]:
    from lalm_audit.controlled.finetune import TrainItem
    from lalm_audit.models.base import load_clips

    members = manifest[manifest["label"] == 1]
    clips, rejected = load_clips(adapter, members, policy)
    if rejected:
        raise LalmAuditError(
            f"{len(rejected)} members cannot be used for fine-tuning, e.g. {rejected[0]['item_id']}: "
            f"{rejected[0]['reason']}"
        )
    by_id = members.set_index("item_id")
    return [
        TrainItem(
            c.item_id,
            c.samples,
            str(by_id.at[c.item_id, "text"]),
            int(by_id.at[c.item_id, COLUMNS["repetitions"]]),
        )
        for c in clips
    ]


def _load(cfg: Config, alias: str) -> Any:
    from lalm_audit.models import load_model

    if alias not in cfg.models:
        raise LalmAuditError(f"model {alias!r} is not configured (known: {list(cfg.models)})")
    return load_model(alias, cfg.models[alias], local_files_only=cfg.scoring.local_files_only)


def run_finetune(
    cfg: Config, alias: str, manifest_path: str | Path, adapter_dir: str | Path
) -> dict[str, Any]:
    """Fine-tune base model ``alias`` on the split's members; write the adapter and its provenance."""
    from lalm_audit.controlled.finetune import finetune_lora, save_adapter

    c = _controlled(cfg)
    manifest = io.read_table(manifest_path)
    split = ControlledSplit.from_manifest(manifest)
    loaded = _load(cfg, alias)
    # 'auto': train where the model was loaded (models.<alias>.device)
    if c.finetune.device != "auto":
        from lalm_audit.models.loading import resolve_device

        device = resolve_device(c.finetune.device)
        loaded.adapter.model.to(device)
        loaded.adapter.device = device
    items = _train_items(loaded.adapter, manifest, cfg.models[alias].long_clip_policy)
    out = Path(adapter_dir)
    result = finetune_lora(
        loaded.adapter,
        items,
        c.finetune,
        checkpoint_dir=out if c.finetune.keep_epoch_checkpoints else None,
    )
    save_adapter(
        result,
        out,
        base_model=loaded.provenance(),
        recipe=c.finetune,
        split_digest=split.digest,
        extra={"members": len(items)},
    )
    log.info(
        "fine-tuned %s on %d members: %d steps, %.1fs, loss %s",
        alias,
        len(items),
        result.steps,
        result.seconds,
        [round(x, 3) for x in result.epoch_losses],
    )
    return {"steps": result.steps, "seconds": result.seconds, "epoch_losses": result.epoch_losses}


def item_losses(
    adapter: Any, manifest: pd.DataFrame, *, prompt: str, batch_size: int, policy: str
) -> pd.Series:
    """Mean response-token loss of each item's transcript (teacher-forced), by item id."""
    from lalm_audit.models.base import load_clips
    from lalm_audit.scoring.pipeline import score

    clips, rejected = load_clips(adapter, manifest, policy)
    if rejected:
        raise LalmAuditError(
            f"{len(rejected)} items cannot be scored, e.g. {rejected[0]['item_id']}: {rejected[0]['reason']}"
        )
    texts = dict(zip(manifest["item_id"], manifest["text"], strict=True))
    tok = score(adapter, clips, texts, prompt=prompt, batch_size=batch_size)
    resp = tok[tok["slice"] == "response"].set_index("item_id")["logp"]
    return resp.map(lambda lp: -float(np.mean(lp)) if len(lp) else np.nan)


INDICATORS = ("loss", "ref_loss_diff", "base_loss")


def run_controlled_audit(
    cfg: Config,
    alias: str,
    manifest_path: str | Path,
    adapter_dir: str | Path,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Score the split with the base and the fine-tune; AUCs overall and per repetitions; epsilon bounds.

    Indicators (higher = member): ``loss`` (the fine-tune's negative loss),
    ``ref_loss_diff`` (base loss minus fine-tune loss: the base model is the
    reference) and ``base_loss`` (the base model alone, which saw none of the
    items and must sit at chance). Writes ``scores.parquet``,
    ``metrics.parquet``, ``bounds.json`` and ``summary.md`` to ``out_dir``.
    """
    from lalm_audit.controlled.finetune import load_adapter, read_adapter_provenance
    from lalm_audit.controlled.privacy import clopper_pearson_bound, one_run_bound
    from lalm_audit.evaluation import evaluate

    c = _controlled(cfg)
    manifest = io.read_table(manifest_path)
    split = ControlledSplit.from_manifest(manifest)
    record = read_adapter_provenance(adapter_dir)
    if record.get("split_digest") != split.digest:
        raise LalmAuditError(
            f"adapter {adapter_dir} was trained on split {record.get('split_digest')}, not on "
            f"{split.digest}; fine-tune again on this split"
        )
    spec = cfg.models[alias]
    kw = {
        "prompt": c.finetune.prompt,
        "batch_size": spec.batch_size,
        "policy": spec.long_clip_policy,
    }
    loaded = _load(cfg, alias)
    base = item_losses(loaded.adapter, manifest, **kw)

    def tuned_losses(path: str | Path) -> pd.Series:
        # attach, score, detach: unload() gives the base back exactly, for the next checkpoint
        peft_model = load_adapter(loaded.adapter.model, path, base_revision=loaded.revision)
        try:
            tuned = type(loaded.adapter)(
                peft_model, loaded.adapter.processor, device=loaded.adapter.device
            )
            return item_losses(tuned, manifest, **kw)
        finally:
            peft_model.unload()

    ft = tuned_losses(adapter_dir)
    epochs = {
        name.removeprefix("adapter_"): tuned_losses(Path(adapter_dir) / name)
        for name in record.get("checkpoints", [])
    }

    items = split.items.set_index("item_id")
    scores = pd.DataFrame(
        {
            "item_id": items.index,
            "label": items["label"].to_numpy().astype(np.int8),
            "repetitions": items["repetitions"].to_numpy(),
            "base_loss_value": base.reindex(items.index).to_numpy(),
            "finetuned_loss_value": ft.reindex(items.index).to_numpy(),
        }
    )
    scores["loss"] = -scores["finetuned_loss_value"]
    scores["ref_loss_diff"] = scores["base_loss_value"] - scores["finetuned_loss_value"]
    scores["base_loss"] = -scores["base_loss_value"]
    ev = cfg.evaluation
    rows = []
    held = scores["label"] == 0
    subsets = {"all": scores["label"] == 1}
    if len(split.repetition_set) > 1:
        for r in split.repetition_set:
            subsets[f"repetitions={r}"] = scores["repetitions"] == r
    for ind in INDICATORS:
        for name, members in subsets.items():
            part = scores[members | held]
            e = evaluate(
                part["label"],
                part[ind],
                n_resamples=ev.bootstrap,
                confidence=ev.confidence,
                fprs=tuple(ev.fpr_targets),
                seed=cfg.seed,
            )
            rows.append({"model": alias, "indicator": ind, "subset": name, **e.as_row()})
    # per kept epoch checkpoint (keep_epoch_checkpoints): how the signal grows with training
    for name, losses in epochs.items():
        value = losses.reindex(scores["item_id"]).to_numpy()
        for ind, score in (("loss", -value), ("ref_loss_diff", scores["base_loss_value"] - value)):
            e = evaluate(
                scores["label"],
                score,
                n_resamples=ev.bootstrap,
                confidence=ev.confidence,
                fprs=tuple(ev.fpr_targets),
                seed=cfg.seed,
            )
            rows.append({"model": alias, "indicator": ind, "subset": name, **e.as_row()})
    metrics = pd.DataFrame(rows)
    bounds = []
    pv = c.privacy
    by_id = scores.set_index("item_id")
    for ind in INDICATORS:
        b = clopper_pearson_bound(
            split,
            by_id[ind],
            delta=pv.delta,
            confidence=pv.confidence,
            threshold=pv.threshold,
            heldout_fraction=pv.heldout_fraction,
            seed=c.seed,
        )
        bounds.append({"indicator": ind, **b.as_dict(), "sentence": b.sentence()})
        if split.draw == "bernoulli":
            k = max(1, int(pv.guess_fraction * len(split.items)))
            b = one_run_bound(
                split, by_id[ind], delta=pv.delta, confidence=pv.confidence, k_pos=k, k_neg=k
            )
            bounds.append({"indicator": ind, **b.as_dict(), "sentence": b.sentence()})
    out = Path(out_dir)
    prov = io.provenance(
        "controlled_audit",
        c.model_dump(mode="json"),
        seed=cfg.seed,
        split_digest=split.digest,
        adapter=str(adapter_dir),
        **loaded.provenance(),
    )
    io.write_table(scores, out / "scores.parquet", prov=prov)
    io.write_table(metrics, out / "metrics.parquet", prov=prov)
    io.write_json(
        {"model": alias, "split_digest": split.digest, "bounds": bounds}, out / "bounds.json"
    )
    io.write_text(summary_markdown(alias, split, metrics, bounds), out / "summary.md")
    exposure_figure(alias, split, metrics, out / "repetitions.png", out / "repetitions.pdf")
    return {"metrics": metrics, "bounds": bounds}


def exposure_figure(
    alias: str, split: ControlledSplit, metrics: pd.DataFrame, *paths: str | Path
) -> None:
    """AUC (with CI) of members seen r times per epoch against all held-out items, for each r."""
    from lalm_audit.render.style import COLORS, new_figure, save

    fig, ax = new_figure(5.2, 3.6)
    reps = list(split.repetition_set)
    for k, ind in enumerate(INDICATORS):
        m = metrics[metrics["indicator"] == ind].set_index("subset")
        # one repetition count: its members are all members
        rows = m.loc[[f"repetitions={r}" if len(reps) > 1 else "all" for r in reps]]
        x = np.arange(len(reps)) + (k - 1) * 0.08  # side by side, so the CIs do not overlap
        err = [rows["auc"] - rows["auc_lo"], rows["auc_hi"] - rows["auc"]]
        ax.errorbar(x, rows["auc"], yerr=err, marker="o", capsize=3, label=ind)
    ax.axhline(0.5, color=COLORS["chance"], lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(reps)), [str(r) for r in reps])
    ax.set_xlabel("times a member was seen per epoch")
    ax.set_ylabel("membership AUC (95% CI)")
    ax.set_ylim(0, 1)
    ax.set_title(f"{alias}: exposure vs membership signal", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    save(fig, *paths)


def summary_markdown(
    alias: str, split: ControlledSplit, metrics: pd.DataFrame, bounds: list[dict[str, Any]]
) -> str:
    """The report section of one controlled audit (numbers straight from the run)."""
    n_mem = int(split.items["label"].sum())
    lines = [
        f"## Controlled audit: {alias}",
        "",
        f"Split {split.digest}: {n_mem} members and {len(split.items) - n_mem} held-out items drawn "
        f"at random ({split.draw}, seed {split.seed}) from pool `{split.pool}`; the model was "
        "LoRA-fine-tuned on the members. Labels are exact, so these AUCs measure the attack's "
        "power on this model, and the base model (which saw none of them) must sit at chance.",
        "",
        "| indicator | subset | AUC [CI] | TPR at FPR (counts) |",
        "|---|---|---|---|",
    ]
    fprs = [f for f in (0.001, 0.01, 0.05) if tpr_column(f) in metrics.columns]
    for row in metrics.to_dict("records"):
        tprs = ", ".join(f"{f:.1%}: {tpr_cell(row, f)}" for f in fprs)
        lines.append(
            f"| {row['indicator']} | {row['subset']} | {row['auc']:.3f} "
            f"[{row['auc_lo']:.3f}, {row['auc_hi']:.3f}] | {tprs} |"
        )
    lines += ["", "Privacy lower bounds (controlled split only):", ""]
    lines += [f"- {b['indicator']}: {b['sentence']}" for b in bounds]
    return "\n".join(lines) + "\n"


def run_controlled_blind(
    cfg: Config, manifest_path: str | Path, out_dir: str | Path, *, results: str | Path = RESULTS
) -> pd.DataFrame:
    """The blind baseline on the controlled labels: with a random draw it must read "at chance".

    Reuses the pool's extracted features (the split's items are pool items)
    and the blind stage's own cross-validation; only the labels differ.
    Writes ``blind.parquet`` (the ``BLIND_METRICS`` contract) and ``blind.md``.
    """
    from lalm_audit.blind import cross_validate
    from lalm_audit.features.table import load_features
    from lalm_audit.schemas import BLIND_METRICS

    c = _controlled(cfg)
    manifest = io.read_table(manifest_path)
    split = ControlledSplit.from_manifest(manifest)
    fs = load_features(
        c.pool, cfg.features.groups, results=results, manifest=manifest[["item_id", "label"]]
    )
    res = cross_validate(
        fs, cfg.blind, cfg.evaluation, seed=cfg.seed, dataset=c.dataset, control=True, explain_top=0
    )
    verdict = res.verdict(cfg.verdicts, what="the drawn members and held-out items")
    out = Path(out_dir)
    prov = io.provenance("controlled_blind", cfg, dataset=c.dataset, split=split.digest)
    io.write_table(res.metrics, out / "blind.parquet", schema=BLIND_METRICS, prov=prov)
    io.write_json({**verdict.as_dict(), "provenance": prov}, out / "blind.verdict.json")
    blind = res.metrics[res.metrics["control"] == "blind"]
    lines = [
        f"## Blind baseline on the controlled split ({split.digest})",
        "",
        "Membership was drawn at random, so no feature of the clips can predict it: the blind "
        "verdict (lalm_audit.verdicts) must not read 'shifted' (it does with probability alpha).",
        "",
        "| group | classifier | AUC [CI] | p (this check) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['group']} | {r['classifier']} | {r['auc']:.3f} [{r['auc_lo']:.3f}, "
        f"{r['auc_hi']:.3f}] | {r['p_perm']:.2g} |"
        for r in blind.to_dict("records")
    ]
    lines += ["", f"**Verdict: {verdict.sentence}.**"]
    if verdict.state == "shifted":
        log.warning(
            "controlled split %s: the blind baseline reads shifted (%s); with a random draw this is "
            "chance (probability alpha) or a bug in the draw", split.digest, verdict.sentence,
        )  # fmt: skip
    reported = blind
    io.write_text("\n".join(lines) + "\n", out / "blind.md")
    return reported
