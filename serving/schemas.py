"""Strict request validation: every row checked against the champions' feature schema.

Unknown fields, wrong types (a number sent as text), missing features, NaN or infinity, an
empty batch and a batch over the limit are refused with a message naming the row and the field;
explicit nulls are allowed where a feature can be missing (e.g. the purchase gap of a customer
with one order).
"""

from __future__ import annotations

from datetime import date
from functools import cache
from operator import itemgetter
from typing import Annotated, Literal, NotRequired, Required

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from serving.models import ModelSet

Number = Annotated[float | None, Field(allow_inf_nan=False, strict=True)]


class BadRequest(ValueError):
    """A request the caller must fix (HTTP 400); the message says what and where."""


@cache
def row_model(numeric: tuple[str, ...], categories: tuple[str, ...]) -> TypeAdapter:
    """Validator of a batch of feature rows; rows come back as plain dicts (a TypedDict, not
    models: at one customer a request, building and dumping models cost more than the trees)."""
    fields = {"customer_id": Required[Annotated[str, Field(min_length=1, strict=True)]]}
    fields |= {c: Required[Number] for c in numeric}
    fields |= {c: NotRequired[Annotated[str | None, Field(strict=True)]] for c in categories}
    row = TypedDict("CustomerFeatures", fields)
    row.__pydantic_config__ = ConfigDict(extra="forbid")
    return TypeAdapter(list[row])


def feature_rows(rows: object, models: ModelSet, limit: int) -> pd.DataFrame:
    """The validated rows as a feature table (numbers as one float64 block, categories as
    text)."""
    _check_batch(rows, "customers", limit)
    numeric, categories = models.numeric_columns, models.category_columns
    try:
        valid = row_model(tuple(numeric), tuple(categories)).validate_python(rows)
    except ValidationError as exc:
        raise BadRequest(describe(exc, "customers")) from None
    numbers = itemgetter(*numeric) if len(numeric) > 1 else lambda r: [r[numeric[0]]]
    block = np.array([numbers(r) for r in valid], dtype="float64")  # None -> NaN
    frame = pd.DataFrame(block, columns=numeric)
    frame.insert(0, "customer_id", [r["customer_id"] for r in valid])
    for c in categories:
        frame[c] = pd.Series([r.get(c) for r in valid], dtype=object)
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


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: Annotated[str, Field(min_length=1)]
    order_date: Annotated[date, Field(strict=False)]  # "YYYY-MM-DD"
    amount: Annotated[float, Field(gt=0, allow_inf_nan=False)]  # refunds: is_refund, not a sign
    is_refund: bool = False
    category: str | None = None
    channel: Literal["online", "offline"] | None = None
    order_id: str | None = None


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: Annotated[str, Field(min_length=1)]
    signup_date: Annotated[date | None, Field(strict=False)] = None
    age: Annotated[float | None, Field(ge=0, le=120, allow_inf_nan=False)] = None
    gender: Literal["male", "female"] | None = None
    province: str | None = None
    region: str | None = None  # 省-市
    industry: str | None = None


TRANSACTIONS = TypeAdapter(list[Transaction])
CUSTOMERS = TypeAdapter(list[Customer])


def validated(rows: object, adapter: TypeAdapter, name: str, limit: int) -> pd.DataFrame:
    """`rows` checked as a batch of `name` (size, then every field) and made a frame."""
    _check_batch(rows, name, limit)
    try:
        valid = adapter.validate_python(rows)
    except ValidationError as exc:
        raise BadRequest(describe(exc, name)) from None
    return pd.DataFrame([r.model_dump() for r in valid])


def transactions_frame(rows: object, limit: int) -> pd.DataFrame:
    """Validated raw transactions as the clean-transaction columns the features read."""
    frame = validated(rows, TRANSACTIONS, "transactions", limit)
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    frame["amount"] = frame["amount"].where(~frame["is_refund"], -frame["amount"])
    return frame


def customers_frame(rows: object, limit: int) -> pd.DataFrame | None:
    if rows is None:
        return None
    frame = validated(rows, CUSTOMERS, "customers", limit)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    if frame["customer_id"].duplicated().any():
        dup = frame.loc[frame["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise BadRequest(f"customers: customer_id {dup!r} appears twice")
    return frame


def as_of_date(value: object) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise BadRequest(f"as_of: {value!r} is not a date as YYYY-MM-DD")


def _check_batch(rows: object, name: str, limit: int) -> None:
    if not isinstance(rows, list):
        raise BadRequest(f"{name}: expected a list of rows")
    if not rows:
        raise BadRequest(f"{name}: the batch is empty; send at least one row")
    if len(rows) > limit:
        raise BadRequest(f"{name}: {len(rows):,} rows, over the limit of {limit:,} per request")


class SegmentAnswer(BaseModel):
    id: str
    name: str
    name_zh: str
    strategy: str
    strategy_zh: str


class CustomerAnswer(BaseModel):
    customer_id: str
    segments: dict[str, SegmentAnswer]  # scheme -> the customer's segment
    repurchase_probability: float | None = None  # P(order within the horizon), calibrated
    churn_probability: float | None = None  # P(no order within the churn window), calibrated


class Answer(BaseModel):
    """What /predict and /score_transactions return (the OpenAPI schema; the service encodes
    the same shape itself, in one call)."""

    as_of: str | None = None  # /score_transactions only
    customers: list[CustomerAnswer]
    versions: dict[str, str]  # registered model name -> champion version used
