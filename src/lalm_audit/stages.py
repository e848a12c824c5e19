"""The stage contract: for every stage, the config it reads (down to the key) and the code it runs.

One declaration per stage gives three things that used to be kept in step by hand:

- the Snakemake rule's ``params`` (its rerun triggers): :func:`stage_params` is the declared
  config subset plus the source hash of the stage's code, so a job reruns when, and only when,
  something it reads changes;
- the provenance of its artifacts (:func:`lalm_audit.io.provenance` hashes the same subset and
  records the same code hash, plus the git commit when there is one);
- a guard: :func:`guard` wraps the typed config in a view that raises on any read the stage did
  not declare, so a declaration cannot silently fall behind the code (tests run every
  model-free stage under it; ``LALM_AUDIT_CONFIG_GUARD=1`` turns it on in workflow jobs).

A read is a dotted path into :class:`lalm_audit.config.Config`: ``blind.folds``,
``datasets.{dataset}`` (formatted with the job's wildcards), ``datasets.*.role`` (``*``: every
key of a mapping). Declaring a section (``evaluation``) declares every key under it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lalm_audit.errors import ConfigError, LalmAuditError

PACKAGE = "lalm_audit"

#: The contract layer every stage shares. Its changes (a new config key, a new column, atomic
#: writes) are not a stage's results changing; they are recorded by the package version and the
#: git commit in every provenance record, and a user who wants them applied forces a rerun.
INFRASTRUCTURE = frozenset(
    f"{PACKAGE}.{m}" for m in ("config", "errors", "io", "logs", "schemas", "stages", "workflow")
) | {PACKAGE}

#: The blind classifiers' settings: what every stage that refits a blind CV reads (all of
#: ``blind`` but ``blind.heatmap``, so a heatmap setting reruns the heatmap alone).
_BLIND = tuple(
    f"blind.{k}"
    for k in (
        "folds", "classifiers", "combined", "gbt_groups", "group_same_text", "group_by_speaker",
        "logistic", "gbt", "tfidf",
        "permutation_control", "top_features", "importance_repeats", "importance_max_items",
    )
)  # fmt: skip


@dataclass(frozen=True)
class Stage:
    """One stage: the rules that run it, the config it reads, the package modules it runs."""

    name: str
    rules: tuple[str, ...]
    reads: tuple[str, ...]
    modules: tuple[str, ...]
    #: Reads that depend on the config itself (e.g. the seed only when a dataset is subsampled).
    extra_reads: Callable[[Any, Mapping[str, str]], list[str]] | None = field(
        default=None, compare=False
    )
    #: Other names its provenance records use.
    aliases: tuple[str, ...] = ()

    def declared(self, cfg: Any, wildcards: Mapping[str, str] | None = None) -> list[str]:
        """The declared reads of one job, placeholders filled from its wildcards."""
        wc = dict(wildcards or {})
        reads = list(self.reads)
        if self.extra_reads is not None:
            reads += self.extra_reads(_typed(cfg), wc)
        out = []
        for r in reads:
            try:
                out.append(r.format(**wc))
            except KeyError as err:
                raise ConfigError(
                    f"stage {self.name!r} reads {r!r}, which needs the wildcard {err.args[0]!r}; "
                    "pass it (e.g. dataset=...) when asking for this stage's config"
                ) from None
        return sorted(set(out))


def _manifest_seed(cfg: Any, wc: Mapping[str, str]) -> list[str]:
    # The seed only picks the balanced subsample; an unsampled manifest must not depend on it,
    # or a new seed would rerun every model pass downstream of the manifests.
    ds = cfg.datasets.get(wc.get("dataset", ""))
    return ["seed"] if ds is not None and ds.max_items_per_class is not None else []


def demo_training_datasets(cfg: Any, alias: str) -> list[str]:
    """Datasets a demo model trains on: every train pool, plus the audit datasets (their members)
    when its recipe trains on members. A dataset added to the demo config is therefore trained on
    by demo-target (its members must be members) and never by demo-control."""
    spec = cfg.demo_models.models[alias]
    return [n for n, d in cfg.datasets.items() if d.role == "train_pool" or spec.train_members]


def _demo_model_reads(cfg: Any, wc: Mapping[str, str]) -> list[str]:
    return [f"datasets.{d}.role" for d in demo_training_datasets(cfg, wc["demo_model"])]


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage("demo_data", ("demo_data",), ("demo",), (f"{PACKAGE}.demo",), aliases=("demo-data",)),
        Stage(
            "manifest",
            ("manifest",),
            ("audio", "datasets.{dataset}"),
            (f"{PACKAGE}.manifest",),
            extra_reads=_manifest_seed,
        ),
        Stage("manifest_summary", ("manifest_summary",), (), (f"{PACKAGE}.manifest",)),
        Stage(
            "features",
            ("features_shard", "features_merge"),
            ("audio", "features.{group}", "features.max_failed_fraction"),
            (f"{PACKAGE}.features",),
        ),
        Stage(
            "blind",
            ("blind",),
            (
                "seed",
                "evaluation",
                "verdicts",
                "features.groups",
                "datasets.{dataset}.role",
                *_BLIND,
            ),
            (f"{PACKAGE}.blind",),
        ),
        Stage(
            "heatmap",
            ("blind_heatmap",),
            (
                "seed",
                "evaluation",
                "features.groups",
                "datasets.*.role",
                "blind.heatmap",
                "blind.group_same_text",
                "blind.logistic",
                "blind.gbt",
                "blind.tfidf",
            ),
            (f"{PACKAGE}.heatmap",),
            aliases=("blind-heatmap",),
        ),
        Stage(
            "splits",
            ("splits",),
            ("seed", "evaluation", "verdicts", "features.groups", "splits", *_BLIND),
            (f"{PACKAGE}.splits",),
        ),
        Stage(
            "perturb",
            ("perturb",),
            ("seed", "audio.sample_rate", "perturb.conditions.{condition}"),
            (f"{PACKAGE}.perturb",),
        ),
        Stage(
            "demo_model",
            ("demo_model",),
            ("demo_models", "models.{demo_model}"),
            (f"{PACKAGE}.models.demo",),
            extra_reads=_demo_model_reads,
        ),
        Stage(
            "generate",
            ("generate", "merge_generations"),
            ("models.{model}", "scoring.shards", "scoring.local_files_only"),
            (f"{PACKAGE}.scoring.run", f"{PACKAGE}.scoring.merge"),
        ),
        Stage(
            "score",
            ("score", "score_perturbed"),
            (
                "models.{model}",
                "scoring.shards",
                "scoring.chunk_positions",
                "scoring.compile_stats",
                "scoring.local_files_only",
            ),
            # the responses a job scores are its rule's own params (and its outputs)
            (f"{PACKAGE}.scoring.run",),
        ),
        Stage(
            "indicators",
            ("indicators",),
            (
                "indicators.families",
                "indicators.k_grid",
                "indicators.slices",
                "indicators.reference.{model}",
            ),
            (f"{PACKAGE}.mia",),
        ),
        Stage(
            "mia",
            ("mia",),
            ("seed", "evaluation", "verdicts", "indicators.aggregate", "splits.methods"),
            (f"{PACKAGE}.mia",),
        ),
        Stage(
            "mia_summary",
            ("mia_summary",),
            ("verdicts.alpha", "verdicts.aggregate_shuffles"),
            (f"{PACKAGE}.mia", f"{PACKAGE}.verdicts"),
        ),
        Stage(
            "correlation",
            ("correlation",),
            (
                "seed",
                "evaluation",
                "verdicts",
                "analysis",
                "features.groups",
                "splits.methods",
                *_BLIND,
            ),
            (f"{PACKAGE}.correlation",),
        ),
        Stage(
            "disentangle",
            ("disentangle",),
            ("seed", "evaluation", "analysis", "perturb.conditions", "splits.methods"),
            (f"{PACKAGE}.disentangle",),
        ),
        Stage(
            "roc", ("roc",), ("analysis.targets", "splits.methods"), (f"{PACKAGE}.report.build",)
        ),
        Stage("report_tables", ("report_tables",), (), (f"{PACKAGE}.report.build",)),
        Stage(
            "controlled_split",
            ("controlled_split",),
            (
                "controlled.pool",
                "controlled.dataset",
                "controlled.seed",
                "controlled.draw",
                "controlled.stratify_by_speaker",
                "controlled.use_items",
                "controlled.repetitions",
            ),
            (f"{PACKAGE}.controlled.split", f"{PACKAGE}.controlled.run"),
        ),
        Stage(
            "controlled_blind",
            ("controlled_blind",),
            (
                "seed",
                "evaluation",
                "verdicts",
                "features.groups",
                "controlled.pool",
                "controlled.dataset",
                *_BLIND,
            ),
            (f"{PACKAGE}.controlled.run", f"{PACKAGE}.blind"),
        ),
        Stage(
            "controlled_finetune",
            ("controlled_finetune",),
            ("controlled.finetune", "models.{cmodel}"),
            (f"{PACKAGE}.controlled.finetune", f"{PACKAGE}.controlled.run"),
        ),
        Stage(
            "controlled_audit",
            ("controlled_audit",),
            ("controlled.privacy", "controlled.finetune.prompt", "evaluation", "models.{cmodel}"),
            (f"{PACKAGE}.controlled.privacy", f"{PACKAGE}.controlled.run"),
        ),
    )
}

#: Snakemake rule -> the stage it runs.
RULE_STAGE: dict[str, str] = {rule: s.name for s in STAGES.values() for rule in s.rules}


def get(name: str) -> Stage:
    """A stage by name, rule name or provenance alias."""
    if name in STAGES:
        return STAGES[name]
    if name in RULE_STAGE:
        return STAGES[RULE_STAGE[name]]
    for s in STAGES.values():
        if name in s.aliases:
            return s
    raise LalmAuditError(
        f"no stage or rule named {name!r} in the stage contract (lalm_audit.stages.STAGES); "
        f"known: {sorted(STAGES)}"
    )


def find(name: str) -> Stage | None:
    try:
        return get(name)
    except LalmAuditError:
        return None


# --------------------------------------------------------------------------- config subsets


def _raw(cfg: Any) -> Any:
    return cfg._root if isinstance(cfg, ConfigView) else cfg


def _typed(cfg: Any) -> Any:
    """The typed config behind ``cfg`` (a Config, a guarded view of one, or a raw mapping)."""
    from lalm_audit.config import parse_config

    cfg = _raw(cfg)
    return parse_config(dict(cfg)) if isinstance(cfg, Mapping) else cfg


def _resolve(data: Any, parts: list[str], prefix: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield prefix, data
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(data, dict):
            for k in sorted(data):
                yield from _resolve(data[k], rest, f"{prefix}.{k}" if prefix else k)
        return
    path = f"{prefix}.{head}" if prefix else head
    if isinstance(data, dict) and head in data:
        yield from _resolve(data[head], rest, path)
    else:  # an absent optional entry (e.g. no reference model): its absence is the value
        yield path, None


def config_subset(cfg: Any, stage: str, **wildcards: str) -> dict[str, Any]:
    """The config one job of ``stage`` reads: declared path -> value, sorted, with every default
    filled in (so spelling out a default in a config file reruns nothing)."""
    typed = _typed(cfg)
    data = typed.model_dump(mode="json")
    out: dict[str, Any] = {}
    for read in get(stage).declared(typed, wildcards):
        out.update(_resolve(data, read.split("."), ""))
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- code identity


_ROOT = Path(__file__).resolve().parent


def _module_file(module: str) -> Path | None:
    """The source file of a package module, found without importing it (no torch at DAG time)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = _ROOT.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Package modules ``module`` imports, function-local imports included (they run too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if _module_file(sub) is not None else mod)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
    return found


