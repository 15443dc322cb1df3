"""Feature snapshots: a Parquet file that says exactly which features it holds.

The file's metadata (key `custseg`) carries the as-of date, the definition hash, the engine,
the category columns, the feature config and each feature's description and unit, so training,
monitoring and serving can state which features they used.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import InputError
from features import registry
from features.vector import to_pandas as arrow_to_pandas

KEY = b"custseg"


def write_snapshot(features: pd.DataFrame, path: str | Path, **extra) -> dict:
    """Write `features` (as returned by build_features) with its metadata; returns the metadata."""
    meta = snapshot_meta(features, **extra)
    table = pa.Table.from_pandas(features, preserve_index=False)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[KEY] = json.dumps(meta, ensure_ascii=False, default=str).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(schema_meta), path)
    return meta


def snapshot_meta(features: pd.DataFrame, **extra) -> dict:
    """What a snapshot of `features` records: as of, definition hash, engine, categories,
    config, rows and each feature's description and unit."""
    return {
        **features.attrs,
        **extra,
        "rows": len(features),
        "features": [
            {"name": f.name, "description": f.description, "unit": f.unit, "kind": f.kind}
            for f in registry.describe(list(features.columns))
        ],
    }


def read_snapshot(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """(features, metadata); an error naming the file when it is not a custseg snapshot."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    if Path(path).is_dir():
        raise InputError(f"{path}: is a directory; give the snapshot file from `custseg features`")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = (table.schema.metadata or {}).get(KEY)
    if raw is None:
        raise InputError(f"{path}: not a custseg feature snapshot (no '{KEY.decode()}' metadata)")
    df = arrow_to_pandas(table)
    meta = json.loads(raw)
    df.attrs.update(
        {
            k: meta[k]
            for k in ("as_of", "definition_hash", "engine", "categories", "tags")
            if k in meta
        }
    )
    return df, meta


def fingerprint(features: pd.DataFrame) -> str:
    """A short hash of a feature table's columns, types and values: equal tables, equal
    fingerprints (a fit on it can be reused). Floats count to float32 precision: the engines'
    parallel sums differ in the last bits from one build of the same data to the next."""
    import hashlib

    h = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in features.dtypes.items()]).encode())
    floats = features.select_dtypes("floating").columns
    table = features.astype(dict.fromkeys(floats, "float32")) if len(floats) else features
    h.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
