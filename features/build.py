"""Feature tables and backtest labels as of a cutoff: pandas in, pandas out.

features = build_features(clean_tx, clean_customers, as_of=date(2026, 6, 30))
labels = build_labels(clean_tx, cutoffs=[date(2026, 3, 31)], repurchase_days=30, churn_days=90)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import narwhals as nw
import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import CustsegError, InputError
from features import definitions, registry
from features.definitions import KEY, FeatureConfig
from features.engines import (
    DEFAULT_ENGINE,
    EPOCH,
    code_categories,
    collect,
    collect_sorted,
    day_number,
    duckdb_connection,
    prepare_customers,
    prepare_scanned,
    prepare_transactions,
    scan_parquet,
    to_lazy,
    to_pandas,
    typed_pandas,
)

c = nw.col


def as_day(d: date) -> int:
    """A date as the definitions' day number."""
    return int(day_number([np.datetime64(d, "D")])[0])


def fixed_categories(categories: list[str], columns) -> list[str]:
    """Category-share columns fixed by a reference (a snapshot, the champions) need the log's
    category column; without it the query would fail deep in the engine."""
    if categories and "category" not in columns:
        shown = ", ".join(map(str, categories[:3])) + (", ..." if len(categories) > 3 else "")
        raise InputError(
            f"the reference features have {len(categories)} category share(s) ({shown}) but this "
            "log has no category column: map the same source column with --column category=SOURCE"
        )
    return categories


def top_categories(
    tx: nw.LazyFrame, as_of: int, n: int, names: pa.Array | None = None
) -> list[str]:
    """The n categories with the most spend on or before the cutoff (ties by name).

    `names` decodes integer category codes (the in-memory path); scanned files keep text."""
    if "category" not in tx.collect_schema().names() or n <= 0:
        return []
    ranked = collect(
        tx.filter((c("day") <= as_of) & ~c("is_refund") & ~c("category").is_null())
        .group_by("category")
        .agg(c("amount").sum().alias("spend"))
    ).to_pandas()
    if names is not None:
        ranked = ranked[ranked["category"] >= 0]
        ranked["category"] = names.take(pa.array(ranked["category"].to_numpy())).to_pylist()
    ranked = ranked.sort_values(["spend", "category"], ascending=[False, True], kind="stable")
    return [str(x) for x in ranked["category"].head(n)]


def scanned_top_categories(scanned: nw.LazyFrame, as_of: int, n: int) -> list[str]:
    """`top_categories` of a scanned log, read without the order totals `prepare_scanned` adds
    (a window over every line that the spend by category does not need: at 131M lines it
    took 6 GB and most of the time)."""
    keep = [c for c in scanned.collect_schema().names() if c not in ("order_id", "source_row")]
    return top_categories(prepare_scanned(scanned.select(keep), as_of), as_of, n)