@functools.cache
def code_modules(stage: str) -> tuple[str, ...]:
    """Every package module a stage runs: its declared modules and what they import, transitively
    (the shared contract layer, :data:`INFRASTRUCTURE`, excluded)."""
    seen: set[str] = set()
    todo = list(get(stage).modules)
    while todo:
        mod = todo.pop()
        if mod in seen or mod in INFRASTRUCTURE:
            continue
        path = _module_file(mod)
        if path is None:
            raise LalmAuditError(f"stage {stage!r} declares module {mod!r}, which cannot be found")
        seen.add(mod)
        todo += sorted(_imports(mod, path) - seen)
    return tuple(sorted(seen))


@functools.cache
def code_hash(stage: str) -> str:
    """Hash of the code a stage runs. Hashes each module's syntax tree, not its bytes, so editing
    a comment or reformatting reruns nothing, while any change to what runs does."""
    h = hashlib.sha256()
    for mod in code_modules(stage):
        path = _module_file(mod)
        assert path is not None  # code_modules checked it
        h.update(mod.encode() + b"\0")
        h.update(ast.dump(ast.parse(path.read_text(encoding="utf-8"))).encode() + b"\0")
    return h.hexdigest()[:16]


@functools.cache
def git_commit() -> str | None:
    """The commit of the checkout the package runs from (``+dirty`` with local changes); None
    for an installed package."""
    src = _ROOT
    try:
        run = functools.partial(
            subprocess.run, cwd=src, capture_output=True, text=True, timeout=10, check=True
        )
        top = Path(run(["git", "rev-parse", "--show-toplevel"]).stdout.strip())
        if (top / "src" / PACKAGE).resolve() != src:
            return None  # some other repository holds an installed copy
        commit = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--", str(src)]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def stage_params(cfg: Any, stage: str, **wildcards: str) -> dict[str, Any]:
    """A job's rerun triggers: the declared config subset and the hash of the stage's code."""
    return {"config": config_subset(cfg, stage, **wildcards), "code": code_hash(stage)}


