"""Where the feature definitions run: DuckDB (embedded default), Polars, or Apache Spark.

All get the same prepared table (see `features.definitions`), so the definitions never see
an engine. Categories are dictionary-encoded to integers on the way in (one comparison per
category per order: integers are cheaper than strings). DuckDB is the default for whole tables
(benchmarks/bench_features.py: its partitioned window and wide aggregation beat Polars' on
this query); Polars serves the online path (a few customers, milliseconds). Spark runs in local
mode by default; set CUSTSEG_SPARK_MASTER (e.g. spark://host:7077) to use a real cluster.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import narwhals as nw
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import CustsegError
from features.definitions import KEY, ORDER_TOTAL
from features.vector import to_arrow, to_numpy
from features.vector import to_pandas as arrow_to_pandas

ENGINES = ("duckdb", "polars", "spark")
DEFAULT_ENGINE = "duckdb"
EPOCH = np.datetime64("1970-01-01", "D")


def day_number(dates) -> np.ndarray:
    """Dates -> days since 1970-01-01 (int32), the unit every definition computes in."""
    if isinstance(getattr(dates, "dtype", None), pd.ArrowDtype):  # Arrow timestamps: no objects
        days = pc.cast(pc.cast(dates.array._pa_array, pa.date32()), pa.int32())  # noqa: SLF001
        return days.to_numpy(zero_copy_only=False).astype(np.int32)
    return (np.asarray(dates, dtype="datetime64[D]") - EPOCH).astype(np.int32)


def _encode(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """(int32 codes with -1 for missing, the distinct values)."""
    enc = pc.dictionary_encode(to_arrow(values))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, enc.dictionary


@dataclass
class PreparedTransactions:
    """Transactions as the definitions read them, plus the category dictionary."""

    table: pa.Table  # customer_id, day, amount, is_refund, online, category (integer code)
    categories: pa.Array

    def category_codes(self, names: list[str]) -> dict[str, int]:
        """name -> code; a name the data does not have gets -2, which matches nothing."""
        pos = pc.index_in(
            pa.array(names, pa.large_string()), value_set=self.categories.cast(pa.large_string())
        )
        return {n: (-2 if p is None else p) for n, p in zip(names, pos.to_pylist(), strict=True)}


def prepare_transactions(
    tx: pd.DataFrame, as_of: int, categories: list[str] | None = None
) -> PreparedTransactions:
    """Clean transactions -> the definitions' input columns.

    Categories are coded by their position in `categories` when given (serving fixes them to the
    training snapshot's), else by a dictionary of the data's own categories.
    """
    refund = tx["is_refund"] if "is_refund" in tx else tx["amount"] < 0
    cols = {
        "customer_id": to_arrow(tx["customer_id"]),
        "day": day_number(tx["order_date"]),
        "amount": to_numpy(tx["amount"], np.float64),
        "is_refund": to_numpy(refund, bool),
    }
    if "channel" in tx:
        channel = to_arrow(tx["channel"])
        # offline -> 0, online -> 1, anything else missing: one hash lookup per row
        flags = pa.array(["offline", "online"], pa.large_string())
        cols["online"] = pc.index_in(channel, value_set=flags).cast(pa.int8())
    else:
        cols["online"] = pa.nulls(len(tx), pa.int8())
    dictionary = pa.array(categories or [], pa.large_string())
    if "category" in tx and categories is None:
        cols["category"], dictionary = _encode(tx["category"])
    elif categories is not None:
        values = (
            to_arrow(tx["category"]) if "category" in tx else pa.nulls(len(tx), pa.large_string())
        )
        cols["category"] = pc.index_in(values, value_set=dictionary).fill_null(-1).cast(pa.int32())
    cols["as_of"] = np.full(len(tx), as_of, np.int32)
    if "order_id" in tx:
        cols[ORDER_TOTAL] = order_totals(cols["customer_id"], tx["order_id"], cols)
    return PreparedTransactions(pa.table(cols), dictionary)


def order_totals(customer_id: pa.Array, order_id: pd.Series, cols: dict) -> pa.Array:
    """With order ids, a row is an order line: each order (lines of one customer and order id,
    refund lines apart from purchase lines) gets its total on its first line and null on the
    others, so the definitions count and value orders, not lines (one Arrow hash group-by)."""
    n = len(order_id)
    t = pa.table(
        {
            "c": customer_id,
            "o": to_arrow(order_id),
            "r": pa.array(cols["is_refund"]),
            "a": pa.array(cols["amount"]),
            "i": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    g = t.group_by(["c", "o", "r"], use_threads=True).aggregate([("a", "sum"), ("i", "min")])
    total = np.full(n, np.nan)
    total[g["i_min"].to_numpy()] = g["a_sum"].to_numpy()
    return pa.array(total, pa.float64(), from_pandas=True)  # NaN -> null


def prepare_customers(customers: pd.DataFrame) -> pa.Table:
    """Customer attributes, one row per customer id."""
    cols = {"customer_id": to_arrow(customers["customer_id"])}
    if "signup_date" in customers:
        days = pd.Series(
            day_number(customers["signup_date"].fillna(pd.Timestamp(0))), dtype="Int32"
        )
        cols["signup_day"] = pa.array(
            days.where(customers["signup_date"].notna().to_numpy()), pa.int32()
        )
    for col in ("age", "gender", "province", "region", "industry"):
        if col in customers:
            kind = pa.float64() if col == "age" else pa.string()
            cols[col] = pa.array(customers[col].to_numpy(), kind, from_pandas=True)
    return pa.table(cols)


def scan_parquet(path: str, engine: str, date_columns: dict[str, str]) -> nw.LazyFrame:
    """A Parquet file (or folder) read by the engine itself, with each date column of
    `date_columns` ({source: target}) turned into a day number the engine's own way: data that
    outgrows one machine never passes through pandas."""
    if engine == "duckdb":
        source = f"{path}/**/*.parquet" if Path(path).is_dir() else str(path)
        rel = duckdb_connection().read_parquet(source)
        days = [
            f"CAST(date_diff('day', DATE '1970-01-01', CAST({_quote(s)} AS DATE)) AS INTEGER)"
            f" AS {_quote(t)}"
            for s, t in date_columns.items()
            if s in rel.columns
        ]
        return nw.from_native(_with_key(rel.project(", ".join(["*", *days]))))
    if engine == "polars":
        import polars as pl

        lf = pl.scan_parquet(path)
        present = set(lf.collect_schema().names())
        days = [
            pl.col(s).dt.epoch("d").cast(pl.Int32).alias(t)
            for s, t in date_columns.items()
            if s in present
        ]
        return nw.from_native(lf.with_columns(days))
    if engine == "spark":
        from pyspark.sql import functions as F

        df = spark_session().read.parquet(str(path))
        for source, target in date_columns.items():
            if source not in df.columns:
                continue
            df = df.withColumn(target, F.datediff(F.col(source), F.lit("1970-01-01")).cast("int"))
        return nw.from_native(df)
    raise CustsegError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")


def prepare_scanned(tx: nw.LazyFrame, as_of: int) -> nw.LazyFrame:
    """`prepare_transactions` for a scanned file: the same columns, categories kept as text."""
    names = tx.collect_schema().names()
    c = nw.col
    cols = [
        c("customer_id").cast(nw.String),
        c("day").cast(nw.Int32),
        c("amount").cast(nw.Float64),
        (c("is_refund") if "is_refund" in names else c("amount") < 0).alias("is_refund"),
        (
            nw.when(c("channel") == "online")
            .then(nw.lit(1, nw.Int8))
            .when(c("channel") == "offline")
            .then(nw.lit(0, nw.Int8))
            if "channel" in names
            else nw.lit(None, nw.Int8)
        ).alias("online"),
        nw.lit(as_of, nw.Int32).alias("as_of"),
    ]
    if "category" in names:
        cols.append(c("category").cast(nw.String))
    if KEY in names:
        cols.append(c(KEY))
    if "order_id" in names and "source_row" in names:  # order lines: as `order_totals` does
        order = ["customer_id", "order_id", "is_refund"]
        first = c("source_row") == c("source_row").min().over(*order)
        cols.append(nw.when(first).then(c("amount").sum().over(*order)).alias(ORDER_TOTAL))
    return tx.select(*cols)


def code_categories(tx: nw.LazyFrame, names: list[str]) -> tuple[nw.LazyFrame, dict[str, int]]:
    """Category text -> an integer code (its position in `names`, -1 for any other), as the
    in-memory path has them: the gap window then carries an integer, not a string (DuckDB,
    1M customers: 0.3 s of 4.2), and the share columns compare integers."""
    if "category" not in tx.collect_schema().names():
        return tx, {}
    c = nw.col("category")
    code = nw.lit(-1, nw.Int32)
    if names:
        chain = nw.when(c == names[0]).then(nw.lit(0, nw.Int32))
        for i, name in enumerate(names[1:], start=1):
            chain = chain.when(c == name).then(nw.lit(i, nw.Int32))
        code = chain.otherwise(code)
    return tx.with_columns(category=code), {name: i for i, name in enumerate(names)}


@cache
def spark_session():
    """A SparkSession: local[2] by default, CUSTSEG_SPARK_MASTER for a cluster."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # Spark is an extra: `make install` (the lock) has it, `pip install .` not
        raise CustsegError(
            "engine 'spark' needs pyspark, an extra of custseg: pip install 'custseg[spark]' "
            "(or `make install`)"
        ) from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(os.environ.get("CUSTSEG_SPARK_MASTER", "local[2]"))
        .appName("custseg")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_local = threading.local()


def duckdb_connection():
    """This thread's in-process DuckDB database (connections are not thread-safe; relations
    joined in one query must share one).

    Row order is left to the engine (`preserve_insertion_order=false`): results are sorted
    explicitly where order matters."""
    con = getattr(_local, "duckdb", None)
    if con is None:
        import duckdb

        con = _local.duckdb = duckdb.connect()
        con.execute("SET preserve_insertion_order = false")
        for setting, value in duckdb_settings().items():
            con.execute(f"SET {setting} = '{value}'")
    return con


# DuckDB settings from the environment: a memory limit below the machine's (DuckDB's default is
# 80% of RAM) makes large queries spill to the temporary folder instead of taking the machine
DUCKDB_ENV = {
    "memory_limit": "CUSTSEG_DUCKDB_MEMORY_LIMIT",  # e.g. 8GB
    "temp_directory": "CUSTSEG_DUCKDB_TEMP_DIRECTORY",  # where it spills (default ./.tmp)
    "threads": "CUSTSEG_DUCKDB_THREADS",
}


def duckdb_settings() -> dict[str, str]:
    """The DuckDB settings the environment gives (`DUCKDB_ENV`), for every connection."""
    out = {}
    for setting, var in DUCKDB_ENV.items():
        value = os.environ.get(var, "").strip()
        if value:
            if "'" in value:
                raise CustsegError(f"{var}={value!r}: no quotes")
            out[setting] = value
    return out


def _with_key(rel):
    """A DuckDB relation with `definitions.KEY`: a 64-bit hash of customer_id (if it has one)."""
    if "customer_id" not in rel.columns:
        return rel
    return rel.project(f'*, hash("customer_id") AS {KEY}')


def to_lazy(table: pa.Table, engine: str) -> nw.LazyFrame:
    if engine == "duckdb":
        return nw.from_native(_with_key(duckdb_connection().from_arrow(table)))
    if engine == "polars":
        import polars as pl

        return nw.from_native(pl.from_arrow(table).lazy())
    if engine == "spark":
        return nw.from_native(spark_session().createDataFrame(table.to_pandas()))
    raise CustsegError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")


def collect(lf: nw.LazyFrame) -> pa.Table:
    """Run the query; the result comes back as Arrow whatever the engine."""
    return lf.collect(backend="pyarrow").to_native()


def typed_pandas(table: pa.Table, types: dict[str, pa.DataType]) -> pd.DataFrame:
    """The columns of `types`, in that order and cast to those types, as one pandas frame."""
    return arrow_to_pandas(table.select(list(types)).cast(pa.schema(list(types.items()))))


def collect_sorted(lf: nw.LazyFrame) -> pa.Table:
    """Run the query sorted by customer id (inside the engine): tables come out in one order
    whatever the engine."""
    return collect(lf.sort("customer_id"))


def to_pandas(lf: nw.LazyFrame, types: dict[str, pa.DataType]) -> pd.DataFrame:
    """`collect_sorted`, then `typed_pandas`."""
    return typed_pandas(collect_sorted(lf), types)
