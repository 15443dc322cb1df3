"""Cleaning a transaction log larger than memory: `clean_parquet`, Parquet in, Parquet out.

    result = clean_parquet("raw/transactions/", "clean/", CleaningConfig(...))
    build_features_from_parquet("clean/transactions.parquet", as_of)   # a folder of parts

The rules are `clean`'s own, run part by part: DuckDB (spilling to disk under its memory limit,
see `features.engines.DUCKDB_ENV`) splits the raw log by a hash of the customer id into parts
of about `rows_per_part` rows, and each part is read, typed and cleaned in memory exactly as
`read_table` + `clean` would the whole file. Every rule but one looks at one customer's rows
at a time (copies of a row, refunds of the customer's orders, test ids, dates, amounts), so a
part holding all of a customer's rows cleans them as the whole log would. The exception is
extreme_amount, whose threshold is `extreme_factor` x the mean amount of the whole log: each
part reports the sum and count behind its mean, and the parts whose rows the log's threshold
treats differently from their own are cleaned again with it (`CleaningConfig.
extreme_threshold`). Row numbers (`source_row`) count rows through the raw parts in file-name
order, as one file of all the parts would. The tests check the result equals `clean` on a
generated log.

Limits: the customer table is not taken here (its rules, merging duplicate customers across
the whole table, run in memory: `clean`); the typing checks that look at a column's share of
unreadable values (`max_invalid_share`, dates read both day- and month-first) and the region
column's country test look at one part at a time.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import catalog
from core.errors import InputError
from features.cleaning import CleaningConfig, clean
from features.cleaning.transactions import extreme_note
from features.contract import (
    TRANSACTIONS,
    _source_names,
    raw_columns,
    raw_frame,
    type_table,
)

__all__ = ["PartsResult", "clean_parquet"]

ROWS_PER_PART = 4_000_000  # a part's clean peaks at about 2.5 GB (bench_scale.py)
_PART = "__part"
_ROW = "__source_row"
_COUNTED = re.compile(r"^([^{}]*?: )(\d+)( unreadable value[^{}]*)$")


@dataclass
class PartsResult:
    paths: dict[str, Path]  # transactions and changes (folders of parts), audit.json
    audit: dict  # `CleanResult.audit`, summed over the parts
    parts: int
    recleaned: int  # parts cleaned a second time with the whole log's extreme_amount threshold


def parquet_files(source: str | Path) -> list[Path]:
    """A Parquet file, or the .parquet files under a folder in name order."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*.parquet") if p.is_file())
        if not files:
            raise InputError(f"{source}: no .parquet files in the folder")
        return files
    if not source.exists():
        raise InputError(f"{source}: no such file")
    return [source]


