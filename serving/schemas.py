"""Strict request validation: every row checked against the champions' feature schema.

Unknown fields, wrong types (a number sent as text), missing features, NaN or infinity, an
empty batch and a batch over the limit are refused with a message naming the row and the field;
explicit nulls are allowed where a feature can be missing (e.g. the purchase gap of a customer
with one order). Columns of the feature table that no model reads (e.g. `region`) are accepted,
checked and dropped, so a row of `custseg features`' table is sent as it is.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from operator import itemgetter
from typing import Annotated, Any, Literal, NotRequired, Required

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from features import registry
from serving.models import ModelSet


def _number(feature: registry.Feature | None) -> object:
    """A finite JSON number (no text, no bool) in the feature's range: >= 0 unless signed, at
    most `upper`, whole for counts; null only where the feature can be missing (unknown names:
    lenient)."""
    optional = feature is None or feature.optional
    low = None if feature is None or feature.signed else 0
    high = None if feature is None else feature.upper
    whole = 1.0 if feature is not None and feature.whole else None
    kind = float | None if optional else float
    return Annotated[
        kind, Field(allow_inf_nan=False, strict=True, ge=low, le=high, multiple_of=whole)
    ]


def _text(feature: registry.Feature | None) -> object:
    """Text; one of the feature's levels where it has a closed set (an unknown stage or gender
    would be scored as "other", silently)."""
    optional = feature is None or feature.optional
    if feature is not None and feature.levels is not None:  # a Literal is exact already
        kind = Literal[feature.levels]
        return kind | None if optional else kind
    return Annotated[str | None if optional else str, Field(strict=True)]


MAX_RECENT_PRODUCTS = 200  # recent_products per row, at most
MAX_PRODUCT_CHARS = 200  # a product id, at most (the log's product column, as text)
Product = Annotated[str, Field(min_length=1, max_length=MAX_PRODUCT_CHARS, strict=True)]
RecentProducts = Annotated[list[Product], Field(max_length=MAX_RECENT_PRODUCTS, strict=True)]


class BadRequest(ValueError):
    """A request the caller must fix (HTTP 400); the message says what and where."""


@cache
def row_type(
    numeric: tuple[str, ...], categories: tuple[str, ...], ignored: tuple[str, ...] = ()
) -> type:
    """One feature row, as a TypedDict: rows come back as plain dicts (not models: at one
    customer a request, building and dumping models cost more than the trees). Every feature
    is required (null is sent explicitly where a feature can be missing); `ignored` columns (of
    the feature table, not read) may be sent, checked the same way."""
    known = {f.name: f for f in registry.table([*numeric, *categories])}
    fields = {"customer_id": Required[Annotated[str, Field(min_length=1, strict=True)]]}
    fields |= {c: Required[_number(known.get(c))] for c in numeric}
    fields |= {c: Required[_text(known.get(c))] for c in categories}
    # the customer's recent products (optional): what its next-best products start from
    fields["recent_products"] = NotRequired[RecentProducts | None]
    for c in ignored:
        feature = known.get(c)
        kind = _text if feature is not None and feature.kind == "category" else _number
        fields[c] = NotRequired[kind(feature)]
    row = TypedDict("CustomerFeatures", fields)
    row.__pydantic_config__ = ConfigDict(extra="forbid")
    return row


@cache
def row_model(
    numeric: tuple[str, ...], categories: tuple[str, ...], ignored: tuple[str, ...] = ()
) -> TypeAdapter:
    """Validator of a batch of feature rows (`row_type`)."""
    return TypeAdapter(list[row_type(numeric, categories, ignored)])


@cache
def body_model(
    numeric: tuple[str, ...], categories: tuple[str, ...], ignored: tuple[str, ...], limit: int
) -> TypeAdapter:
    """Validator of a whole /predict body whose every row is right, read from its JSON bytes
    in one pass (`request_rows`)."""
    rows = Annotated[
        list[row_type(numeric, categories, ignored)], Field(min_length=1, max_length=limit)
    ]
    body = TypedDict("PredictBody", {"customers": Required[rows]})  # noqa: UP013 - built at run time
    body.__pydantic_config__ = ConfigDict(extra="forbid")
    return TypeAdapter(body)


def feature_rows(rows: object, models: ModelSet, limit: int) -> pd.DataFrame:
    """The validated rows as a feature table (numbers as one float64 block, categories as
    text)."""
    return predict_rows(rows, models, limit)[0]


def predict_rows(
    rows: object, models: ModelSet, limit: int
) -> tuple[pd.DataFrame, list[list[str]] | None]:
    """`feature_rows`, and per row its `recent_products` ([] where absent or null; None when
    no row sends any)."""
    return rows_frame(valid_rows(rows, models, limit), models)


def valid_rows(rows: object, models: ModelSet, limit: int) -> list[dict]:
    """`rows` checked against the champions' schema (BadRequest naming the row and field),
    each customer once: plain dicts, made a frame by `rows_frame` (the service does that once
    for all the requests it scores together)."""
    numeric, categories = models.numeric_columns, models.category_columns
    adapter = row_model(tuple(numeric), tuple(categories), tuple(models.ignored_columns))
    return _each_customer_once(_validate(rows, adapter, "customers", limit))


def request_rows(request: PredictRequest, models: ModelSet, limit: int) -> list[dict]:
    """`valid_rows` of a /predict request. A body that BentoML handed over unparsed is read
    straight from its JSON bytes into checked rows when every row is right (a 500-row body:
    3.2 ms, against 5.0 ms for a generic parse and then the check); otherwise it is parsed
    the generic way and checked by `valid_rows`, whose errors name the row and the field."""
    body = request.raw_body
    if body is None:
        return valid_rows(request.customers, models, limit)
    numeric, categories = tuple(models.numeric_columns), tuple(models.category_columns)
    adapter = body_model(numeric, categories, tuple(models.ignored_columns), limit)
    try:
        rows = adapter.validate_json(body)["customers"]
    except ValidationError as exc:  # say what is wrong, as the generic path does
        errors = exc.errors(include_url=False, include_input=False)
        body_ok = all(e["loc"][:1] == ("customers",) for e in errors)  # no top-level mistake
        for err in errors if body_ok else ():
            if err["type"] == "too_long" and err["loc"] == ("customers",):  # no second parse
                sent = err["ctx"]["actual_length"]
                raise BadRequest(_over_limit("customers", sent, limit)) from None
        return valid_rows(request.parse(body).customers, models, limit)
    return _each_customer_once(rows)


def _each_customer_once(valid: list[dict]) -> list[dict]:
    if len(valid) > 1:  # one customer a request: the common case, nothing to compare
        ids = pd.Series([r["customer_id"] for r in valid], dtype=object)
        _refuse_repeats(ids, "customers", "customer_id", "customer")
    return valid


def rows_frame(valid: list[dict], models: ModelSet) -> tuple[pd.DataFrame, list[list[str]] | None]:
    """Valid rows (`valid_rows`) as a feature table (numbers as one float64 block, categories
    as text), and per row its `recent_products` ([] where absent or null; None when no row
    sends any)."""
    numeric, categories = models.numeric_columns, models.category_columns
    numbers = itemgetter(*numeric) if len(numeric) > 1 else lambda r: [r[numeric[0]]]
    block = np.array([numbers(r) for r in valid], dtype="float64")  # None -> NaN
    columns = {"customer_id": np.array([r["customer_id"] for r in valid], dtype=object)}
    columns |= {c: block[:, i] for i, c in enumerate(numeric)}
    columns |= {c: np.array([r[c] for r in valid], dtype=object) for c in categories}
    # dynamic tag scores read by no model: kept where sent, they decide `active_tags`
    tags = [registry.TAG_PREFIX + t for t in models.tags]
    columns |= {
        c: np.array([r.get(c) for r in valid], dtype="float64")
        for c in tags
        if any(c in r for r in valid)
    }
    products = [r.get("recent_products") or [] for r in valid]
    # built at once: inserting columns one by one cost more
    return pd.DataFrame(columns), products if any(products) else None


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


def _iso_date(value: object) -> object:
    """Dates come as "YYYY-MM-DD" text only (pydantic's lax mode would read 1718000000 as an
    epoch timestamp; Python also reads 20260518 and 2026-W20-1), years 1900-2200 (pandas'
    timestamps end in 2262)."""
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if 1900 <= day.year <= 2200:
                return day
            raise ValueError("expected a year between 1900 and 2200")
    raise ValueError("expected a date as YYYY-MM-DD")


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: Annotated[str, Field(min_length=1)]
    order_date: IsoDate
    # refunds: is_refund, not a sign; the cap keeps sums of a batch finite
    amount: Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)]
    is_refund: bool = False
    category: str | None = None
    channel: Literal["online", "offline"] | None = None
    order_id: str | None = None
    product: Product | None = None  # what the customer's next-best products start from


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: Annotated[str, Field(min_length=1)]
    signup_date: IsoDate | None = None
    age: Annotated[float | None, Field(ge=0, le=120, allow_inf_nan=False)] = None
    gender: Literal["male", "female"] | None = None
    province: str | None = None
    region: str | None = None  # 省-市
    industry: str | None = None


TRANSACTIONS = TypeAdapter(list[Transaction])
CUSTOMERS = TypeAdapter(list[Customer])


def _validate(rows: object, adapter: TypeAdapter, name: str, limit: int) -> list:
    """`rows` checked as a batch of `name`: size, then every field (BadRequest naming them)."""
    _check_batch(rows, name, limit)
    try:
        return adapter.validate_python(rows)
    except ValidationError as exc:
        raise BadRequest(describe(exc, name)) from None


def validated(rows: object, adapter: TypeAdapter, name: str, limit: int) -> pd.DataFrame:
    """`rows` validated as a batch of `name` and made a frame."""
    return pd.DataFrame([r.model_dump() for r in _validate(rows, adapter, name, limit)])


def transactions_frame(
    rows: object, limit: int, as_of: date, customer_limit: int | None = None
) -> pd.DataFrame:
    """Validated raw transactions as the clean-transaction columns the features read: at most
    `limit` rows, of at most `customer_limit` distinct customers (counted before the rows are
    validated). Rows sharing an order_id are lines of one order, as in the batch job. Orders
    after `as_of` and exact copies of a row are refused (the batch job would drop them:
    silently here they would move the answer away from it)."""
    _check_batch(rows, "transactions", limit)
    if customer_limit is not None:
        _check_customers(rows, customer_limit)
    frame = validated(rows, TRANSACTIONS, "transactions", limit)
    late = frame.index[frame["order_date"] > as_of]
    if len(late):
        i = late[0]
        raise BadRequest(
            f"transactions[{i}].order_date: {frame.at[i, 'order_date']} is after as_of {as_of}"
            + (f" (and {len(late) - 1} more)" if len(late) > 1 else "")
        )
    _refuse_copies(frame)
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    frame["amount"] = frame["amount"].where(~frame["is_refund"], -frame["amount"])
    return frame


def customers_frame(rows: object, limit: int, ordering: set[str]) -> pd.DataFrame | None:
    """Validated customer rows; each must belong to a customer with transactions here."""
    if rows is None:
        return None
    frame = validated(rows, CUSTOMERS, "customers", limit)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    _refuse_repeats(frame["customer_id"], "customers", "customer_id", "customer")
    stray = frame.index[~frame["customer_id"].isin(ordering)]
    if len(stray):
        i = stray[0]
        raise BadRequest(
            f"customers[{i}].customer_id: {frame.at[i, 'customer_id']!r} has no transactions "
            "in this request"
        )
    return frame


def _refuse_copies(frame: pd.DataFrame) -> None:
    """BadRequest naming the first row that copies an earlier one in every field."""
    if len(frame) < 2 or frame["order_id"].isna().all():  # no ids: equal rows are two orders
        return
    copies = frame.index[frame.duplicated()]
    if len(copies):
        rows = pd.util.hash_pandas_object(frame, index=False)
        first = rows.index[rows == rows[copies[0]]][0]
        raise BadRequest(
            f"transactions[{copies[0]}] repeats transactions[{first}] in every field; send each "
            "order line once"
        )


def _refuse_repeats(values: pd.Series, name: str, field: str, what: str) -> None:
    """BadRequest naming the first row whose `field` repeats an earlier row's (missing values
    never repeat)."""
    if len(values) < 2:  # one customer a request: the common case, nothing to compare
        return
    values = values.dropna()
    again = values[values.duplicated()]
    if len(again):
        first = values.index[values == again.iloc[0]][0]
        raise BadRequest(
            f"{name}[{again.index[0]}].{field}: {again.iloc[0]!r} repeats {name}[{first}]; "
            f"send each {what} once"
        )


def as_of_date(value: object) -> date:
    try:
        day = _iso_date(value)
    except ValueError as exc:
        raise BadRequest(f"as_of: {value!r}: {exc}") from None
    if day > date.today():
        raise BadRequest(f"as_of: {day} is in the future")
    return day


def _check_batch(rows: object, name: str, limit: int) -> None:
    if not isinstance(rows, list):
        raise BadRequest(f"{name}: expected a list of rows")
    if not rows:
        raise BadRequest(f"{name}: the batch is empty; send at least one row")
    if len(rows) > limit:
        raise BadRequest(_over_limit(name, len(rows), limit))


def _over_limit(name: str, rows: int, limit: int) -> str:
    return f"{name}: {rows:,} rows, over the limit of {limit:,} per request"


def _check_customers(rows: list, limit: int) -> None:
    """The batch limit applies to customers, not order rows: count distinct customer ids (text
    ones; any other value is refused by validation next)."""
    ids = {
        r.get("customer_id")
        for r in rows
        if isinstance(r, dict) and isinstance(r.get("customer_id"), str)
    }
    if len(ids) > limit:
        raise BadRequest(
            f"transactions: orders of {len(ids):,} customers, over the limit of {limit:,} "
            "customers per request; split the request by customer"
        )


class PredictRequest(BaseModel):
    """POST /predict. The rows are checked against the champions' schema by `request_rows`
    (it changes with the champions, so it cannot be a static model). BentoML reads the body
    through `model_validate_json`: the bytes are kept unparsed (`raw_body`), for
    `request_rows` to parse and check in one pass."""

    model_config = ConfigDict(extra="forbid")
    customers: Any  # [{"customer_id": ..., <every feature>}, ...]
    _raw_body: bytes | None = PrivateAttr(default=None)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **_: Any) -> PredictRequest:
        request = cls.model_construct(customers=None)
        request._raw_body = json_data.encode() if isinstance(json_data, str) else bytes(json_data)
        return request

    @classmethod
    def parse(cls, body: bytes) -> PredictRequest:
        """The generic parse (a ValidationError says what is wrong with the body's shape)."""
        return super().model_validate_json(body)

    @property
    def raw_body(self) -> bytes | None:
        return self._raw_body


class ScoreRequest(BaseModel):
    """POST /score_transactions; the parts are checked by `transactions_frame`,
    `customers_frame` and `as_of_date`."""

    model_config = ConfigDict(extra="forbid")
    as_of: Any  # "YYYY-MM-DD"
    transactions: Any  # [Transaction, ...]
    customers: Any = None  # [Customer, ...] or absent


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
    # the value champion's (all null without one; a number it cannot give is null too)
    clv: float | None = None  # discounted expected net spend over the value horizon
    expected_orders: float | None = None  # expected order days over the value horizon
    expected_order_value: float | None = None  # expected net spend per order day
    p_alive: float | None = None  # P(still a customer), BG/NBD
    next_order_date: date | None = None  # as-of day + days_to_next_order, "YYYY-MM-DD"
    days_to_next_order: float | None = None  # median wait of a customer still active
    avg_days_between_orders: float | None = None  # the customer's mean gap so far
    value_tier: str | None = None  # the value_tiers segment's name, where that scheme is served
    # up to 3 products not in the customer's products, best first (the next-best champion's;
    # [] without products or without a next-best champion)
    next_best: list[str] = []
    # dynamic tags active for the customer (score tag_<name> >= the tag's threshold)
    active_tags: list[str] = []


class Answer(BaseModel):
    """What /predict and /score_transactions return (the OpenAPI schema; the service encodes
    the same shape itself, in one call)."""

    as_of: str | None = None  # /score_transactions only
    customers: list[CustomerAnswer]
    versions: dict[str, str]  # registered model name -> champion version used
