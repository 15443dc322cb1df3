"""Features for a few customers at request time, with the batch definitions.

Building the query (narwhals translating ~60 expressions) costs far more than running it on a
handful of orders, so `OnlineFeatures` builds it once, over a Polars IO source that reads
whatever data the current call provides; the cutoff is a column, so one query serves any
as-of date. Calls are serialised by a lock (the query holds one input at a time); run several
processes for parallelism. Float sums may differ from the batch run in the last bit (another
summation order).
"""

from __future__ import annotations

import threading
from datetime import date

import narwhals as nw
import pandas as pd
import polars as pl
import pyarrow as pa
from polars.io.plugins import register_io_source

from features import definitions
from features.build import as_day, column_types
from features.definitions import ORDER_TOTAL, TOP_CATEGORY, FeatureConfig
from features.engines import prepare_customers, prepare_transactions, typed_pandas

TX_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "day": pl.Int32,
        "amount": pl.Float64,
        "is_refund": pl.Boolean,
        "online": pl.Int8,
        "category": pl.Int32,
        "as_of": pl.Int32,
        ORDER_TOTAL: pl.Float64,  # orders without order ids: each row is an order, its amount
    }
)
_NO_OPT = pl.QueryOptFlags.none()
CUSTOMER_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "signup_day": pl.Int32,
        "age": pl.Float64,
        "gender": pl.String,
        "province": pl.String,
        "region": pl.String,
        "industry": pl.String,
    }
)


class OnlineFeatures:
    """`OnlineFeatures(categories=snapshot_categories)(orders, as_of)` -> feature rows."""

    def __init__(
        self,
        categories: list[str],
        cfg: FeatureConfig | None = None,
        with_customers: bool = True,
        tags: list[str] | None = None,
    ):
        """`categories`, `with_customers` and `tags` (names; default: every configured tag)
        must match the training snapshot's columns: with customers, attribute columns are
        always there (missing for customers not given)."""
        self.cfg = cfg or FeatureConfig()
        self.categories = list(categories)
        wanted = [t.name for t in self.cfg.tags] if tags is None else list(tags)
        unknown = sorted(set(wanted) - {t.name for t in self.cfg.tags})
        if unknown:
            raise ValueError(f"tags {', '.join(unknown)} are not in the feature config")
        self.tags = [t for t in self.cfg.tags if t.name in wanted]
        named = [x for t in self.tags for x in t.category if x != TOP_CATEGORY]
        # categories the tags name beyond the share columns: coded after them
        self._coded = self.categories + [
            x for x in dict.fromkeys(named) if x not in self.categories
        ]
        self._lock = threading.Lock()
        self._inputs: dict[str, pl.DataFrame] = {}
        tx = nw.from_native(self._source("tx", TX_SCHEMA))
        cust = (
            nw.from_native(self._source("customers", CUSTOMER_SCHEMA)) if with_customers else None
        )
        codes = {name: i for i, name in enumerate(self.categories)}
        extra = {n: i for i, n in enumerate(self._coded) if i >= len(self.categories)}
        query = definitions.customer_features(tx, self.cfg, codes, cust, self.tags, extra)
        self._types = column_types(query.collect_schema().names(), self.categories)
        self._query = nw.to_native(query.sort("customer_id"))

    def _source(self, name: str, schema: pl.Schema) -> pl.LazyFrame:
        def scan(with_columns, predicate, n_rows, batch_size):
            df = self._inputs[name]
            if with_columns is not None:
                df = df.select(with_columns)
            if predicate is not None:
                df = df.filter(predicate)
            yield df

        return register_io_source(scan, schema=schema)

    def __call__(
        self, transactions: pd.DataFrame, as_of: date, customers: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        tx = prepare_transactions(transactions, as_of_day := as_day(as_of), self._coded)
        cust = _complete(prepare_customers(customers) if customers is not None else None)
        with self._lock:
            table = tx.table
            if ORDER_TOTAL not in table.column_names:
                table = table.append_column(ORDER_TOTAL, table["amount"])
            self._inputs["tx"] = pl.from_arrow(table).select(TX_SCHEMA.names()).cast(TX_SCHEMA)
            self._inputs["customers"] = cust
            # the plan is small and fixed: skip re-optimising it, run the in-memory engine
            result = self._query.collect(engine="in-memory", optimizations=_NO_OPT)
        out = typed_pandas(result.to_arrow(), self._types)
        out.attrs.update(
            as_of=str(as_of),
            as_of_day=as_of_day,
            categories=self.categories,
            tags={t.name: t.threshold for t in self.tags},
        )
        return out


def _complete(customers: pa.Table | None) -> pl.DataFrame:
    """The customer table with every attribute column (missing where not given)."""
    if customers is None:
        return pl.DataFrame(schema=CUSTOMER_SCHEMA)
    df = pl.from_arrow(customers)
    missing = [
        pl.lit(None, dtype).alias(n) for n, dtype in CUSTOMER_SCHEMA.items() if n not in df.columns
    ]
    return df.with_columns(missing).select(CUSTOMER_SCHEMA.names()).cast(CUSTOMER_SCHEMA)
