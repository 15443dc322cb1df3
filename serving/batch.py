"""Batch scoring: every customer of a feature snapshot (or of a transaction log, featurised
first) scored by the served champions, written as Parquet parts.

    score_parquet("features.parquet", "out/")               # DuckDB streams the snapshot
    score_parquet("transactions.csv", "out/", as_of=date(2026, 6, 30))
    score_parquet("features/", "out/", engine="spark")      # the champions run in Spark

The answers are the service's (`ModelSet.score`, rendered by `Scores.to_arrow`): the same
fields under the same names, one row per customer. The input is read in chunks of
`chunk_rows` customers (DuckDB or Polars record batches; Spark's Arrow batches per partition),
each scored and written as it comes, so memory is bounded by a chunk, not by the customers.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import catalog
from core.errors import CustsegError, InputError
from core.progress import bar, note, stage
from features import registry
from features.engines import ENGINES
from serving.models import ModelSet, load_champions
from serving.scoring import output_schema

DEFAULT_CHUNK_ROWS = 100_000  # customers per chunk: ~60 features x 8 bytes = ~50 MB a chunk
LOG_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")  # a transaction log, never a snapshot
LOG_COLUMNS = ("order_date", "amount")  # a Parquet file with these is a log, not features


def score_parquet(
    source: str | Path,
    out_dir: str | Path,
    *,
    engine: str = "duckdb",
    tracking_uri: str | None = None,
    as_of: date | None = None,
    customers: str | Path | None = None,
    mapping: dict | None = None,
    cleaned: bool = False,
    csv: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    models: ModelSet | None = None,
) -> dict:
    """Score every customer of `source` with the served champions into `out_dir`; returns a
    summary (customers, parts, as-of date, engine, champion versions, paths, seconds).

    `source`: a feature snapshot (a Parquet file or a folder of parts, as `custseg features`
    writes them), or a transaction log (CSV, Excel or Parquet, with `customers` and the
    column `mapping` as `custseg features` takes them; `cleaned`: clean Parquet tables the
    engine reads itself), whose features are built first as of `as_of` (default: the last
    order date) on `engine` with the champions' category columns, and written beside the
    scores (features.parquet). For a snapshot the as-of date is its own.

    Writes `out_dir`/scores/part-*.parquet (+ scores.csv with `csv`) and score.json; a
    failed run leaves an earlier run's outputs as they were. `models`: an already loaded
    model set (default: the champions of `tracking_uri`)."""
    from core.outputs import check_output, staged

    if engine not in ENGINES:
        raise CustsegError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if chunk_rows < 1:
        raise CustsegError(f"chunk_rows {chunk_rows}: at least one customer a chunk")
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    out = check_output(Path(out_dir), [source, customers])
    start = time.perf_counter()
    if models is None:
        with stage("loading the champions"):
            models = load_champions(tracking_uri)
    with staged(out) as tmp:
        if _is_log(source, cleaned):
            snapshot = tmp / catalog.FEATURES
            as_of = _features_of_log(source, snapshot, models, engine, as_of, customers, mapping,
                                     cleaned)  # fmt: skip
        else:
            if customers is not None or cleaned or mapping:
                raise CustsegError(
                    f"{source} is a feature snapshot: --customers, --column and --cleaned "
                    "apply to a transaction log"
                )
            snapshot = source
        meta = _snapshot_meta(snapshot)
        as_of = _resolve_as_of(snapshot, meta, as_of)
        columns = _check_columns(snapshot, models)
        _warn_other_definition(meta, models)
        parts = tmp / catalog.SCORE_PARTS
        parts.mkdir()
        scoring = time.perf_counter()
        if engine == "spark":
            rows = _score_spark(snapshot, parts, models, as_of, columns, chunk_rows)
        else:
            rows = _score_local(snapshot, parts, models, as_of, columns, chunk_rows, engine)
        scoring = time.perf_counter() - scoring
        if csv:
            with stage("writing scores.csv"):
                write_scores_csv(parts, tmp / catalog.SCORE_CSV)
        n_parts = len(list(parts.glob("*.parquet")))
        summary = {
            "customers": rows,
            "parts": n_parts,
            "as_of": str(as_of),
            "engine": engine,
            "source": str(source),
            "versions": models.versions,
            "columns": output_schema(models.answers).names,
        }
        (tmp / catalog.SCORE_SUMMARY).write_text(json.dumps(summary, indent=2), encoding="utf-8")
        shutil.rmtree(out / catalog.SCORE_PARTS, ignore_errors=True)  # no stale parts left
        if not csv:
            (out / catalog.SCORE_CSV).unlink(missing_ok=True)
    return summary | {
        "out": str(out),
        "scores": str(out / catalog.SCORE_PARTS),
        "csv": str(out / catalog.SCORE_CSV) if csv else None,
        "features": str(out / catalog.FEATURES) if snapshot != source else None,
        "seconds": round(time.perf_counter() - start, 3),  # everything, loading included
        "scoring_seconds": round(scoring, 3),  # reading, scoring and writing the parts
    }


def feature_frame(batch: pa.RecordBatch | pa.Table, models: ModelSet) -> pd.DataFrame:
    """A chunk of feature rows as the model set reads them, typed as the service's checked
    rows are (`serving.schemas.predict_rows`): numbers as float64 (null -> NaN), categories
    as text objects (null -> None), the dynamic tag scores that are there, customer ids as
    Arrow text. Every engine's chunks pass here, so their answers are the same."""
    names = set(batch.schema.names)
    ids = batch.column("customer_id").cast(pa.large_string())
    cols: dict = {"customer_id": pd.Series(pd.arrays.ArrowStringArray(ids))}
    for c in models.numeric_columns:
        cols[c] = batch.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False)
    for c in models.category_columns:
        cols[c] = batch.column(c).cast(pa.string()).to_numpy(zero_copy_only=False)
    for t in models.tags:
        if (c := registry.TAG_PREFIX + t) in names:
            cols[c] = batch.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return pd.DataFrame(cols)


