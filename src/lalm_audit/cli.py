"""lalm-audit: every workflow stage as a command, so one failing job can be replayed by hand.

The Snakemake workflow runs the same package functions; these commands exist for
replaying, debugging and scripting single steps.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from lalm_audit import __version__
from lalm_audit.config import Config, config_json_schema, load_config
from lalm_audit.errors import LalmAuditError
from lalm_audit.layout import RESULTS, Layout
from lalm_audit.logs import setup_logging
from lalm_audit.workflow import limit_threads

log = logging.getLogger("lalm_audit.cli")
Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Handler, str, Callable[[argparse.ArgumentParser], None]]] = {}


def command(
    name: str,
    help: str,
    *,
    config: bool = True,
    args: Callable[[argparse.ArgumentParser], None] = lambda p: None,
) -> Callable[[Handler], Handler]:
    """Register a subcommand; ``args`` adds its own options, ``config`` adds --config."""

    def configure(p: argparse.ArgumentParser) -> None:
        if config:
            p.add_argument(
                "-c",
                "--config",
                nargs="+",
                default=["config/demo.yaml"],
                help="config file(s); later files win",
            )
        p.add_argument("-j", "--workers", type=int, default=1, help="parallel workers / threads")
        # Also accepted after the command; SUPPRESS keeps the top-level value when absent.
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        args(p)

    def deco(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, help, configure)
        return fn

    return deco


def _config(args: argparse.Namespace) -> Config:
    return load_config(*args.config)


@command(
    "config-schema",
    "print (or write) the JSON schema of the config, generated from the typed models",
    config=False,
    args=lambda p: p.add_argument("-o", "--out", help="write here instead of stdout"),
)
def cmd_config_schema(args: argparse.Namespace) -> int:
    text = json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


@command(
    "check-config",
    "validate config files and print the resolved config (defaults filled in); also reads every "
    "dataset's table, folder or shards (no audio decoded) to check paths and column mappings",
    args=lambda p: p.add_argument(
        "--no-data", action="store_true", help="check the config only, not the datasets it names"
    ),
)
def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _config(args)
    # The demo's tables are built by the workflow itself, so they cannot be read beforehand.
    if cfg.demo is None and not args.no_data:
        from lalm_audit.manifest import LOADERS

        for name, ds in cfg.datasets.items():
            loaded = LOADERS[ds.loader](name, ds)
            log.info(
                "dataset %r: %d rows read, the column mapping fits (%d rows unparseable; "
                "audio is checked by the manifest stage)",
                name,
                loaded.n_in,
                len(loaded.rejected),
            )
    sys.stdout.write(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
    return 0


@command(
    "demo-data",
    "render the synthetic demo world (audio + one table per demo dataset)",
    args=lambda p: p.add_argument("-o", "--out", default=Layout().demo_dir(), help="output folder"),
)
def cmd_demo_data(args: argparse.Namespace) -> int:
    from lalm_audit.demo import build_world

    cfg = _config(args)
    if cfg.demo is None:
        raise LalmAuditError("the config has no 'demo' section; use config/demo.yaml")
    tables = build_world(cfg.demo, args.out, workers=args.workers)
    for ds, path in tables.items():
        log.info("%s -> %s", ds, path)
    return 0


def _manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", nargs="*", help="dataset(s); default: all configured")
    p.add_argument(
        "-r", "--results", default=RESULTS, help="results folder (manifests go to its manifests/)"
    )


@command(
    "manifest", "build dataset manifests, rejected-items tables and summaries", args=_manifest_args
)
def cmd_manifest(args: argparse.Namespace) -> int:
    from lalm_audit.manifest import run_manifest

    cfg = _config(args)
    names = args.dataset or list(cfg.datasets)
    lay = Layout(args.results)
    for name in names:
        if name not in cfg.datasets:
            raise LalmAuditError(
                f"dataset {name!r} is not in the config (known: {list(cfg.datasets)})"
            )
        run_manifest(
            cfg,
            name,
            lay.manifest(name),
            lay.manifest_rejected(name),
            lay.manifest_report(name),
            workers=args.workers,
        )
    return 0


# --------------------------------------------------------------------------- scoring


def _demo_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", nargs="*", help="demo model alias(es); default: all")
    p.add_argument("--root", default=".", help="working directory holding results/")


@command(
    "demo-model",
    "train the demo models (demo_models in the config) into results/models/<alias>",
    args=_demo_model_args,
)
def cmd_demo_model(args: argparse.Namespace) -> int:
    from lalm_audit.models.demo import run_demo_model

    cfg = _config(args)
    if cfg.demo_models is None:
        raise LalmAuditError("the config has no 'demo_models' section; use config/demo.yaml")
    lay = Layout.under(args.root)
    manifests = {n: Path(lay.manifest(n)) for n in cfg.datasets}
    for alias in args.model or list(cfg.demo_models.models):
        run_demo_model(cfg, alias, manifests, Path(lay.model_dir(alias)))
    return 0


def _stage_args(p: argparse.ArgumentParser, responses: bool) -> None:
    p.add_argument("-m", "--model", required=True, help="model alias (config: models)")
    p.add_argument("-d", "--dataset", nargs="*", help="dataset(s); default: every audit dataset")
    p.add_argument("--condition", default="original", help="input condition (default: original)")
    p.add_argument("--shard", type=int, nargs="*", help="shard(s) to (re)compute; default: all")
    p.add_argument("--force", action="store_true", help="recompute shards whose output exists")
    p.add_argument("--root", default=".", help="working directory holding results/")
    if responses:
        p.add_argument(
            "-r", "--response", nargs="*", help="generated / transcript; default: scoring.responses"
        )


def _run_stage(args: argparse.Namespace, stage: str) -> int:
    from lalm_audit.scoring.run import run_stage_shards

    cfg = _config(args)
    for ds in args.dataset or cfg.audit_datasets():
        written = run_stage_shards(
            cfg,
            stage,  # type: ignore[arg-type]
            args.model,
            ds,
            condition=args.condition,
            responses=getattr(args, "response", None) or cfg.scoring.responses,
            shards=args.shard,
            root=args.root,
            skip_existing=not args.force and args.shard is None,
        )
        for p in written:
            log.info("%s/%s -> %s", args.model, ds, p)
    return 0


# --- blind baseline: features, blind CV, heatmap (the same functions the workflow's jobs call)


def _audit_names(cfg: Config, names: list[str] | None) -> list[str]:
    names = names or cfg.audit_datasets()
    for name in names:
        if name not in cfg.audit_datasets():
            raise LalmAuditError(
                f"dataset {name!r} is not an audit dataset of the config (audit datasets: {cfg.audit_datasets()})"
            )
    return names


def _features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", nargs="*", help="dataset(s); default: every audit dataset")
    p.add_argument("-g", "--group", nargs="*", help="feature group(s); default: features.groups")
    p.add_argument(
        "--shard", type=int, help="extract only this shard (0-based); default: all, then merge"
    )
    p.add_argument(
        "-r", "--results", default=RESULTS, help="results folder (manifests are read from it)"
    )


@command(
    "features",
    "extract blind-baseline features (per dataset, group and shard) and merge shards",
    args=_features_args,
)
def cmd_features(args: argparse.Namespace) -> int:
    from lalm_audit.features import merge_shards, run_features_shard

    cfg = _config(args)
    lay = Layout(args.results)
    for ds in _audit_names(cfg, args.dataset):
        manifest = lay.manifest(ds)
        for group in args.group or cfg.features.groups:
            n = cfg.features.n_shards(ds, group)
            shards = [lay.feature_shard(ds, group, i, n) for i in range(n)]
            todo = range(n) if args.shard is None else [args.shard]
            for i in todo:
                run_features_shard(cfg, ds, group, i, n, manifest, shards[i])
            if args.shard is None:
                merge_shards(cfg, ds, group, shards, manifest, lay.features(ds, group))
    return 0


def _blind_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", nargs="*", help="dataset(s); default: every audit dataset")
    p.add_argument(
        "-r", "--results", default=RESULTS, help="results folder (features are read from it)"
    )


@command(
    "blind",
    "blind classifiers of members vs non-members from features alone (no model)",
    args=_blind_args,
)
def cmd_blind(args: argparse.Namespace) -> int:
    from lalm_audit.blind import run_blind

    cfg = _config(args)
    for ds in _audit_names(cfg, args.dataset):
        run_blind(cfg, ds, results=args.results, workers=args.workers)
    return 0


@command(
    "generate",
    "stage 1: greedy responses of a model to audio + prompt (replays generate jobs)",
    args=lambda p: _stage_args(p, responses=False),
)
def cmd_generate(args: argparse.Namespace) -> int:
    return _run_stage(args, "generate")


@command(
    "score",
    "stage 2: teacher-forced pass and per-token statistics (replays score jobs)",
    args=lambda p: _stage_args(p, responses=True),
)
def cmd_score(args: argparse.Namespace) -> int:
    return _run_stage(args, "score")


@command(
    "heatmap",
    "cross-dataset heatmap: blind AUC between every two groups of items",
    args=_blind_args,
)
def cmd_heatmap(args: argparse.Namespace) -> int:
    from lalm_audit.heatmap import run_heatmap

    cfg = _config(args)
    run_heatmap(cfg, _audit_names(cfg, args.dataset), results=args.results, workers=args.workers)
    return 0


# --- clean splits, indicators, MIA evaluation, perturbations, disentanglement


def _results_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset", nargs="*", help="dataset(s); default: every audit dataset")
    p.add_argument("-r", "--results", default=RESULTS, help="results folder")


@command(
    "splits",
    "clean splits: select, re-verify with a fresh blind CV, verdict (replays splits jobs)",
    args=_results_args,
)
def cmd_splits(args: argparse.Namespace) -> int:
    from lalm_audit.splits import run_splits

    cfg = _config(args)
    for ds in _audit_names(cfg, args.dataset):
        for cs in run_splits(cfg, ds, results=args.results):
            log.info("%s / %s: %s", ds, cs.method, cs.verdict)
    return 0


def _model_results_args(p: argparse.ArgumentParser) -> None:
    _results_args(p)
    p.add_argument("-m", "--model", nargs="*", help="model alias(es); default: every scored model")
    p.add_argument("--condition", default="original", help="input condition (default: original)")
    p.add_argument("--response", nargs="*", help="response(s); default: scoring.responses")


def _each_run(args: argparse.Namespace):
    cfg = _config(args)
    for model in args.model or cfg.scored_models():
        for ds in _audit_names(cfg, args.dataset):
            for response in args.response or cfg.scoring.responses:
                yield cfg, model, ds, response


@command(
    "indicators",
    "membership indicators from stored token statistics (replays indicator jobs)",
    args=_model_results_args,
)
def cmd_indicators(args: argparse.Namespace) -> int:
    from lalm_audit.mia import run_indicators
    from lalm_audit.scoring import paths

    res = Path(args.results)
    for cfg, model, ds, response in _each_run(args):
        root = res.parent
        stats = [
            str(p)
            for p in paths.token_stats_shards(
                model, ds, args.condition, response, cfg.scoring.shards, root
            )
        ]
        ref = cfg.indicators.reference.get(model)
        ref_stats = (
            [
                str(p)
                for p in paths.token_stats_shards(
                    ref, ds, args.condition, response, cfg.scoring.shards, root
                )
            ]
            if ref
            else None
        )
        out = Layout(str(res)).indicators(model, ds, args.condition, response)
        run_indicators(
            cfg,
            model,
            stats,
            str(paths.manifest_path(ds, args.condition, root)),
            str(out),
            ref_stats,
        )
        log.info("%s -> %s", model, out)
    return 0


@command(
    "mia",
    "MIA evaluation per split: metrics, aggregated attack, dataset test (replays mia jobs)",
    args=_model_results_args,
)
def cmd_mia(args: argparse.Namespace) -> int:
    from lalm_audit.mia import run_mia

    lay = Layout(args.results)
    for cfg, model, ds, response in _each_run(args):
        at = {"model": model, "dataset": ds, "response": response}
        run_mia(cfg, lay.indicators(model, ds, "original", response), _splits_of(cfg, lay, ds),
                lay.mia(**at), lay.mia(**at, file="aggregate.parquet"), lay.mia(**at, file="metrics.md"),
                status_path=lay.split_status(ds))  # fmt: skip
        log.info("%s / %s / %s -> %s", model, ds, response, lay.mia(**at, file="metrics.md"))
    return 0


def _splits_of(cfg: Config, lay: Layout, ds: str) -> dict[str, str | None]:
    return {"full": None, **{m: lay.split(ds, m) for m in cfg.splits.methods}}


@command(
    "correlation",
    "indicators vs blind artifacts: correlation, confound-adjusted AUC, verdicts (replays correlation jobs)",
    args=_model_results_args,
)
def cmd_correlation(args: argparse.Namespace) -> int:
    from lalm_audit.correlation import run_correlation

    lay = Layout(args.results)
    for cfg, model, ds, response in _each_run(args):
        at = {"model": model, "dataset": ds, "response": response}
        _, adj = run_correlation(
            cfg, ds, lay.indicators(model, ds, "original", response),
            lay.mia(**at, file="aggregate.parquet"), _splits_of(cfg, lay, ds),
            correlation_out=lay.correlation(**at, file="correlation.parquet"),
            adjusted_out=lay.correlation(**at, file="adjusted.parquet"),
            markdown_out=lay.correlation(**at, file="adjusted.md"),
            latex_out=lay.correlation(**at, file="adjusted.tex"),
            figure_png=lay.correlation(**at, file="scatter.png"),
            figure_pdf=lay.correlation(**at, file="scatter.pdf"), results=args.results,
            status_path=lay.split_status(ds), title=f"{model} on {ds} ({response})",
        )  # fmt: skip
        for _, r in adj.iterrows():
            log.info("%s / %s / %s / %s %s/%s: %s", model, ds, response, r["split"], r["slice"], r["indicator"],
                     r["verdict"])  # fmt: skip
    return 0


@command(
    "report",
    "every table (Markdown, LaTeX, HTML) from the results already written (replays report_tables); "
    "for the HTML report with figures run `snakemake --report results/report.html`",
    args=_results_args,
)
def cmd_report(args: argparse.Namespace) -> int:
    from lalm_audit.report.build import run_report_tables

    lay = Layout(args.results)
    every = Layout(glob.escape(args.results))  # the same paths with "*" for every name

    def found(pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    summary = Path(lay.mia_summary("parquet"))
    tables = Path(lay.report_html()).parent
    run_report_tables(
        tables,
        blind_metrics=found(every.blind("*", "metrics.parquet")),
        split_status=found(every.split_status("*")),
        mia_summary=str(summary) if summary.exists() else None,
        adjusted=found(every.correlation("*", "*", "*", "adjusted.parquet")),
        disentangle=found(every.disentangle("*", "*", "*", "parquet")),
    )
    log.info("tables -> %s", tables)
    return 0


def _readme_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-r", "--results", default=RESULTS, help="results folder of a demo run")
    p.add_argument(
        "--readme", default="README.md", help="the README with <!-- demo:NAME --> blocks"
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="rewrite the blocks and copy the figures into docs/img (default: check the blocks)",
    )
    p.add_argument("--tol", type=float, default=0.05, help="tolerance on numbers when checking")


@command(
    "readme",
    "check (or --write) the README's demo blocks against a demo run's results",
    config=False,
    args=_readme_args,
)
def cmd_readme(args: argparse.Namespace) -> int:
    from lalm_audit.report import readme

    if args.write:
        Path(args.readme).write_text(readme.sync(args.readme, args.results))
        figs = readme.sync_figures(args.results, Path(args.readme).parent / "docs" / "img")
        log.info(
            "%s: demo blocks and %d figures rewritten from %s", args.readme, len(figs), args.results
        )
        return 0
    cmp = readme.compare(args.readme, args.results, tol=args.tol)
    if not cmp.strict:
        log.warning(
            "the run is from another kind of machine (%s) than the README's (%s): "
            "checking the tables' shape only",
            cmp.run_machine,
            cmp.readme_machine,
        )
    for d in cmp.diffs:
        log.error("README block differs from the run: %s", d)
    return 1 if cmp.diffs else 0


def _perturb_args(p: argparse.ArgumentParser) -> None:
    _results_args(p)
    p.add_argument("--condition", nargs="*", help="condition(s); default: every configured one")


@command(
    "perturb",
    "derived items with perturbed audio for modality disentanglement (replays perturb jobs)",
    args=_perturb_args,
)
def cmd_perturb(args: argparse.Namespace) -> int:
    from lalm_audit.perturb import run_perturb

    cfg = _config(args)
    lay = Layout(args.results)
    for ds in args.dataset or cfg.perturbed_datasets():
        for cond in args.condition or list(cfg.perturb.conditions):
            run_perturb(cfg, ds, cond, lay.manifest(ds), lay.perturbed_manifest(ds, cond),
                        lay.perturbed_rejected(ds, cond), lay.perturbed_audio(ds, cond))  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    if "controlled-split" not in COMMANDS:
        from lalm_audit.controlled.cli import register

        register(command)

    p = argparse.ArgumentParser(prog="lalm-audit", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"lalm-audit {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show the full traceback (default: one message naming the problem and fix)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_fn, help_, configure) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_, description=help_))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(level=logging.DEBUG if args.verbose or args.debug else logging.INFO)
    limit_threads(max(1, args.workers))
    try:
        return COMMANDS[args.command][0](args)
    except LalmAuditError as exc:
        if args.debug:
            raise
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:  # a user sees one line; --debug shows the rest
        if args.debug:
            raise
        log.error(
            "%s failed: %s: %s (a bug or an unexpected input; rerun with --debug for the "
            "traceback and report it)",
            args.command,
            type(exc).__name__,
            exc,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
