"""The controlled-audit commands of ``lalm-audit`` (registered into :mod:`lalm_audit.cli`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lalm_audit.config import load_config
from lalm_audit.errors import LalmAuditError
from lalm_audit.layout import Layout

log = logging.getLogger("lalm_audit.cli")


def _paths(cfg, root: Path, alias: str | None = None) -> dict[str, Path]:
    c = cfg.controlled
    if c is None:
        raise LalmAuditError(
            "the config has no 'controlled' section (see README, Controlled audits)"
        )
    lay = Layout.under(root)
    out = {"pool": Path(lay.manifest(c.pool)), "manifest": Path(lay.manifest(c.dataset))}
    if alias is not None:
        out["adapter"] = Path(lay.controlled_adapter(alias))
        out["audit"] = Path(lay.controlled_audit_dir(alias))
    return out


def _aliases(cfg, args: argparse.Namespace) -> list[str]:
    _paths(cfg, Path(args.root))  # a config without a controlled section fails here, clearly
    aliases = args.model or cfg.controlled.models
    if not aliases:
        raise LalmAuditError(
            "no base model to fine-tune: list aliases in controlled.models or pass -m"
        )
    return list(aliases)


def _root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=".", help="working directory holding results/")


def _model(p: argparse.ArgumentParser) -> None:
    _root(p)
    p.add_argument(
        "-m", "--model", nargs="*", help="base model alias(es); default: controlled.models"
    )


def _bounds_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", required=True, help="the controlled split's manifest")
    p.add_argument("--scores", required=True, help="an indicator_scores Parquet of that split")
    p.add_argument("--slice", default="response", help="slice of the score (default: response)")
    p.add_argument("--indicator", default="loss", help="indicator (default: loss)")
    p.add_argument("-o", "--out", help="write the bounds as JSON here")


def _canary_make_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, help="output folder (audio/ and the tables)")
    p.add_argument("--name", default="canaries", help="item-id prefix and dataset name")


def _canary_audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--canaries", required=True, help="the private canaries.parquet")
    p.add_argument("-m", "--model", required=True, help="model alias to audit (config: models)")
    p.add_argument("--adapter", help="a LoRA adapter folder to apply to the model first")
    p.add_argument("-o", "--out", help="write the result as JSON here")


def _config(args: argparse.Namespace):
    return load_config(*args.config)


def register(command) -> None:
    """Add the commands with ``command``, the CLI's registering decorator.

    The CLI passes its own decorator (rather than this module importing it),
    so the commands land in the module that parses, also under
    ``python -m lalm_audit.cli`` where that module is ``__main__``.
    """

    @command(
        "controlled-split",
        "draw the controlled member/held-out split from the pool's manifest (controlled: in the config)",
        args=_root,
    )
    def cmd_controlled_split(args: argparse.Namespace) -> int:
        from lalm_audit.controlled.run import run_controlled_split

        cfg = _config(args)
        p = _paths(cfg, Path(args.root))
        run_controlled_split(cfg, p["pool"], p["manifest"])
        return 0

    @command(
        "controlled-finetune",
        "LoRA-fine-tune each base model on the controlled members (adapter + provenance)",
        args=_model,
    )
    def cmd_controlled_finetune(args: argparse.Namespace) -> int:
        from lalm_audit.controlled.run import run_finetune

        cfg = _config(args)
        for alias in _aliases(cfg, args):
            p = _paths(cfg, Path(args.root), alias)
            run_finetune(cfg, alias, p["manifest"], p["adapter"])
        return 0

    @command(
        "controlled-audit",
        "score the controlled split with each fine-tune and its base; AUCs, per repetitions, epsilon bounds",
        args=_model,
    )
    def cmd_controlled_audit(args: argparse.Namespace) -> int:
        from lalm_audit.controlled.run import run_controlled_audit

        cfg = _config(args)
        for alias in _aliases(cfg, args):
            p = _paths(cfg, Path(args.root), alias)
            run_controlled_audit(cfg, alias, p["manifest"], p["adapter"], p["audit"])
            sys.stdout.write((p["audit"] / "summary.md").read_text())
        return 0

    @command(
        "controlled-bounds",
        "epsilon lower bounds from any indicator's scores on a controlled split (refuses post-hoc labels)",
        args=_bounds_args,
    )
    def cmd_controlled_bounds(args: argparse.Namespace) -> int:
        from lalm_audit import io
        from lalm_audit.controlled.privacy import clopper_pearson_bound, one_run_bound
        from lalm_audit.controlled.split import ControlledSplit

        cfg = _config(args)
        if cfg.controlled is None:
            raise LalmAuditError(
                "the config has no 'controlled' section (see README, Controlled audits)"
            )
        pv = cfg.controlled.privacy
        split = ControlledSplit.from_manifest(io.read_table(args.manifest))
        s = io.read_table(args.scores)
        s = s[(s["slice"] == args.slice) & (s["indicator"] == args.indicator)]
        if s.empty:
            raise LalmAuditError(
                f"{args.scores} has no scores for slice {args.slice!r}, indicator {args.indicator!r}"
            )
        scores = s.set_index("item_id")["score"]
        bounds = [
            clopper_pearson_bound(
                split,
                scores,
                delta=pv.delta,
                confidence=pv.confidence,
                threshold=pv.threshold,
                heldout_fraction=pv.heldout_fraction,
                seed=cfg.controlled.seed,
            )
        ]
        if split.draw == "bernoulli":
            k = max(1, int(pv.guess_fraction * len(split.items)))
            bounds.append(
                one_run_bound(
                    split, scores, delta=pv.delta, confidence=pv.confidence, k_pos=k, k_neg=k
                )
            )
        for b in bounds:
            sys.stdout.write(b.sentence() + "\n")
        if args.out:
            io.write_json([b.as_dict() for b in bounds], args.out)
        return 0

    @command(
        "canaries-make",
        "render canary pairs (controlled.canaries); write members.csv to release and the private manifest",
        args=_canary_make_args,
    )
    def cmd_canaries_make(args: argparse.Namespace) -> int:
        from lalm_audit import io
        from lalm_audit.controlled.canaries import make_canaries, release_table
        from lalm_audit.schemas import MANIFEST

        cfg = _config(args)
        if cfg.controlled is None:
            raise LalmAuditError(
                "the config has no 'controlled' section (see README, Controlled audits)"
            )
        out = Path(args.out)
        manifest = make_canaries(
            cfg.controlled.canaries, out, name=args.name, sample_rate=cfg.audio.sample_rate
        )
        io.write_table(manifest, out / "canaries.parquet", schema=MANIFEST)
        release_table(manifest).to_csv(out / "members.csv", index=False)
        log.info(
            "%d canary pairs in %s: release members.csv, keep canaries.parquet (with the twins) private",
            len(manifest) // 2,
            out,
        )
        return 0

    @command(
        "canaries-audit",
        "was this model trained on my canaries? (member vs twin loss: sign test, AUC, epsilon bound)",
        args=_canary_audit_args,
    )
    def cmd_canaries_audit(args: argparse.Namespace) -> int:
        from lalm_audit import io
        from lalm_audit.controlled.canaries import audit_canaries
        from lalm_audit.controlled.finetune import load_adapter
        from lalm_audit.controlled.run import _load

        cfg = _config(args)
        loaded = _load(cfg, args.model)
        adapter = loaded.adapter
        if args.adapter:
            adapter.model = load_adapter(adapter.model, args.adapter, base_revision=loaded.revision)
            adapter.model = adapter.model.merge_and_unload()
        c = cfg.controlled
        audit = audit_canaries(
            adapter,
            io.read_table(args.canaries),
            prompt=c.finetune.prompt if c else cfg.models[args.model].prompt,
            batch_size=cfg.models[args.model].batch_size,
            privacy=c.privacy if c else None,
        )
        sys.stdout.write(audit.verdict() + "\n" + audit.bound.sentence() + "\n")
        if args.out:
            io.write_json(audit.as_dict(), args.out)
        log.debug("%s", json.dumps(audit.as_dict(), default=str))
        return 0