def code_identity(stage: str) -> dict[str, Any]:
    """What provenance records about the code that made an artifact."""
    return {"code_hash": code_hash(stage), "git_commit": git_commit()}


# --------------------------------------------------------------------------- the guard


class UndeclaredConfigRead(ConfigError):
    """A stage read a config key its contract does not declare."""


def _covered(path: str, declared: list[str]) -> str:
    """'full' when a declared read covers ``path``; 'part' when ``path`` leads to one; else ''."""
    parts = path.split(".")
    verdict = ""
    for d in declared:
        dp = d.split(".")
        n = min(len(parts), len(dp))
        if all(a == b or b == "*" for a, b in zip(parts[:n], dp[:n], strict=True)):
            if len(dp) <= len(parts):
                return "full"
            verdict = "part"
    return verdict


class ConfigView:
    """A read-only view of the typed config that raises on any read a stage did not declare.

    Fully declared values are returned as they are (typed models, lists); a value only partly
    declared (``cfg.blind`` when only ``blind.folds`` is) comes back as another view. Methods
    of the config (``audit_datasets()``) run against the view, so what they read is checked.
    """

    __slots__ = ("_declared", "_node", "_path", "_root", "_stage")

    def __init__(self, root: Any, node: Any, path: str, declared: list[str], stage: str):
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_declared", declared)
        object.__setattr__(self, "_stage", stage)

    def _child(self, key: str, value: Any) -> Any:
        path = f"{self._path}.{key}" if self._path else key
        cover = _covered(path, self._declared)
        if cover == "full":
            return value
        if cover == "part" and isinstance(value, BaseModel | Mapping):
            return ConfigView(self._root, value, path, self._declared, self._stage)
        raise UndeclaredConfigRead(
            f"stage {self._stage!r} read config key {path!r}, which its contract does not declare: "
            f"add it to the stage's reads in lalm_audit/stages.py (declared: {self._declared})"
        )

    def __getattr__(self, name: str) -> Any:
        node = self._node
        if isinstance(node, BaseModel):
            if name in type(node).model_fields:
                return self._child(name, getattr(node, name))
            attr = getattr(type(node), name, None)
            if callable(attr) and not name.startswith("model_"):
                return functools.partial(attr, self)  # the method reads through the guard
            if attr is None:  # no such setting at all: what getattr(cfg, name, default) expects
                raise AttributeError(f"{type(node).__name__} has no attribute {name!r}")
        raise UndeclaredConfigRead(
            f"stage {self._stage!r} used {self._path + '.' if self._path else ''}{name} of the "
            f"config, which reads more than its contract declares ({self._declared})"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("the config is read-only")

    # mapping protocol (datasets, models, ...)
    def __getitem__(self, key: str) -> Any:
        return self._child(key, self._node[key])

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._node else default

    def __contains__(self, key: object) -> bool:
        return key in self._node

    def keys(self) -> Any:
        return self._node.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((k, self[k]) for k in self._node)

    def values(self) -> Iterator[Any]:
        return (self[k] for k in self._node)

    def __repr__(self) -> str:
        return f"ConfigView({self._stage!r}, {self._path or '<root>'!r})"


def guard(cfg: Any, stage: str, **wildcards: str) -> Any:
    """``cfg`` as seen by one job of ``stage``: any undeclared read raises."""
    raw = _raw(cfg)
    return ConfigView(raw, raw, "", get(stage).declared(raw, wildcards), get(stage).name)


def guard_enabled() -> bool:
    return os.environ.get("LALM_AUDIT_CONFIG_GUARD", "") not in ("", "0")
