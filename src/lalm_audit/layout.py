"""Where every artifact lives: each path of ``results/`` defined once, here.

The Snakemake rules, the CLI and the stage functions all ask a :class:`Layout`
for a path instead of spelling it. Every method takes the values that name the
artifact; a value left out stays a Snakemake wildcard, so the same call gives a
rule its pattern and a stage its file::

    L = Layout()                          # results/ under the working directory
    L.manifest()                          # 'results/manifests/{dataset}.parquet'
    L.manifest("demo-clean")              # 'results/manifests/demo-clean.parquet'
    L.mia("m", "d", "transcript")         # 'results/mia/m/d/transcript/metrics.parquet'
    expand(L.token_stats_shard(), shard=[0, 1], allow_missing=True)   # in a rule

Logs and benchmark files follow the job they belong to (:meth:`Layout.log`,
:meth:`Layout.benchmark`), under ``results/logs/`` and ``results/benchmarks/``.

Light on purpose (the standard library only): the Snakefile imports it at parse time.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: The results folder of a working directory (the workflow's and the CLI's default root).
RESULTS = "results"

#: Per-job keys of the logs and benchmark files: ``results/logs/<key>.log`` and
#: ``results/benchmarks/<key>.tsv``. One entry per rule that writes them.
JOBS: dict[str, str] = {
    "demo_data": "demo_data",
    "demo_model": "demo_model/{demo_model}",
    "manifest": "manifest/{dataset}",
    "manifest_summary": "manifest/summary",
    "features_shard": "features/{dataset}/shards/{group}/{shard}-of-{n_shards}",
    "features_merge": "features/{dataset}/{group}",
    "blind": "blind/{dataset}",
    "blind_heatmap": "blind/heatmap",
    "splits": "splits/{dataset}",
    "perturb": "perturb/{dataset}/{condition}",
    "generate": "scores/{model}/{dataset}/{condition}/generations/shard-{shard}",
    "merge_generations": "scores/{model}/{dataset}/{condition}/generations",
    "score": "scores/{model}/{dataset}/original/token_stats/shard-{shard}",
    "score_perturbed": "scores/{model}/{dataset}/{condition}/token_stats/shard-{shard}",
    "indicators": "indicators/{model}/{dataset}/{condition}/{response}",
    "mia": "mia/{model}/{dataset}/{response}",
    "mia_summary": "mia/summary",
    "disentangle": "disentangle/{model}/{dataset}/{response}",
    "correlation": "correlation/{model}/{dataset}/{response}",
    "roc": "report/roc/{model}/{dataset}/{response}",
    "report_tables": "report/tables",
    "controlled_split": "controlled/split/{dataset}",
    "controlled_blind": "controlled/blind",
    "controlled_finetune": "controlled/finetune/{cmodel}",
    "controlled_audit": "controlled/audit/{cmodel}",
}

BlindFile = Literal[
    "predictions.parquet",
    "metrics.parquet",
    "explanations.parquet",
    "null.parquet",
    "summary.md",
    "verdict.json",
]
SplitFile = Literal[
    ".parquet", ".json", ".verification.parquet", ".rounds.parquet",
    ".before_after.png", ".before_after.pdf",
]  # fmt: skip
MiaFile = Literal["metrics.parquet", "aggregate.parquet", "metrics.md"]
CorrelationFile = Literal[
    "correlation.parquet", "adjusted.parquet", "adjusted.md", "adjusted.tex",
    "scatter.png", "scatter.pdf",
]  # fmt: skip
AuditFile = Literal[
    "scores.parquet", "metrics.parquet", "bounds.json", "summary.md",
    "repetitions.png", "repetitions.pdf",
]  # fmt: skip


class _Keep(dict):
    """Format values: a name without a value stays a ``{wildcard}``."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str, **values: object) -> str:
    given = {k: v for k, v in values.items() if v is not None}
    return string.Formatter().vformat(template, (), _Keep(given))