def score_batch(batch: pa.RecordBatch | pa.Table, models: ModelSet, as_of: date) -> pa.Table:
    """One chunk of feature rows -> its rows of scores (`Scores.to_arrow`)."""
    return models.score(feature_frame(batch, models), as_of).to_arrow(models.answers)


def write_scores_csv(parts: Path, path: Path) -> Path:
    """The Parquet parts as one CSV people open in a spreadsheet (UTF-8 with BOM, text that
    looks like a formula made inert, lists joined by `;` as scores.csv's active_tags), part
    by part."""
    from core.outputs import write_csv
    from features.vector import spreadsheet_safe

    first = True
    for part in sorted(parts.glob("*.parquet")):
        table = pq.read_table(part)
        for name in ("next_best", "active_tags"):
            joined = pc.binary_join(table[name], ";")
            table = table.set_column(table.schema.get_field_index(name), name, joined)
        frame = spreadsheet_safe(table.to_pandas())
        write_csv(frame, path, index=False, mode="w" if first else "a", header=first)
        first = False
    return path


# --- the input ---------------------------------------------------------------------------


def _is_log(source: Path, cleaned: bool) -> bool:
    """A transaction log (features to build) rather than a feature snapshot."""
    if cleaned or source.suffix.lower() in LOG_SUFFIXES:
        return True
    names = _schema(source).names
    return all(c in names for c in LOG_COLUMNS) and "recency_days" not in names