def definition_hash(
    cfg: FeatureConfig, categories: list[str], tags: list[str] | None = None
) -> str:
    """Names the exact definition: the definitions' version (`definitions.VERSION`), the
    config (tag definitions included), the categories and the tags computed (default: all
    configured)."""
    tags = [t.name for t in cfg.tags] if tags is None else list(tags)
    text = (
        f"features v{definitions.VERSION}"
        + json.dumps(asdict(cfg))
        + json.dumps(categories)
        + json.dumps(tags)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tag_plan(
    cfg: FeatureConfig, columns, categories: list[str]
) -> tuple[list[definitions.TagConfig], list[str], list[str]]:
    """(the tags this log computes, a note per tag skipped, the category values they name
    beyond `categories`, which must be coded too)."""
    tags, notes = definitions.applicable_tags(cfg.tags, set(columns), categories)
    named = [x for t in tags for x in t.category if x != definitions.TOP_CATEGORY]
    extra = [x for x in dict.fromkeys(named) if x not in categories]
    return tags, notes, extra


def tag_hits(features: pd.DataFrame, thresholds: dict[str, float]) -> dict[str, np.ndarray]:
    """Tag name -> per row whether its score (column tag_<name>) reaches the threshold, for
    the tags whose column the rows have (a tag without one is never active)."""
    names = [n for n in thresholds if registry.TAG_PREFIX + n in features]
    return {
        n: pd.to_numeric(features[registry.TAG_PREFIX + n], errors="coerce").to_numpy("float64")
        >= thresholds[n]
        for n in names
    }


def active_tags(features: pd.DataFrame, thresholds: dict[str, float]) -> list[list[str]]:
    """Per row, the dynamic tags whose score (column tag_<name>) reaches its threshold; a
    tag whose column the rows lack is never active (one comparison per tag, not per row)."""
    return tag_lists(tag_hits(features, thresholds), len(features))


def tag_lists(hits: dict[str, np.ndarray], n: int) -> list[list[str]]:
    """`tag_hits` as one list of active tag names per row."""
    return [[t for t, hit in hits.items() if hit[i]] for i in range(n)]


def tag_thresholds(tags) -> dict[str, float]:
    """tag name -> activation threshold: what travels with the table and the models."""
    return {t.name: t.threshold for t in tags}


def column_types(available: list[str], categories: list[str]) -> dict[str, pa.DataType]:
    """Registry column order and Arrow types for the columns a query produced."""
    described = {f.name: f for f in registry.describe(available)}

    def arrow_type(name: str) -> pa.DataType:
        if name == "customer_id" or described[name].kind == "category":
            return pa.large_string()
        return pa.int64() if described[name].whole else pa.float64()

    return {n: arrow_type(n) for n in ["customer_id", *described]}


def _feature_table(
    tx: nw.LazyFrame,
    cfg: FeatureConfig,
    codes: dict,
    customers: nw.LazyFrame | None,
    categories: list[str],
    tags: list | None = None,
    tag_codes: dict | None = None,
) -> pd.DataFrame:
    """Run `definitions.customer_features`, sorted by customer id, as typed pandas.

    When the engine gave an integer customer key (a 64-bit hash), each customer's key must be
    its own: two customers sharing one would have their order days interleaved in the gap
    window. Checked on the result (one distinct key per row); on a clash the query runs again
    partitioned by customer_id itself."""
    table = collect_sorted(
        definitions.customer_features(tx, cfg, codes, customers, tags, tag_codes)
    )
    if KEY in table.column_names and _repeats(table[KEY].to_numpy()):
        table = collect_sorted(
            definitions.customer_features(tx.drop(KEY), cfg, codes, customers, tags, tag_codes)
        )
    names = [n for n in table.column_names if n != KEY]
    return typed_pandas(table, column_types(names, categories))


def _repeats(keys: np.ndarray) -> bool:
    """Whether any value occurs twice (a sort: 3x faster than Arrow's hash count here)."""
    keys = np.sort(keys)
    return bool((keys[1:] == keys[:-1]).any())


def build_features(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: date,
    cfg: FeatureConfig | None = None,
    engine: str = DEFAULT_ENGINE,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """One row per customer with an order on or before `as_of`; columns from the registry.

    `categories` fixes the category-share columns (serving passes the training snapshot's);
    by default they are the top categories by spend up to `as_of`.
    """
    cfg = cfg or FeatureConfig()
    day = as_day(as_of)
    prepared = prepare_transactions(transactions, as_of=day)
    tx = to_lazy(prepared.table, engine)
    cats = (
        top_categories(tx, day, cfg.top_categories, prepared.categories)
        if categories is None
        else fixed_categories(categories, transactions.columns)
    )
    cust = None
    if customers is not None:
        cust = to_lazy(prepare_customers(customers), engine)
    tags, notes, extra = tag_plan(cfg, transactions.columns, cats)
    codes = prepared.category_codes(cats)
    out = _feature_table(tx, cfg, codes, cust, cats, tags, prepared.category_codes(extra))
    _describe(out, as_of, cfg, cats, tags, notes, engine)
    return out


def _describe(out, as_of, cfg, cats, tags, notes, engine) -> None:
    """The table's attrs: what it was built from (the snapshot and the models carry them)."""
    names = [t.name for t in tags]
    out.attrs.update(
        as_of=str(as_of),
        definition_hash=definition_hash(cfg, cats, names),
        engine=engine,
        categories=cats,
        tags=tag_thresholds(tags),
        tag_notes=notes,
    )


# The columns `build_features_from_parquet` reads from clean tables: (required, what it must be,
# a test of the column's narwhals type). Other columns are ignored.
_TEMPORAL = ("a date or timestamp", lambda t: t.is_temporal() and t != nw.Duration)
_NUMBER = ("a number", lambda t: t.is_numeric())
_TEXT = ("text", lambda t: t == nw.String or t == nw.Categorical or t == nw.Enum)
CLEAN_COLUMNS = {
    "transactions": {
        "customer_id": (True, "an id", lambda t: True),  # read as text whatever its type
        "order_date": (True, *_TEMPORAL),
        "amount": (True, *_NUMBER),
        "is_refund": (False, "true/false", lambda t: t == nw.Boolean),
        "channel": (False, *_TEXT),
        "category": (False, *_TEXT),
    },
    "customers": {
        "customer_id": (True, "an id", lambda t: True),
        "signup_date": (False, *_TEMPORAL),
        "age": (False, *_NUMBER),
        **{n: (False, *_TEXT) for n in ("gender", "province", "region", "industry")},
    },
}


def scan_clean(path: str | Path, table: str, engine: str) -> nw.LazyFrame:
    """A clean Parquet table (file or folder) scanned by `engine`, its date columns as day
    numbers; an InputError names an unreadable file, parts that disagree, a missing column or
    a wrong type."""
    if Path(path).exists():  # else a URI (hdfs://, s3://) that only the engine reads
        _check_local(Path(path), table)
    try:
        schema = scan_parquet(str(path), engine, {}).collect_schema()
    except CustsegError:
        raise
    except Exception as exc:  # noqa: BLE001 - each engine raises its own kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{table} {path}: not readable as Parquet ({engine}): {first}") from None
    for name, (required, kind, ok) in CLEAN_COLUMNS[table].items():
        if name not in schema:
            if required:
                need = [n for n, spec in CLEAN_COLUMNS[table].items() if spec[0]]
                rest = [n for n in CLEAN_COLUMNS[table] if n not in need]
                raise InputError(
                    f"{table} {path}: no column {name!r} (clean {table} need {', '.join(need)}; "
                    f"optional: {', '.join(rest)}; `custseg clean` writes them)"
                )
        elif not ok(schema[name]):
            raise InputError(f"{table} {path}: column {name!r} is {schema[name]}, expected {kind}")
    dates = {"order_date": "day"} if table == "transactions" else {"signup_date": "signup_day"}
    return scan_parquet(str(path), engine, dates)


def _check_local(path: Path, table: str) -> None:
    """What the Parquet footers tell before any engine runs: readable, parts that agree, no
    time-zoned timestamp (engines disagree on its calendar day: UTC, the session's zone or
    the column's)."""
    zoned = [f for f in _arrow_schema(path, table) if getattr(f.type, "tz", None)]
    if zoned:
        raise InputError(
            f"{table} {path}: column {zoned[0].name!r} is a timestamp in time zone "
            f"{zoned[0].type.tz}; clean tables carry local dates (a date or a timestamp without "
            "time zone, as `custseg clean` writes them)"
        )


def _arrow_schema(path: Path, table: str) -> pa.Schema:
    """The Arrow schema of a Parquet file, or of a folder's parts, which must share one:
    engines read the first part's and would drop, or fail on, what the others add or type
    differently."""
    import pyarrow.parquet as pq

    if not path.is_dir():
        try:
            return pq.read_schema(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{table} {path}: not readable as Parquet: {exc}") from None
    if (path / f"{table}.parquet").is_file():
        raise InputError(
            f"{table} {path}: a `custseg clean` output folder; pass {path / f'{table}.parquet'}"
        )
    parts = sorted(path.rglob("*.parquet"))
    if not parts:
        raise InputError(f"{table} {path}: no .parquet files in this folder")
    try:
        first = pq.read_schema(parts[0])
        for part in parts[1:]:
            other = pq.read_schema(part)
            if not other.equals(first):
                names = set(first.names) ^ set(other.names)
                typed = [
                    f"{f.name} {f.type} vs {other.field(f.name).type}"
                    for f in first
                    if f.name in other.names and other.field(f.name).type != f.type
                ]
                what = f"columns {', '.join(sorted(names))} in one only" if names else typed[0]
                raise InputError(
                    f"{table} {path}: parts {parts[0].name} and {part.name} disagree ({what}); "
                    "all parts of a table need the same columns and types"
                )
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{table} {path}: a part is not readable as Parquet: {exc}") from None
    return first


def check_clean(tx: nw.LazyFrame, customers: nw.LazyFrame | None, where: str) -> date | None:
    """What `custseg clean` guarantees and a scanned table might not (one pass each): no order
    without a customer, date or amount, one row per customer. Returns the last order date on
    or before today (None without one), the default cutoff, as `features.pipeline.
    last_order_date` is for a log in memory."""
    today = as_day(date.today())
    row = collect(
        tx.select(
            nw.len().alias("rows"),
            *[c(n).null_count().alias(n) for n in ("customer_id", "day", "amount")],
            nw.when(c("day") <= today).then(c("day")).max().alias("last"),
        )
    ).to_pylist()[0]
    row = {k: (v if v is None else int(v)) for k, v in row.items()}  # DuckDB: Decimal counts
    if not row["rows"]:
        raise InputError(f"transactions {where}: no rows")
    source = {"customer_id": "customer_id", "day": "order_date", "amount": "amount"}
    missing = {name: row[col] for col, name in source.items() if row[col]}
    if missing:
        said = ", ".join(f"{n:,} without {name}" for name, n in missing.items())
        raise InputError(
            f"transactions {where}: {said} (of {row['rows']:,} rows); clean tables have none: "
            "`custseg clean` drops such rows and says why"
        )
    if customers is not None:
        ids = collect(
            customers.select(
                nw.len().alias("rows"),
                c("customer_id").null_count().alias("missing"),
                c("customer_id").n_unique().alias("distinct"),
            )
        ).to_pylist()[0]
        ids = {k: int(v) for k, v in ids.items()}
        repeats = ids["rows"] - ids["missing"] - (ids["distinct"] - (ids["missing"] > 0))
        said = [f"{ids['missing']:,} rows without customer_id"] if ids["missing"] else []
        said += [f"{repeats:,} repeated ids"] if repeats else []
        if said:
            raise InputError(
                f"customers: {' and '.join(said)} (of {ids['rows']:,} rows); a clean customer "
                "table has one row per customer (`custseg clean` drops and merges them)"
            )
    last = row["last"]
    return None if last is None else date(1970, 1, 1) + timedelta(days=int(last))


def scanned_attributes(scanned: nw.LazyFrame) -> nw.LazyFrame:
    """The attribute columns of a scanned customer table, ids and categories as text (a
    Categorical or integer id would not join the log's text ids)."""
    names = scanned.collect_schema().names()
    numbers = [c(n) for n in ("signup_day", "age") if n in names]
    texts = [
        c(n).cast(nw.String) for n in ("gender", "province", "region", "industry") if n in names
    ]
    return scanned.select(c("customer_id").cast(nw.String), *numbers, *texts)


def build_features_from_parquet(
    transactions: str | Path,
    as_of: date,
    cfg: FeatureConfig | None = None,
    engine: str = DEFAULT_ENGINE,
    customers: str | Path | None = None,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """`build_features` on clean Parquet outputs (`custseg clean`), read by the engine itself:
    the scale path (a Spark cluster reads the files; nothing goes through pandas but the
    result)."""
    tx = scan_clean(transactions, "transactions", engine)
    cust = None if customers is None else scan_clean(customers, "customers", engine)
    return build_features_from_scans(tx, as_of, cfg, engine, cust, categories)


def build_features_by_part(
    transactions: str | Path,
    out_dir: str | Path,
    as_of: date,
    cfg: FeatureConfig | None = None,
    engine: str = DEFAULT_ENGINE,
    categories: list[str] | None = None,
) -> dict:
    """`build_features_from_parquet` on a folder of clean parts that each hold whole customers,
    as `clean_parquet` writes them (split by a hash of the customer id), written as a folder of
    feature snapshot parts (`out_dir`/part-NNNNN.parquet, one per transaction part).

    Every feature is one customer's (the windows run over a customer's orders), so a part's
    table is the rows the whole log's table has for its customers, once the category columns
    are the whole log's: the top categories are ranked over all parts first (one aggregation),
    then each part is built with them. Memory is a part's, not the log's, and the engine does
    not spill. Returns rows, parts, categories and the definition hash; an InputError when a
    customer turns up in two parts (parts not split by customer)."""
    from features.snapshot import write_snapshot

    cfg = cfg or FeatureConfig()
    source = Path(transactions)
    parts = sorted(source.glob("*.parquet")) if source.is_dir() else [source]
    if not parts:
        raise InputError(f"transactions {source}: no .parquet parts")
    if categories is None:
        scanned = scan_clean(source, "transactions", engine)
        categories = scanned_top_categories(scanned, as_day(as_of), cfg.top_categories)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.parquet"):
        old.unlink()
    rows, written, meta = 0, [], {}
    for i, part in enumerate(parts):
        table = build_features_from_parquet(part, as_of, cfg, engine, categories=categories)
        if not len(table):
            continue
        path = out / f"part-{i:05d}.parquet"
        meta = write_snapshot(table, path)
        written.append(path)
        rows += len(table)
    if written:
        con = duckdb_connection()
        files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in written)
        ((distinct,),) = con.execute(
            f"SELECT count(DISTINCT customer_id) FROM read_parquet([{files}])"
        ).fetchall()
        if distinct != rows:
            raise InputError(
                f"transactions {source}: {rows - distinct:,} customers have orders in more "
                "than one part; build by part needs parts split by customer (`clean_parquet`)"
            )
    return {
        "rows": rows,
        "parts": len(written),
        "categories": categories,
        "definition_hash": meta.get("definition_hash"),
    }


def build_features_from_scans(
    tx: nw.LazyFrame,
    as_of: date,
    cfg: FeatureConfig | None = None,
    engine: str = DEFAULT_ENGINE,
    customers: nw.LazyFrame | None = None,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """`build_features_from_parquet` on tables `scan_clean` already scanned and checked."""
    cfg = cfg or FeatureConfig()
    tx, share, tag_codes, cats, tags, notes = scanned_plan(tx, as_day(as_of), cfg, categories)
    cust = None if customers is None else scanned_attributes(customers)
    out = _feature_table(tx, cfg, share, cust, cats, tags, tag_codes)
    _describe(out, as_of, cfg, cats, tags, notes, engine)
    return out


def scanned_plan(tx: nw.LazyFrame, day: int, cfg: FeatureConfig, categories: list[str] | None):
    """What `definitions.customer_features` reads from a scanned log as of `day`: (the prepared
    transactions with coded categories, share column codes, the codes of the other categories
    the tags name, the share categories, the tags computed, a note per tag skipped)."""
    columns = tx.collect_schema().names()
    cats = (
        scanned_top_categories(tx, day, cfg.top_categories)
        if categories is None
        else fixed_categories(categories, columns)
    )
    tags, notes, extra = tag_plan(cfg, columns, cats)
    tx, codes = code_categories(prepare_scanned(tx, day), cats + extra)
    share = {k: v for k, v in codes.items() if k in cats}
    tag_codes = {k: v for k, v in codes.items() if k in extra}
    return tx, share, tag_codes, cats, tags, notes


def build_labels(
    transactions: pd.DataFrame,
    cutoffs: list[date],
    repurchase_days: int = 30,
    churn_days: int = 90,
    engine: str = DEFAULT_ENGINE,
) -> pd.DataFrame:
    """customer_id, cutoff, repurchase, churn for every cutoff (customers active by then)."""
    prepared = prepare_transactions(transactions, as_of=0)  # labels use literal cutoffs
    tx = to_lazy(prepared.table, engine)
    types = {
        "customer_id": pa.large_string(),
        "cutoff_day": pa.int32(),
        "repurchase": pa.bool_(),
        "churn": pa.bool_(),
    }
    frames = [
        to_pandas(definitions.labels(tx, as_day(d), repurchase_days, churn_days), types)
        for d in cutoffs
    ]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(types))
    days = out.pop("cutoff_day").to_numpy().astype("timedelta64[D]")
    out.insert(1, "cutoff", (EPOCH + days).astype("datetime64[ns]"))
    return out  # sorted by cutoff (the order of `cutoffs`), then customer id
