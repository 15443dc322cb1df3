"""Where the feature definitions run: Polars (embedded default) or Apache Spark.

Both get the same prepared columns (see `features.definitions`), so the definitions never see
an engine. Spark runs in local mode by default; set CUSTSEG_SPARK_MASTER (e.g.
spark://host:7077) to use a real cluster.
"""

from __future__ import annotations

import os
from functools import cache

import narwhals as nw
import numpy as np
import pandas as pd

from custseg.errors import CustsegError

ENGINES = ("polars", "spark")
EPOCH = np.datetime64("1970-01-01", "D")


def day_number(dates) -> np.ndarray:
    """Dates -> days since 1970-01-01 (int32), the unit every definition computes in."""
    return (np.asarray(dates, dtype="datetime64[D]") - EPOCH).astype(np.int32)


def prepare_transactions(tx: pd.DataFrame) -> pd.DataFrame:
    """Clean transactions -> the definitions' input columns."""
    out = pd.DataFrame(
        {
            "customer_id": tx["customer_id"].astype("string[pyarrow]").to_numpy(),
            "day": day_number(tx["order_date"]),
            "amount": tx["amount"].to_numpy(np.float64),
            "is_refund": (tx["is_refund"] if "is_refund" in tx else tx["amount"] < 0).to_numpy(
                bool
            ),
        }
    )
    if "channel" in tx:
        online = pd.Series(np.where(tx["channel"] == "online", 1.0, 0.0))
        out["online"] = online.where(tx["channel"].isin(["online", "offline"]).to_numpy())
    else:
        out["online"] = np.nan
    if "category" in tx:
        out["category"] = tx["category"].astype("string[pyarrow]").to_numpy()
    return out


def prepare_customers(customers: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {"customer_id": customers["customer_id"].astype("string[pyarrow]").to_numpy()}
    )
    if "signup_date" in customers:
        signup = customers["signup_date"]
        out["signup_day"] = pd.array(
            np.where(signup.isna(), 0, day_number(signup.fillna(pd.Timestamp(0)))), dtype="Int32"
        )
        out.loc[signup.isna().to_numpy(), "signup_day"] = pd.NA
    for col in ("age", "gender", "province", "region", "industry"):
        if col in customers:
            out[col] = customers[col].to_numpy()
    return out


@cache
def spark_session():
    """A SparkSession: local[2] by default, CUSTSEG_SPARK_MASTER for a cluster."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is in the lock
        raise CustsegError("engine 'spark' needs pyspark: pip install pyspark") from exc
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    return (
        SparkSession.builder.master(os.environ.get("CUSTSEG_SPARK_MASTER", "local[2]"))
        .appName("custseg")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def to_lazy(df: pd.DataFrame, engine: str) -> nw.LazyFrame:
    if engine == "polars":
        import polars as pl

        return nw.from_native(pl.from_pandas(df).lazy())
    if engine == "spark":
        return nw.from_native(spark_session().createDataFrame(df))
    raise CustsegError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")


def collect(lf: nw.LazyFrame) -> pd.DataFrame:
    return lf.collect(backend="pandas").to_native()