def _parts(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    parts = sorted(p for p in source.rglob("*.parquet") if p.is_file())
    if not parts:
        raise InputError(f"{source}: no .parquet files in this folder")
    return parts


def _schema(source: Path) -> pa.Schema:
    """The Arrow schema of a Parquet file or of a folder's first part (an InputError when
    it is not Parquet)."""
    part = _parts(source)[0]
    try:
        return pq.read_schema(part)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(
            f"{part}: not readable as Parquet ({str(exc).splitlines()[0]}); give a feature "
            "snapshot (`custseg features`) or a transaction log"
        ) from None


def _snapshot_meta(snapshot: Path) -> dict:
    """The custseg metadata of a snapshot (as-of date, definition hash), {} without."""
    from features.snapshot import KEY

    raw = (_schema(snapshot).metadata or {}).get(KEY)
    return json.loads(raw) if raw else {}


def _resolve_as_of(snapshot: Path, meta: dict, as_of: date | None) -> date:
    """The day the features describe: the snapshot's own; --as-of only where it has none."""
    own = meta.get("as_of")
    if own is None:
        if as_of is None:
            raise CustsegError(
                f"{snapshot}: the features carry no as-of date (not written by `custseg "
                "features`); pass --as-of, the day they describe"
            )
        return as_of
    own = date.fromisoformat(str(own)[:10])
    if as_of is not None and as_of != own:
        raise CustsegError(
            f"--as-of {as_of}: the snapshot {snapshot} is as of {own}; --as-of chooses the "
            "cutoff of a transaction log (build a snapshot as of that day with `custseg features`)"
        )
    return own


def _check_columns(snapshot: Path, models: ModelSet) -> list[str]:
    """The columns to read: customer_id, every feature the champions read, the dynamic tag
    scores present. An InputError names what is missing or not a number / text."""
    schema = _schema(snapshot)
    names = set(schema.names)
    missing = [c for c in ["customer_id", *models.columns] if c not in names]
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise InputError(
            f"{snapshot}: no column(s) {shown}, which the champions read; score a snapshot "
            "of `custseg features` (or the transaction log itself)"
        )
    for c in models.numeric_columns:
        kind = schema.field(c).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
                or pa.types.is_decimal(kind) or pa.types.is_boolean(kind)):  # fmt: skip
            raise InputError(f"{snapshot}: column {c!r} is {kind}, expected a number")
    for c in models.category_columns:
        kind = schema.field(c).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_dictionary(kind) or pa.types.is_null(kind)):  # fmt: skip
            raise InputError(f"{snapshot}: column {c!r} is {kind}, expected text")
    tags = [registry.TAG_PREFIX + t for t in models.tags if registry.TAG_PREFIX + t in names]
    return ["customer_id", *models.columns, *tags]


def _warn_other_definition(meta: dict, models: ModelSet) -> None:
    """A snapshot built by another feature definition than the champions' reads the same
    column names with other meanings (windows, thresholds): said, not refused (/predict
    takes such rows too)."""
    from core.catalog import next_best_name

    ours = meta.get("definition_hash")
    wanted = {h for n, h in models.definition_hashes.items() if h and n != next_best_name()}
    if ours and wanted and ours not in wanted:
        note(
            f"the features were built by definition {ours}, the champions were trained on "
            f"{', '.join(sorted(wanted))}: same columns, possibly other meanings"
        )


def _features_of_log(source, snapshot, models, engine, as_of, customers, mapping, cleaned):
    """Build the features of a transaction log as of `as_of` on `engine`, with the
    champions' category columns, and write them as the snapshot to score; returns the
    cutoff used."""
    from features.cleaning import CleaningConfig
    from features.definitions import FeatureConfig
    from features.snapshot import write_snapshot
    from features.stage import features_from_clean, features_from_log

    categories = list(dict.fromkeys(registry.category_values(models.columns)))
    customers = Path(customers) if customers is not None else None
    if cleaned:
        table = features_from_clean(source, customers, FeatureConfig(), as_of, engine, categories)
    else:
        run = features_from_log(
            source, customers, mapping or {}, CleaningConfig(), FeatureConfig(), as_of, engine,
            categories=categories,
        )  # fmt: skip
        table = run.table
    with stage("writing the features"):
        write_snapshot(table, snapshot)
    return date.fromisoformat(table.attrs["as_of"])


