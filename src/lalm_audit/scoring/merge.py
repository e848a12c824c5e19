"""Join a stage's shard tables into the artifact later stages read (pandas only, no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lalm_audit import io
from lalm_audit.schemas import ALL_SCHEMAS, TableSchema


def merge_shards(
    inputs: Sequence[str | Path], out: str | Path, schema: TableSchema | str
) -> pd.DataFrame:
    """Concatenate a stage's shard tables (sorted by key) into one artifact with their provenance."""
    schema = io_schema(schema)
    frames = [io.read_table(p) for p in inputs]
    nonempty = [f for f in frames if len(f)]
    df = pd.concat(nonempty, ignore_index=True) if nonempty else frames[0]
    if schema.key:
        df = df.sort_values(list(schema.key)).reset_index(drop=True)
    prov = {k: v for k, v in io.read_provenance(inputs[0]).items() if k != "shard"}
    prov["merged_shards"] = len(inputs)
    io.write_table(df, out, schema=schema, prov=prov)
    return df


def io_schema(schema: TableSchema | str) -> TableSchema:
    return ALL_SCHEMAS[schema] if isinstance(schema, str) else schema
