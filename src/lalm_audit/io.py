"""The only code that reads and writes artifacts.

Writes are atomic (a temporary file renamed into place), so a killed job never
leaves a half-written Parquet file that a rerun would trust. Every Parquet file
carries its provenance in the Arrow schema metadata under
``lalm_audit.provenance``: the package version, the hash of the config its
stage declares (``lalm_audit.stages``), the seed when the stage reads it, and
the code that made it (the source hash of the stage's modules and the git
commit when the package runs from a checkout) and the machine it ran on
(:func:`machine_identity`: floating-point results of torch and BLAS depend on
the CPU). Nothing time-dependent is stored, so equal inputs on one machine give
byte-identical files.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lalm_audit import __version__, stages
from lalm_audit.config import Config, stable_hash
from lalm_audit.errors import LalmAuditError
from lalm_audit.schemas import TableSchema

PROVENANCE_KEY = b"lalm_audit.provenance"


@functools.cache
def machine_identity() -> str:
    """The CPU, architecture and numeric libraries an artifact was computed with.

    The same code and config give byte-identical outputs on one kind of machine but not across
    CPUs (torch and BLAS pick other kernels, so trained demo models and greedy decodes differ);
    this string says which kind made an artifact, so that a comparison knows whether exact
    agreement is to be expected. Versions come from the installed metadata: nothing is imported.
    """
    from importlib import metadata

    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                key, _, value = ln.partition(":")
                if not ln.strip():
                    break  # the first processor's block describes them all
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    # a virtual machine may name only the vendor ("AMD EPYC"): the family, model and stepping
    # and the vector extensions torch dispatches on tell CPU generations apart
    cpu = info.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in info:
        cpu += f" (family {info['cpu family']}, model {info.get('model', '?')}"
        cpu += f", stepping {info.get('stepping', '?')})"
    simd = [f for f in info.get("flags", "").split() if f.startswith(("avx", "amx"))]
    libs = [f"{os.cpu_count()} CPUs", platform.machine()]
    if simd:
        libs.append(" ".join(sorted(simd)))
    for pkg in ("torch", "numpy", "scikit-learn"):
        try:
            libs.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join([cpu, *libs])


def provenance(
    stage: str, params: Any = None, *, seed: int | None = None, **extra: Any
) -> dict[str, Any]:
    """Provenance record for an artifact: what made it, with which settings and which code.

    Pass the whole config as ``params`` for a stage of the contract: the hash is then taken over
    exactly the keys the stage declares (the same subset its rule reruns on), placeholders such as
    ``{dataset}`` filled from ``extra``, and the seed recorded when the stage reads it. Any other
    ``params`` are hashed as given.
    """
    contract = stages.find(stage)
    rec: dict[str, Any] = {"lalm_audit_version": __version__, "stage": stage}
    if isinstance(params, Config | stages.ConfigView):
        if contract is None:
            raise ValueError(
                f"stage {stage!r} has no contract in lalm_audit.stages; pass its params"
            )
        subset = stages.config_subset(
            params, contract.name, **{k: str(v) for k, v in extra.items()}
        )
        rec["config_hash"] = stable_hash(subset)
        if "seed" in subset:
            rec["seed"] = subset["seed"]
    else:
        rec["config_hash"] = stable_hash(params) if params is not None else None
    if seed is not None:
        rec["seed"] = seed
    if contract is not None:
        rec.update(stages.code_identity(contract.name))
    rec["machine"] = machine_identity()
    rec.update(extra)
    return rec


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table(
    df: pd.DataFrame,
    path: str | Path,
    *,
    schema: TableSchema | None = None,
    prov: dict[str, Any] | None = None,
) -> None:
    """Write a frame as Parquet (checked against ``schema`` when given), with provenance."""
    if schema is not None:
        schema.check(df)
        table = pa.Table.from_pandas(df, schema=schema.arrow_schema(df), preserve_index=False)
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.pop(b"pandas", None)  # pandas' own block records index/dtype details we do not round-trip
    meta[PROVENANCE_KEY] = json.dumps(prov or {}, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet artifact into pandas (string columns as Python objects)."""
    table = pq.read_table(path, columns=columns)
    return table.to_pandas(types_mapper=None)


def read_tables(
    paths: str | Path | list[str] | list[Path], columns: list[str] | None = None
) -> pd.DataFrame:
    """One frame from a file or from the shards of an artifact (concatenated in the given order)."""
    if isinstance(paths, str | Path):
        return read_table(paths, columns)
    frames = [read_table(p, columns) for p in paths]
    if not frames:
        raise ValueError("no files to read")
    return pd.concat(frames, ignore_index=True)


def table_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet artifact (reads the footer only)."""
    return list(pq.read_schema(path).names)


def read_provenance(path: str | Path) -> dict[str, Any]:
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}


#: What names the run an artifact belongs to; carried from the token statistics (which record
#: it) to every table computed from them, so no stage parses a folder name back.
IDENTITY = ("model", "model_id", "model_revision", "dataset", "condition", "response")


def source_identity(path: str | Path) -> dict[str, Any]:
    """The identity fields (:data:`IDENTITY`) in an artifact's provenance, those it records."""
    src = read_provenance(path)
    return {k: src[k] for k in IDENTITY if k in src}


def identity_of(path: str | Path, *keys: str) -> tuple[str, ...]:
    """The values of ``keys`` (e.g. model, dataset, response) an artifact's provenance records.

    Raises ``LalmAuditError`` naming the file when one is missing: a table written before
    artifacts carried their identity, or by hand.
    """
    rec = read_provenance(path)
    missing = [k for k in keys if not rec.get(k)]
    if missing:
        raise LalmAuditError(
            f"{path}: its provenance names no {', '.join(missing)} (written by an older "
            "lalm-audit, or not by a stage); rerun the stage that writes it"
        )
    return tuple(str(rec[k]) for k in keys)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n",
            encoding="utf-8",
        )


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
