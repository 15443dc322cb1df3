"""Strict request validation: every row checked against the champions' feature schema.

Unknown fields, wrong types (a number sent as text), missing features, NaN or infinity, an
empty batch and a batch over the limit are refused with a message naming the row and the field;
explicit nulls are allowed where a feature can be missing (e.g. the purchase gap of a customer
with one order).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import pandas as pd
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

from serving.models import ModelSet

Number = Annotated[float | None, Field(allow_inf_nan=False, strict=True)]


class BadRequest(ValueError):
    """A request the caller must fix (HTTP 400); the message says what and where."""


@cache
def row_model(numeric: tuple[str, ...], categories: tuple[str, ...]):
    fields = {"customer_id": (Annotated[str, Field(min_length=1, strict=True)], ...)}
    fields |= {c: (Number, ...) for c in numeric}
    fields |= {c: (Annotated[str | None, Field(strict=True)], None) for c in categories}
    model = create_model("CustomerFeatures", __config__=ConfigDict(extra="forbid"), **fields)
    return TypeAdapter(list[model])


def feature_rows(rows: object, models: ModelSet, limit: int) -> pd.DataFrame:
    """The validated rows as a feature table (numbers as float64, categories as text)."""
    if not isinstance(rows, list):
        raise BadRequest("customers: expected a list of customer feature rows")
    if not rows:
        raise BadRequest("customers: the batch is empty; send at least one customer")
    if len(rows) > limit:
        raise BadRequest(f"customers: {len(rows):,} rows, over the limit of {limit:,} per request")
    adapter = row_model(tuple(models.numeric_columns), tuple(models.category_columns))
    try:
        valid = adapter.validate_python(rows)
    except ValidationError as exc:
        raise BadRequest(describe(exc, "customers")) from None
    frame = pd.DataFrame([r.model_dump() for r in valid])
    for c in models.numeric_columns:
        frame[c] = frame[c].astype("float64")
    return frame


def describe(exc: ValidationError, root: str, most: int = 5) -> str:
    """'customers[3].recency_days: Input should be a finite number; ...' (first few errors)."""
    parts = []
    for err in exc.errors()[:most]:
        loc = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        msg = {"missing": "missing feature", "extra_forbidden": "unknown field"}.get(
            err["type"], err["msg"]
        )
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - most
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