def clean_parquet(
    source: str | Path,
    out_dir: str | Path,
    config: CleaningConfig | None = None,
    *,
    column_map: dict | None = None,
    rows_per_part: int = ROWS_PER_PART,
    parts: int | None = None,
    max_invalid_share: float = 0.2,
) -> PartsResult:
    """Clean the raw transaction log `source` (a Parquet file or a folder of parts) into
    `out_dir`: transactions.parquet/ and changes.parquet/ (folders of Parquet parts) and
    audit.json. `parts` (default: rows / `rows_per_part`) sets how many parts."""
    cfg = config or CleaningConfig()
    files = parquet_files(source)
    n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if not n_rows:
        raise InputError(f"{source}: the log has no rows")
    n_parts = parts or max(1, math.ceil(n_rows / rows_per_part))
    out = Path(out_dir)
    split_dir = out / "_split"
    shutil.rmtree(split_dir, ignore_errors=True)
    paths = {
        "transactions": out / catalog.CLEAN_TRANSACTIONS,
        "changes": out / catalog.CHANGES,
        "audit": out / catalog.AUDIT_JSON,
    }
    for p in (paths["transactions"], paths["changes"]):
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir(parents=True)
    id_column = _source_names(TRANSACTIONS, column_map)["customer_id"]
    _split(files, split_dir, n_parts, id_column)

    def clean_part(k: int, part_cfg: CleaningConfig):
        t = _read_part(split_dir / f"{_PART}={k}", str(source), column_map, max_invalid_share)
        if t is None:
            return None
        r = clean(t, None, part_cfg)
        name = f"part-{k:05d}.parquet"
        us = {"coerce_timestamps": "us", "allow_truncated_timestamps": True}
        r.transactions.to_parquet(paths["transactions"] / name, index=False, **us)
        r.changes.to_parquet(paths["changes"] / name, index=False)
        return r.audit, r.stats.get("extreme_amount")

    done = {k: clean_part(k, cfg) for k in range(n_parts)}
    done = {k: v for k, v in done.items() if v is not None}
    recleaned = 0
    if cfg.extreme_threshold is None:
        stats = [s for _, s in done.values() if s]
        total, count = sum(s["sum"] for s in stats), sum(s["count"] for s in stats)
        threshold = cfg.extreme_factor * total / count if count else np.inf
        fixed = replace(cfg, extreme_threshold=float(threshold))
        for k, (_, s) in list(done.items()):
            if s and _treats_differently(s, threshold):
                done[k] = clean_part(k, fixed)
                recleaned += 1
    shutil.rmtree(split_dir, ignore_errors=True)
    audit = merge_audits([a for a, _ in done.values()], str(source))
    audit["notes"].append(  # the log's threshold, as `clean` notes it
        extreme_note(cfg.extreme_factor, threshold)
        if cfg.extreme_threshold is None
        else [n for a, _ in done.values() for n in a["notes"] if "extreme_amount" in n][0]
    )
    audit["parts"] = {"count": len(done), "recleaned_with_log_threshold": recleaned}
    audit["outputs"] = {k: p.name for k, p in paths.items()}
    paths["audit"].write_text(json.dumps(audit, indent=2, ensure_ascii=False, default=str))
    return PartsResult(paths, audit, len(done), recleaned)


def _treats_differently(stats: dict, threshold: float) -> bool:
    """Whether `threshold` puts some row of the part on the other side than the part's own
    threshold did (the part's amounts above half its threshold are at hand)."""
    own = stats["threshold"]
    if own == threshold:
        return False
    near = stats["near"]
    if near is None or not np.isfinite(own) or not np.isfinite(threshold):
        return True
    if threshold <= own / 2:
        return True  # amounts below half of its own threshold were not kept
    lo, hi = min(own, threshold), max(own, threshold)
    return bool(((near > lo) & (near <= hi)).any())


def _split(files: list[Path], out: Path, n_parts: int, id_column: str) -> None:
    """The raw rows, with their row number across the files, into `n_parts` hive partitions
    by a hash of the customer id (a missing id goes to one part like any value)."""
    from features.engines import _quote, duckdb_connection

    offsets = np.cumsum([0] + [pq.ParquetFile(f).metadata.num_rows for f in files[:-1]])
    con = duckdb_connection()
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    values = ", ".join(
        "('" + str(f).replace("'", "''") + f"', {int(o)})"
        for f, o in zip(files, offsets, strict=True)
    )
    target = str(out).replace("'", "''")
    key = _quote(id_column)
    con.execute(
        f"""COPY (
            SELECT r.* EXCLUDE (filename, file_row_number),
                   o.start + r.file_row_number AS {_ROW},
                   hash(regexp_replace(trim(CAST(r.{key} AS VARCHAR)), '\\.0+$', ''))
                       % {int(n_parts)} AS {_PART}
            FROM read_parquet([{listing}], filename = true, file_row_number = true,
                              union_by_name = true) AS r
            JOIN (VALUES {values}) AS o(filename, start) USING (filename)
        ) TO '{target}' (FORMAT parquet, PARTITION_BY ({_PART}))"""
    ).fetchall()


