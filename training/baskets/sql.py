"""One SQL text, two engines: the basket queries are written once, in the part of SQL that
DuckDB and Spark SQL read alike, and `query` runs them on either.

What keeps a query in that common part (the one place the dialects differ):
- casts are `CAST(x AS DOUBLE)` (not DuckDB's `x::DOUBLE`), infinity is `INF` below;
- numbers from the config are inlined by `number` as DOUBLE literals (DuckDB binds `?`,
  Spark binds `:name`: inlining needs neither; a Spark decimal literal would change the type);
- a division whose divisor may be zero sits in a CASE that rules it out (Spark's ANSI mode
  raises on x / 0 where DuckDB returns NULL or inf).

DuckDB runs in-process on Arrow tables; Spark (local mode, or CUSTSEG_SPARK_MASTER) gets the
same tables as temporary views and its result comes back as pandas through Arrow."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa

from core.errors import ConfigError, CustsegError

ENGINES = ("duckdb", "spark")
INF = "CAST('Infinity' AS DOUBLE)"


def checked(engine: str) -> str:
    """The engine's name, lower case; a ConfigError when it is not one of ENGINES."""
    name = (engine or "").lower()
    if name not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    return name


def number(x: float) -> str:
    """A config number as a DOUBLE literal both engines read the same."""
    x = float(x)
    if not math.isfinite(x):
        raise CustsegError(f"not a finite number: {x!r}")
    return f"CAST({x!r} AS DOUBLE)"


def query(engine: str, sql: str, tables: dict[str, pa.Table]) -> pd.DataFrame:
    """Run `sql` on `engine` with each of `tables` visible under its name."""
    run = _spark if checked(engine) == "spark" else _duckdb
    return run(sql, tables)


def _duckdb(sql: str, tables: dict[str, pa.Table]) -> pd.DataFrame:
    from features.engines import duckdb_connection

    con = duckdb_connection()
    for name, table in tables.items():
        con.register(name, table)
    try:
        return con.execute(sql).df()
    finally:
        for name in tables:
            con.unregister(name)


def _spark(sql: str, tables: dict[str, pa.Table]) -> pd.DataFrame:
    from features.engines import spark_session

    spark = spark_session()
    for name, table in tables.items():  # not cached: measured no faster, and more JVM memory
        spark.createDataFrame(table).createOrReplaceTempView(name)
    try:
        return spark.sql(sql).toArrow().to_pandas()
    finally:
        for name in tables:
            spark.catalog.dropTempView(name)