# --- the engines -------------------------------------------------------------------------


def _score_local(snapshot, parts, models, as_of, columns, chunk_rows, engine) -> int:
    """Stream the snapshot through DuckDB or Polars in chunks; each chunk scored here and
    written as one part. Returns the rows scored."""
    total = _count_rows(snapshot)
    rows = 0
    with bar(
        f"scoring {total:,} customers ({engine})", max(1, math.ceil(total / chunk_rows))
    ) as step:
        for i, batch in enumerate(_batches(snapshot, columns, chunk_rows, engine)):
            pq.write_table(score_batch(batch, models, as_of), parts / f"part-{i:05d}.parquet")
            rows += batch.num_rows
            step()
    if not rows:  # an empty snapshot: one empty part, so readers find the columns
        pq.write_table(output_schema(models.answers).empty_table(), parts / "part-00000.parquet")
    return rows


def _count_rows(snapshot: Path) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in _parts(snapshot))


def _batches(snapshot: Path, columns: list[str], rows: int, engine: str) -> Iterator[pa.Table]:
    """The snapshot's `columns` in chunks of at most `rows` rows, read by `engine`; a read
    error (parts that disagree, a corrupt file) as an InputError."""
    try:
        if engine == "duckdb":
            from features.engines import duckdb_connection

            glob = f"{snapshot}/**/*.parquet" if snapshot.is_dir() else str(snapshot)
            rel = duckdb_connection().read_parquet(glob)
            reader = rel.select(*[_quoted(c) for c in columns]).to_arrow_reader(rows)
            yield from _rechunk(reader, rows)
        else:
            import polars as pl

            lf = pl.scan_parquet(snapshot if snapshot.is_file() else f"{snapshot}/**/*.parquet")
            for frame in lf.select(columns).collect_batches(chunk_size=rows):
                yield frame.to_arrow()
    except (CustsegError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - each engine raises its own kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{snapshot}: not readable as a feature snapshot ({engine}): {first}"
        ) from None


def _rechunk(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """Record batches gathered into tables of `rows` rows (DuckDB hands out ~2,048 a
    batch whatever is asked): a model call per few rows would cost more than the trees."""
    held: list[pa.RecordBatch] = []
    size = 0
    for batch in reader:
        held.append(batch)
        size += batch.num_rows
        if size >= rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            held, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(held, schema=reader.schema)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _score_spark(snapshot, parts, models, as_of, columns, chunk_rows) -> int:
    """The champions run inside Spark: the snapshot's parts read by Spark, each partition's
    Arrow batches scored by `score_batch` with the model set broadcast once (each executor
    unpickles it once and keeps it), the parts written by Spark. Same function, same
    answers as the local engines."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from features.engines import spark_session

    spark = spark_session()
    schema = output_schema(models.answers)
    shipped = spark.sparkContext.broadcast(replace(models, online=None))

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model_set = shipped.value
        for batch in batches:
            yield from score_batch(batch, model_set, as_of).to_batches()

    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, str(chunk_rows))
    try:
        with stage(f"scoring in Spark ({spark.sparkContext.master})"):
            frame = spark.read.parquet(str(snapshot)).select(*columns)
            scored = frame.mapInArrow(score, from_arrow_schema(schema))
            scored.write.mode("overwrite").parquet(str(parts))
    except CustsegError:
        raise
    except Exception as exc:  # noqa: BLE001 - Py4J / Spark errors: their first line says it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CustsegError(f"scoring in Spark failed: {first}") from exc
    finally:
        spark.conf.set(key, before)
        shipped.unpersist()
    for extra in [*parts.glob(".*.crc"), parts / "_SUCCESS"]:
        extra.unlink(missing_ok=True)
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts.glob("*.parquet"))