@dataclass(frozen=True)
class Layout:
    """Every artifact path under ``root`` (default ``results``, relative to the working directory)."""

    root: str = RESULTS

    @classmethod
    def under(cls, workdir: str | Path) -> Layout:
        """The layout of a working directory: its ``results/`` folder."""
        return cls(str(Path(workdir) / RESULTS))

    def _p(self, template: str, **values: object) -> str:
        return str(Path(self.root) / _fill(template, **values))

    # ------------------------------------------------------------------ jobs

    def log(self, job: str, **values: object) -> str:
        """The log file of a job of rule ``job`` (wildcards left in unless given)."""
        return self._p(f"logs/{JOBS[job]}.log", **values)

    def benchmark(self, job: str, **values: object) -> str:
        """The Snakemake benchmark file (time, memory) of a job of rule ``job``."""
        return self._p(f"benchmarks/{JOBS[job]}.tsv", **values)

    # ------------------------------------------------------------------ demo world and models

    def demo_dir(self) -> str:
        """The synthetic demo world: one table per demo dataset and their audio."""
        return self._p("demo")

    def demo_table(self, name: str | None = None) -> str:
        return self._p("demo/{name}.parquet", name=name)

    def demo_audio(self) -> str:
        return self._p("demo/audio")

    def model_dir(self, model: str | None = None) -> str:
        """A model built by the workflow (a demo model): its weights, tokenizer and card."""
        return self._p("models/{model}", model=model)

    # ------------------------------------------------------------------ manifests

    def manifest(self, dataset: str | None = None) -> str:
        return self._p("manifests/{dataset}.parquet", dataset=dataset)

    def manifest_rejected(self, dataset: str | None = None) -> str:
        return self._p("manifests/{dataset}.rejected.parquet", dataset=dataset)

    def manifest_report(self, dataset: str | None = None) -> str:
        """The manifest's summary (counts in, kept, rejected by reason) as JSON."""
        return self._p("manifests/{dataset}.summary.json", dataset=dataset)

    def manifests_summary(self) -> str:
        return self._p("manifests/summary.tsv")

    # ------------------------------------------------------------------ features

    def feature_shard(
        self,
        dataset: str | None = None,
        group: str | None = None,
        shard: int | str | None = None,
        n_shards: int | str | None = None,
    ) -> str:
        return self._p(
            "features/{dataset}/shards/{group}/{shard}-of-{n_shards}.parquet",
            dataset=dataset, group=group, shard=shard, n_shards=n_shards,
        )  # fmt: skip

    def features(self, dataset: str | None = None, group: str | None = None) -> str:
        return self._p("features/{dataset}/{group}.parquet", dataset=dataset, group=group)

    def feature_cache(self) -> str:
        """Features by clip content, shared by datasets that share clips."""
        return self._p("cache/features")

    # ------------------------------------------------------------------ blind baseline

    def blind(self, dataset: str | None = None, file: BlindFile = "metrics.parquet") -> str:
        return self._p("blind/{dataset}/" + file, dataset=dataset)

    def heatmap(self, ext: Literal["parquet", "png", "pdf"] = "parquet") -> str:
        return self._p(f"blind/heatmap.{ext}")

    # ------------------------------------------------------------------ clean splits

    def split(
        self, dataset: str | None = None, method: str | None = None, file: SplitFile = ".parquet"
    ) -> str:
        """A split method's retained items (``.parquet``) or its records (``file`` suffix)."""
        return self._p("splits/{dataset}/{method}" + file, dataset=dataset, method=method)

    def split_status(self, dataset: str | None = None) -> str:
        """One row per split of a dataset: its verdict, and whether MIA may read it."""
        return self._p("splits/{dataset}/status.parquet", dataset=dataset)

    # ------------------------------------------------------------------ perturbations

    def perturbed_manifest(self, dataset: str | None = None, condition: str | None = None) -> str:
        return self._p(
            "perturb/{dataset}/{condition}.parquet", dataset=dataset, condition=condition
        )

    def perturbed_rejected(self, dataset: str | None = None, condition: str | None = None) -> str:
        return self._p(
            "perturb/{dataset}/{condition}.rejected.parquet", dataset=dataset, condition=condition
        )

    def perturbed_audio(self, dataset: str | None = None, condition: str | None = None) -> str:
        return self._p("perturb/{dataset}/{condition}/audio", dataset=dataset, condition=condition)

    def condition_manifest(self, dataset: str | None = None, condition: str | None = None) -> str:
        """The manifest a condition scores: the dataset's own ('original') or a perturbation's."""
        if condition == "original":
            return self.manifest(dataset)
        return self.perturbed_manifest(dataset, condition)

    # ------------------------------------------------------------------ scoring (model passes)

    def scores_dir(
        self, model: str | None = None, dataset: str | None = None, condition: str | None = None
    ) -> str:
        return self._p(
            "scores/{model}/{dataset}/{condition}",
            model=model,
            dataset=dataset,
            condition=condition,
        )

    def generations_shard(
        self,
        model: str | None = None,
        dataset: str | None = None,
        condition: str | None = None,
        shard: int | str | None = None,
        *,
        rejected: bool = False,
    ) -> str:
        """Stage 1 (one shard): the model's own responses, or the items it could not take."""
        ext = ".rejected.parquet" if rejected else ".parquet"
        return self._p(
            "scores/{model}/{dataset}/{condition}/generations/shard-{shard}" + ext,
            model=model, dataset=dataset, condition=condition, shard=shard,
        )  # fmt: skip

    def generations(
        self,
        model: str | None = None,
        dataset: str | None = None,
        condition: str | None = None,
        *,
        rejected: bool = False,
    ) -> str:
        """Stage 1, the shards merged."""
        ext = ".rejected.parquet" if rejected else ".parquet"
        return self._p(
            "scores/{model}/{dataset}/{condition}/generations" + ext,
            model=model, dataset=dataset, condition=condition,
        )  # fmt: skip

    def token_stats_shard(
        self,
        model: str | None = None,
        dataset: str | None = None,
        condition: str | None = None,
        response: str | None = None,
        shard: int | str | None = None,
    ) -> str:
        """Stage 2 (one shard): per-slice token statistics; the shards together are the table."""
        return self._p(
            "scores/{model}/{dataset}/{condition}/{response}/token_stats/shard-{shard}.parquet",
            model=model, dataset=dataset, condition=condition, response=response, shard=shard,
        )  # fmt: skip

    # ------------------------------------------------------------------ indicators, MIA, analyses

    def indicators(
        self,
        model: str | None = None,
        dataset: str | None = None,
        condition: str | None = None,
        response: str | None = None,
    ) -> str:
        return self._p(
            "indicators/{model}/{dataset}/{condition}/{response}.parquet",
            model=model, dataset=dataset, condition=condition, response=response,
        )  # fmt: skip

    def mia(
        self,
        model: str | None = None,
        dataset: str | None = None,
        response: str | None = None,
        file: MiaFile = "metrics.parquet",
    ) -> str:
        return self._p(
            "mia/{model}/{dataset}/{response}/" + file,
            model=model, dataset=dataset, response=response,
        )  # fmt: skip

    def mia_summary(self, ext: Literal["parquet", "md"] = "parquet") -> str:
        return self._p(f"mia/summary.{ext}")

    def disentangle(
        self,
        model: str | None = None,
        dataset: str | None = None,
        response: str | None = None,
        ext: Literal["parquet", "png", "pdf"] = "parquet",
    ) -> str:
        return self._p(
            "disentangle/{model}/{dataset}/{response}." + ext,
            model=model, dataset=dataset, response=response,
        )  # fmt: skip

    def correlation(
        self,
        model: str | None = None,
        dataset: str | None = None,
        response: str | None = None,
        file: CorrelationFile = "adjusted.parquet",
    ) -> str:
        return self._p(
            "correlation/{model}/{dataset}/{response}/" + file,
            model=model, dataset=dataset, response=response,
        )  # fmt: skip

    # ------------------------------------------------------------------ report

    def roc(
        self,
        model: str | None = None,
        dataset: str | None = None,
        response: str | None = None,
        ext: Literal["png", "pdf"] = "png",
    ) -> str:
        return self._p(
            "report/roc/{model}/{dataset}/{response}." + ext,
            model=model, dataset=dataset, response=response,
        )  # fmt: skip

    def report_table(self, name: str | None = None, ext: Literal["md", "tex"] = "md") -> str:
        return self._p("report/tables/{name}." + ext, name=name)

    def report_html(self) -> str:
        return self._p("report/tables/tables.html")

    # ------------------------------------------------------------------ controlled audits

    def controlled_blind(self, ext: Literal["parquet", "md", "verdict.json"] = "parquet") -> str:
        return self._p(f"controlled/blind.{ext}")

    def controlled_adapter(self, cmodel: str | None = None) -> str:
        return self._p("controlled/{cmodel}/adapter", cmodel=cmodel)

    def controlled_audit(
        self, cmodel: str | None = None, file: AuditFile = "metrics.parquet"
    ) -> str:
        return self._p("controlled/{cmodel}/audit/" + file, cmodel=cmodel)