def _read_part(folder: Path, source: str, column_map, max_invalid_share: float):
    """One part as `read_table` types a file (None when no row fell into it), in the rows'
    order in the raw log, numbered by their row there."""
    if not folder.exists():
        return None
    table = pq.read_table(folder)
    if _PART in table.column_names:
        table = table.drop_columns([_PART])
    if table.num_rows == 0:
        return None
    table = table.take(pc.sort_indices(table, [(_ROW, "ascending")]))
    rows = table[_ROW].to_numpy()
    table = table.drop_columns([_ROW])
    string_cols, nan_cols = raw_columns(TRANSACTIONS, column_map)
    frame = raw_frame(table, source, string_cols, nan_cols)
    t = type_table(frame, TRANSACTIONS, source, column_map, max_invalid_share)
    t.row_numbers = rows
    return t


def merge_audits(audits: list[dict], source: str) -> dict:
    """The audits of the parts as one: counts summed, missing rates weighted by rows."""
    first = audits[0]
    out = {k: v for k, v in first.items() if k not in ("tables", "rules", "missing_rates")}
    tables: dict[str, dict] = {}
    for a in audits:
        for name, t in a["tables"].items():
            m = tables.setdefault(
                name,
                {
                    **t,
                    "source": source,
                    "input_rows": 0,
                    "kept_rows": 0,
                    "dropped_rows": 0,
                    "dropped_by_rule": defaultdict(int),
                },
            )
            for k in ("input_rows", "kept_rows", "dropped_rows"):
                m[k] += t[k]
            for rule, n in t["dropped_by_rule"].items():
                m["dropped_by_rule"][rule] += n
    for t in tables.values():
        t["dropped_by_rule"] = dict(t["dropped_by_rule"])
        t["balanced"] = t["input_rows"] == t["kept_rows"] + t["dropped_rows"]
    out["tables"] = tables

    rules: dict[tuple, dict] = {}
    for a in audits:
        for r in a["rules"]:
            key = (r["table"], r["rule"], r["action"])
            m = rules.setdefault(key, {**r, "rows": 0, "by_column": {}, "reasons": {}})
            m["rows"] += r["rows"]
            for field in ("by_column", "reasons"):
                for k, n in r[field].items():
                    m[field][k] = m[field].get(k, 0) + n
    out["rules"] = [rules[k] for k in sorted(rules)]

    reformatted: dict[str, int] = defaultdict(int)
    for a in audits:
        for k, n in a["reformatted"].items():
            reformatted[k] += n
    out["reformatted"] = dict(reformatted)

    missing: dict[str, dict] = {}
    for name in tables:
        cols: dict[str, dict] = {}
        n_in = sum(a["tables"][name]["input_rows"] for a in audits if name in a["tables"])
        n_out = sum(a["tables"][name]["kept_rows"] for a in audits if name in a["tables"])
        for a in audits:
            t = a["tables"].get(name)
            for col, r in a["missing_rates"].get(name, {}).items():
                m = cols.setdefault(col, {"input": 0.0, "output": None, "key": r["key"]})
                m["input"] += r["input"] * t["input_rows"] / n_in
                if r["output"] is not None and n_out:
                    m["output"] = (m["output"] or 0.0) + r["output"] * t["kept_rows"] / n_out
        for m in cols.values():
            m["input"] = round(m["input"], 6)
            m["output"] = None if m["output"] is None else round(m["output"], 6)
        missing[name] = cols
    out["missing_rates"] = missing
    out["warnings"] = list(dict.fromkeys(w for a in audits for w in a["warnings"]))
    notes: dict[str, int | None] = {}  # "... {n} unreadable value(s) ..." summed over parts
    for n in (n for a in audits for n in a["notes"] if "extreme_amount threshold" not in n):
        m = _COUNTED.match(n)
        key, count = (m.group(1) + "{}" + m.group(3), int(m.group(2))) if m else (n, None)
        notes[key] = None if count is None else (notes.get(key) or 0) + count
    out["notes"] = [k if c is None else k.format(c) for k, c in notes.items()]
    return out
