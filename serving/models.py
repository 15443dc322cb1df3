"""The model set the service answers with: every registered champion, loaded together.

A request takes one reference to a `ModelSet` and uses only it, so a reload (which builds a new
set and swaps the reference) never mixes models of two sets inside one answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from core.catalog import CHAMPION, VALUE_TARGET, next_best_name, predictor_name, scheme_of
from core.catalog import PREDICTION_TARGETS as TARGETS
from core.errors import CustsegError
from features import registry
from features.build import tag_hits
from serving.scoring import NUMERIC_VALUE_FIELDS, VALUE_FIELDS, Scores
from training.prediction.clv import VALUE_TIER_SCHEME

NEXT_BEST_K = 3  # next-best products per customer (scores.csv's next_best_1..3)


@dataclass(frozen=True)
class ModelSet:
    segmenters: dict  # scheme -> SegmenterModel (the unwrapped pyfunc)
    predictors: dict  # target -> Predictor
    versions: dict[str, str]  # registered model name -> champion version
    definition_hashes: dict[str, str] = field(default_factory=dict)  # model name -> hash
    online: object = None  # OnlineFeatures for raw transactions (None: see online_problem)
    value: object = None  # training.prediction.clv.ValuePredictor (None: no value champion)
    online_problem: str | None = None
    # dynamic tag -> activation threshold, as the champions' feature snapshot computed them
    # (the thresholds travel with the models: a row's tag_<name> score >= it: active)
    tags: dict[str, float] = field(default_factory=dict)
    # training.baskets.model.NextBestModel (None: no next-best champion, every next_best [])
    next_best: object = None

    @cached_property
    def computed_columns(self) -> tuple[str, ...]:
        """Columns the schemes read that the value champion computes (clv, expected orders,
        order value, P(alive)): never asked of the caller. Without a value champion, none: a
        scheme reading `clv` then needs it sent (a registry the value gate never filled)."""
        if self.value is None:
            return ()
        from training.prediction.clv import SEGMENT_INPUTS

        return tuple(SEGMENT_INPUTS)

    @cached_property
    def category_columns(self) -> list[str]:
        """Text inputs: the predictors' and the value model's categories and what segmenters
        read as categories."""
        cols = [c for p in self.predictors.values() for c in p.categories]
        if self.value is not None:
            cols += list(self.value.categories)
        for s in self.segmenters.values():
            numbers = set(getattr(s.assigner, "numeric_columns", s.assigner.columns))
            cols += [c for c in s.assigner.columns if c not in numbers]
        computed = set(self.computed_columns)
        return [c for c in dict.fromkeys(cols) if c not in computed]

    @cached_property
    def numeric_columns(self) -> list[str]:
        cols = [c for s in self.segmenters.values() for c in s.assigner.columns]
        cols += [c for p in self.predictors.values() for c in p.numeric]
        if self.value is not None:
            cols += list(self.value.columns)
        skip = set(self.category_columns) | set(self.computed_columns)
        return [c for c in dict.fromkeys(cols) if c not in skip]

    @cached_property
    def columns(self) -> list[str]:
        """Every feature a request must carry (derived once per model set, not per request)."""
        return [*self.numeric_columns, *self.category_columns]

    @cached_property
    def row_columns(self) -> list[str]:
        """What a feature row of the champions' table holds: the columns the models read and
        the dynamic tag scores (no model reads them; they decide `active_tags`)."""
        return [*self.columns, *(registry.TAG_PREFIX + t for t in self.tags)]

    @cached_property
    def ignored_columns(self) -> list[str]:
        """Columns of the feature table the models do not read (e.g. `region`): a row may carry
        them, as `custseg features` writes it; they are type-checked, then dropped."""
        read = set(self.columns)
        return [f.name for f in registry.table(self.row_columns) if f.name not in read]

    def describe(self) -> dict:
        """Model names, versions and the input schema (for /metadata): every column a row may
        carry, in feature-table order, with its description, unit and `input`: "required" (a
        value), "nullable" (sent, may be null) or "ignored" (accepted, not read)."""
        read = set(self.columns)
        table = registry.table(self.row_columns)
        known = {f.name: f for f in table}
        order = [f.name for f in table] + [c for c in self.columns if c not in known]

        def use(c: str) -> str:
            if c not in read:
                return "ignored"
            return "nullable" if c not in known or known[c].optional else "required"

        return {
            "models": [
                {
                    "name": n,
                    "alias": CHAMPION,
                    "version": v,
                    "definition_hash": self.definition_hashes.get(n),
                    "answers": self._answered_by(n),
                }
                for n, v in sorted(self.versions.items())
            ],
            "schemes": sorted(self.segmenters),
            "targets": sorted(self.predictors),
            # the value champion's fields (null in every answer without one); `computed`: the
            # columns it adds for the schemes that read them, not sent by the caller
            "value": {
                "model": predictor_name(VALUE_TARGET) if self.value is not None else None,
                "fields": list(VALUE_FIELDS) if self.value is not None else [],
                "computed": list(self.computed_columns),
                "as_of": "/predict: today (UTC); /score_transactions: the request's as_of",
            },
            # next-best products: from the customer's products (/predict: each row's optional
            # recent_products; /score_transactions: the product of the posted lines)
            "next_best": {
                "model": next_best_name() if self.next_best is not None else None,
                "k": NEXT_BEST_K,
                "level": getattr(self.next_best, "level", None),
                "as_of": getattr(self.next_best, "as_of", None),
                "items": getattr(self.next_best, "n_items", 0),
                "input": "/predict: recent_products per row (at most 200 product ids as the "
                "log's product column); /score_transactions: the transactions' product",
            },
            "id": "customer_id",
            "features": [
                {
                    "name": c,
                    "type": _json_type(c, known, self.category_columns),
                    "input": use(c),
                    "nullable": c not in known or known[c].optional,
                    "description": known[c].description if c in known else "",
                    "unit": known[c].unit if c in known else "",
                }
                for c in order
            ],
        }

    def _answered_by(self, name: str) -> list[str]:
        """The answer fields a registered model gives (for /metadata)."""
        if scheme := scheme_of(name):
            return [f"segments.{scheme}", *(["value_tier"] if scheme == VALUE_TIER_SCHEME else [])]
        if name == predictor_name(VALUE_TARGET):
            return list(VALUE_FIELDS)
        if name == next_best_name():
            return ["next_best"]
        return [f"{t}_probability" for t in self.predictors if predictor_name(t) == name]

    @cached_property
    def answers(self) -> dict[str, dict[str, dict]]:
        """Scheme -> segment key -> the segment as a response carries it (built once)."""
        return {
            scheme: {
                key: {
                    "id": key,
                    "name": s.name,
                    "name_zh": s.name_zh,
                    "strategy": model.strategies[s.strategy].direction,
                    "strategy_zh": model.strategies[s.strategy].direction_zh,
                }
                for key, s in model.segments.items()
            }
            for scheme, model in self.segmenters.items()
        }

    def value_table(self, features: pd.DataFrame, as_of: date) -> pd.DataFrame | None:
        """The value champion's table of `features` (VALUE_FIELDS, one row per feature row),
        None without a value champion. `as_of`: the day the features describe (the next
        order's date counts from it)."""
        if self.value is None or not len(features):
            return None
        with np.errstate(all="ignore"):  # an extreme row gives inf/NaN: answered as null
            return self.value.table(features, as_of)

    def with_value(
        self, features: pd.DataFrame, as_of: date, values: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """`features` plus the value columns the schemes read (`computed_columns`: clv, ...),
        computed by the value champion (or taken from `values`, its `value_table` of these
        rows); columns of those names already there are replaced. Unchanged without a value
        champion. /predict, /score_transactions and monitoring all segment such a table."""
        if self.value is None or not len(features):
            return features
        from training.prediction.clv import join_value

        return join_value(features, self.value_table(features, as_of) if values is None else values)

    def recommend(self, products: list | None, n: int) -> list[list[str]]:
        """Per customer, up to NEXT_BEST_K products not in its `products` (a list of product
        names per customer, or None); [] everywhere without products or a next-best model."""
        if products is None or self.next_best is None:
            return [[] for _ in range(n)]
        return self.next_best.recommend(products, NEXT_BEST_K)

    def score(
        self, features: pd.DataFrame, as_of: date | None = None, products: list | None = None
    ) -> Scores:
        """Per customer: segment per scheme, each target's probability and the value fields,
        column-wise (`serving.scoring.Scores`): what /predict answers (`predict`) and what
        `custseg score` writes (`Scores.to_arrow`), from this one computation. The rows were
        checked against `columns` already (request schema, batch input check or our own
        feature code), so the assigners and predictors are called directly, not through the
        pyfunc wrappers.

        The value champion runs once for the batch; its clv, expected orders, order value and
        P(alive) join the rows before the schemes assign (value tiers, CLV x activity). `as_of`
        is the day the features describe: the next order's date is counted from it. Default:
        today (UTC), the right day for feature rows computed for the request (a feature row
        carries no cutoff of its own); /score_transactions passes its as_of, batch scoring the
        snapshot's. Without a value champion every value field is null, as a probability
        without a champion is; `value_tier` is the `value_tiers` segment's name wherever that
        scheme is served. `products`: per row, the customer's recent products (None or [] for
        none): the next-best champion's `next_best` (always [] without one)."""
        n, as_of = len(features), as_of or today()
        values = self.value_table(features, as_of)
        rows = self.with_value(features, as_of, values)
        segments = {
            scheme: model.assigner.assign(rows) for scheme, model in self.segmenters.items()
        }
        numbers = {  # a target without a champion (the gate refused every model): null
            f"{t}_probability": np.round(self.predictors[t].predict_proba(features), 6)
            if t in self.predictors
            else np.full(n, np.nan)
            for t in TARGETS
        }
        if values is None:
            numbers |= {c: np.full(n, np.nan) for c in NUMERIC_VALUE_FIELDS}
            dates = np.full(n, None, dtype=object)
        else:
            numbers |= {
                c: values[c].to_numpy(dtype="float64", na_value=np.nan)
                for c in NUMERIC_VALUE_FIELDS
            }
            dates = values["next_order_date"].to_numpy(dtype=object, copy=True)
            dates[pd.isna(dates)] = None  # no next order (NaT formats as NaN): null
        tiers = segments.get(VALUE_TIER_SCHEME)
        if tiers is not None:  # segment key -> its name, by one hash lookup
            answers = self.answers[VALUE_TIER_SCHEME]
            names = np.array([a["name"] for a in answers.values()], dtype=object)
            pos = pd.Index(list(answers)).get_indexer(np.asarray(tiers, dtype=object))
            tiers = np.where(pos >= 0, names[pos], None)  # -1: a key not described (none)
        return Scores(
            customer_id=features["customer_id"],
            segments=segments,
            numbers=numbers,
            next_order_date=dates,
            value_tier=tiers,
            next_best=self.recommend(products, n) if products is not None else None,
            tags=tag_hits(features, self.tags),
        )

    def predict(
        self, features: pd.DataFrame, as_of: date | None = None, products: list | None = None
    ) -> list[dict]:
        """Per customer the service's answer (`score`, one dict a customer)."""
        return self.score(features, as_of, products).answers(self.answers)


def today() -> date:
    """Today in UTC: the default as-of day of feature rows sent to /predict."""
    return datetime.now(UTC).date()


def _json_type(column: str, known: dict, categories: list[str]) -> str:
    if column in categories or (column in known and known[column].kind == "category"):
        return "string"
    return "number"


def champion_versions(tracking_uri: str | None = None) -> dict[str, str]:
    """Registered model name -> version of the model set this project serves (cheap: the
    service's watch calls it every few seconds; one set moves as one, see core.registry)."""
    import mlflow

    from core import paths
    from core.registry import served

    return served(mlflow.MlflowClient(tracking_uri or paths.tracking_uri()))


def require_champions(tracking_uri: str) -> dict[str, str]:
    """`champion_versions`, or a CustsegError when nothing is served: `custseg serve` checks
    this before starting workers (they would fail to load and restart forever). A local
    SQLite store that does not exist holds nothing: it is not created just to be found empty."""
    from mlflow.exceptions import MlflowException

    from core import tracking

    tracking.fail_fast()  # a tracking server that is down: one line in seconds
    local = tracking_uri.removeprefix("sqlite:///") if tracking_uri.startswith("sqlite:///") else ""
    missing = bool(local) and "?" not in local and not Path(local).exists()
    try:
        versions = {} if missing else champion_versions(tracking_uri)
    except MlflowException as exc:
        raise tracking.store_error(tracking_uri, exc) from None
    if not versions:
        raise CustsegError(
            f"no champion models in the registry at {tracking_uri}: run `custseg run` first"
        )
    return versions


def load_champions(tracking_uri: str | None = None) -> ModelSet:
    """Every member of the served model set: segmenters, predictors, the value model and the
    next-best model (`<project>-next-best`). Each is loaded
    by the version the alias pointed at when listed, so `versions` says what answers."""
    import mlflow

    from core import paths

    uri = tracking_uri or paths.tracking_uri()
    mlflow.set_tracking_uri(uri)
    versions = require_champions(uri)
    segmenters, predictors, hashes, value, tags, next_best = {}, {}, {}, None, {}, None
    for name, version in versions.items():
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        inner = model.unwrap_python_model()
        hashes[name] = (model.metadata.metadata or {}).get("definition_hash")
        tags.update(getattr(inner, "snapshot", {}).get("tags") or {})
        if scheme := scheme_of(name):
            segmenters[scheme] = inner
        elif name == predictor_name(VALUE_TARGET):
            value = inner.predictor
        elif name == next_best_name():
            next_best = inner.model
        else:
            predictors[inner.predictor.target] = inner.predictor
    models = ModelSet(
        segmenters, predictors, versions, hashes, value=value, tags=tags, next_best=next_best
    )
    online_hashes = {n: h for n, h in hashes.items() if n != next_best_name()}
    online, problem = online_features(models.columns, online_hashes, list(tags) or None)
    return replace(models, online=online, online_problem=problem)


def online_features(columns: list[str], hashes: dict, tags: list[str] | None = None):
    """(OnlineFeatures with the champions' feature definition, None) or (None, why not);
    `columns`: every feature the champions read (`ModelSet.columns`); `tags`: the dynamic
    tags their snapshot computed (default: the tag columns among `columns`).

    The definition is the default feature config with the champions' category columns; its
    hash must equal the one the champions were trained with, else raw transactions would be
    featurised differently from training (skew) and /score_transactions is refused.
    """
    from features.build import definition_hash
    from features.definitions import FeatureConfig
    from features.online import OnlineFeatures

    categories = list(dict.fromkeys(registry.category_values(columns)))
    cfg = FeatureConfig()
    tags = registry.tag_names(columns) if tags is None else list(tags)
    configured = {t.name for t in cfg.tags}
    wanted = {h for h in hashes.values() if h}
    ours = definition_hash(cfg, categories, [t.name for t in cfg.tags if t.name in tags])
    if wanted and wanted != {ours}:
        return None, (
            f"the champions were trained on feature definition(s) {', '.join(sorted(wanted))}, "
            f"this service computes {ours}: send feature rows to /predict instead"
        )
    with_customers = any(c in columns for c in ("age_band", "province", "gender", "industry"))
    unknown = sorted(set(tags) - configured)
    if unknown:  # a custom [features.tags] config (models without a hash to say so)
        return None, f"the champions read tags this service does not define: {', '.join(unknown)}"
    tags = [t.name for t in cfg.tags if t.name in tags]
    return OnlineFeatures(categories, cfg, with_customers, tags), None
