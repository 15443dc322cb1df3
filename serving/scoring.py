"""What the champions answer for a batch of customers, column by column: one computation
(`ModelSet.score`) with two renderings, so the service and batch scoring never disagree.

- `Scores.answers`: one JSON-ready dict per customer (/predict, /score_transactions);
- `Scores.to_arrow`: one flat Arrow table (`custseg score`'s Parquet parts), the same fields
  under the same names, each scheme's segment spread over `segment_<scheme>` (its id) and
  `segment_<scheme>_<field>` for the segment's name, name_zh, strategy and strategy_zh.

Every column is built with array operations (no Python loop over rows) except in `answers`,
whose output is per row by nature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from core.catalog import PREDICTION_TARGETS as TARGETS
from features.build import tag_lists
from features.vector import to_arrow
from training.prediction.clv import VALUE_COLUMNS

PROBABILITY_FIELDS = tuple(f"{t}_probability" for t in TARGETS)
VALUE_FIELDS = VALUE_COLUMNS  # what the value champion answers per customer (as scores.csv)
NUMERIC_VALUE_FIELDS = tuple(c for c in VALUE_FIELDS if c != "next_order_date")
SEGMENT_FIELDS = ("name", "name_zh", "strategy", "strategy_zh")  # besides the segment's id
TEXT_LIST = pa.list_(pa.string())


@dataclass
class Scores:
    """One batch of customers as the champions score it, column-wise."""

    customer_id: pd.Series
    segments: dict[str, np.ndarray]  # scheme -> segment key per customer
    numbers: dict[str, np.ndarray]  # probabilities and numeric value fields; NaN/inf: null
    next_order_date: np.ndarray  # "YYYY-MM-DD" or None per customer
    value_tier: np.ndarray | None  # the value_tiers segment's name (None: scheme not served)
    next_best: list[list[str]] | None  # None: no customer sent products (all [])
    tags: dict[str, np.ndarray]  # dynamic tag -> active per customer

    def __len__(self) -> int:
        return len(self.customer_id)

    def answers(self, segments: dict[str, dict[str, dict]]) -> list[dict]:
        """Per customer the service's answer; `segments`: `ModelSet.answers` (scheme -> key ->
        the segment as an answer carries it)."""
        n = len(self)
        fields = {c: _finite(self.numbers[c]) for c in PROBABILITY_FIELDS}
        fields |= {c: _finite(self.numbers[c]) for c in NUMERIC_VALUE_FIELDS}
        fields["next_order_date"] = self.next_order_date.tolist()
        fields = {c: fields[c] for c in (*PROBABILITY_FIELDS, *VALUE_FIELDS)}
        fields["value_tier"] = [None] * n if self.value_tier is None else self.value_tier.tolist()
        fields["next_best"] = self.next_best or [[] for _ in range(n)]
        active = tag_lists(self.tags, n)
        return [
            {
                "customer_id": cid,
                "segments": {s: segments[s][keys[i]] for s, keys in self.segments.items()},
                **{k: v[i] for k, v in fields.items()},
                "active_tags": active[i],
            }
            for i, cid in enumerate(self.customer_id.tolist())
        ]

    def to_arrow(self, segments: dict[str, dict[str, dict]]) -> pa.Table:
        """The answers as one flat table with `output_schema(segments)`: nulls where the
        answers have null, lists for next_best and active_tags."""
        n = len(self)
        cols: dict[str, pa.Array] = {"customer_id": to_arrow(self.customer_id).cast(pa.string())}
        for scheme in sorted(segments):
            cols |= _segment_columns(scheme, self.segments[scheme], segments[scheme])
        for c in (*PROBABILITY_FIELDS, *NUMERIC_VALUE_FIELDS):
            values = np.asarray(self.numbers[c], dtype="float64")
            cols[c] = pa.array(values, pa.float64(), mask=~np.isfinite(values))
        dates = pa.array(self.next_order_date, pa.string(), from_pandas=True)
        cols["next_order_date"] = dates.cast(pa.date32())
        tier = self.value_tier if self.value_tier is not None else np.full(n, None, object)
        cols["value_tier"] = pa.array(tier, pa.string(), from_pandas=True)
        cols["next_best"] = (
            _empty_lists(n) if self.next_best is None else pa.array(self.next_best, TEXT_LIST)
        )
        cols["active_tags"] = _tag_lists(self.tags, n)
        schema = output_schema(segments)
        return pa.table([cols[f.name] for f in schema], schema=schema)


def output_schema(segments: dict[str, dict]) -> pa.Schema:
    """The columns of `Scores.to_arrow` for a model set whose schemes are `segments`' keys:
    fixed by the models, never by the data (every part of a batch run has the same)."""
    fields = [pa.field("customer_id", pa.string())]
    for scheme in sorted(segments):
        fields.append(pa.field(f"segment_{scheme}", pa.string()))
        fields += [pa.field(f"segment_{scheme}_{f}", pa.string()) for f in SEGMENT_FIELDS]
    fields += [pa.field(c, pa.float64()) for c in PROBABILITY_FIELDS]
    fields += [
        pa.field(c, pa.date32() if c == "next_order_date" else pa.float64()) for c in VALUE_FIELDS
    ]
    fields += [pa.field("value_tier", pa.string())]
    fields += [pa.field("next_best", TEXT_LIST), pa.field("active_tags", TEXT_LIST)]
    return pa.schema(fields)


def _segment_columns(scheme: str, keys: np.ndarray, answers: dict[str, dict]) -> dict:
    """segment_<scheme> (the id) and its fields, by one hash lookup of the keys."""
    known = list(answers)
    pos = pd.Index(known).get_indexer(np.asarray(keys, dtype=object))
    if (pos < 0).any():  # a model that assigns a segment it does not describe: a bug
        raise ValueError(f"scheme {scheme}: segment {keys[np.argmax(pos < 0)]!r} is not described")
    take = pa.array(pos, pa.int64())
    out = {f"segment_{scheme}": pa.array([answers[k]["id"] for k in known], pa.string()).take(take)}
    for field in SEGMENT_FIELDS:
        values = pa.array([answers[k][field] for k in known], pa.string())
        out[f"segment_{scheme}_{field}"] = values.take(take)
    return out


def _empty_lists(n: int) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()))


def _tag_lists(hits: dict[str, np.ndarray], n: int) -> pa.Array:
    """Per row the active tags, in the tags' order (as `tag_lists`), from the hit matrix."""
    if not hits:
        return _empty_lists(n)
    matrix = np.column_stack([np.asarray(h, bool) for h in hits.values()])
    _, cols = np.nonzero(matrix)  # row-major: each row's tags in order
    offsets = np.concatenate([[0], np.cumsum(matrix.sum(axis=1))]).astype(np.int32)
    names = pa.array(list(hits), pa.string()).take(pa.array(cols, pa.int64()))
    return pa.ListArray.from_arrays(pa.array(offsets), names)


def _finite(values: np.ndarray) -> list:
    """Numbers as a JSON-ready list: NaN and +-inf as None (never NaN in a response)."""
    values = np.asarray(values, dtype="float64")
    finite = np.isfinite(values)
    if finite.all():
        return values.tolist()
    out = values.astype(object)
    out[~finite] = None
    return out.tolist()
