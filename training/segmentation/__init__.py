"""Segmentation schemes fitted side by side on one feature table.

`fit_schemes(features, scheme_file)` parses each scheme of the file, tunes it when it is a
clustering scheme, fits it, assigns every customer, names the segments, profiles them and
computes the metrics `custseg segment compare` shows. Nothing here talks to MLflow: `tracking`
logs the results.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import pandas as pd

from core.errors import InputError
from training.segmentation import quality
from training.segmentation.abc import AbcScheme
from training.segmentation.base import (
    FittedScheme,
    Segment,
    Strategy,
    check_inputs,
    numeric,
    require_columns,
    require_numbers,
)
from training.segmentation.clustering import ClusteringScheme
from training.segmentation.demographic import DemographicScheme
from training.segmentation.matrix import MatrixScheme
from training.segmentation.outcomes import History
from training.segmentation.profile import profile
from training.segmentation.rules import RulesScheme
from training.segmentation.scores import ScoresScheme
from training.segmentation.spec import SchemeFile, SchemeSpec, definition, load
from training.segmentation.tiers import TiersScheme
from training.segmentation.tree import NothingToLearn, TreeScheme

__all__ = ["FittedScheme", "Segment", "Strategy", "fit_scheme", "fit_schemes", "load", "parse"]

KINDS = {
    "rules": RulesScheme,
    "rfm_scores": ScoresScheme,
    "matrix": MatrixScheme,
    "abc": AbcScheme,
    "tiers": TiersScheme,
    "demographic": DemographicScheme,
    "clustering": ClusteringScheme,
    "tree": TreeScheme,
}
EVAL_ROWS = 4000  # customers on which separation and stability are scored
STABILITY_SAMPLE = 20000


def parse(spec: SchemeSpec, scheme_file: SchemeFile):
    """The kind's scheme object (validated configuration)."""
    return KINDS[spec.kind].parse(
        spec, scheme_file.strategies, f"{scheme_file.path}: [schemes.{spec.name}]"
    )


def fit_scheme(
    spec: SchemeSpec,
    scheme_file: SchemeFile,
    features: pd.DataFrame,
    trials: int | None = None,
    on_trial: Callable | None = None,
    seed: int = 42,
    history: History | None = None,
) -> FittedScheme:
    """Tune (clustering), learn (tree), fit, assign, name, profile and score one scheme.
    With `history` (the log behind `features`), every scheme is also measured on the common
    held-out window (`outcomes.heldout`)."""
    kind = parse(spec, scheme_file)
    if not len(features):
        raise InputError(f"scheme {spec.name}: the feature table has no customers")
    require_columns(features, kind.columns, f"scheme {spec.name}")
    if not isinstance(kind, DemographicScheme):
        require_numbers(features, kind.columns, f"scheme {spec.name}")
    params: dict = {"kind": spec.kind, **spec.options}
    extras: dict = {}
    metrics: dict[str, float] = {}
    refit_sample = STABILITY_SAMPLE
    refits = 3
    if isinstance(kind, ClusteringScheme):
        params["trials"] = trials or kind.trials
        kind = kind.tune(features, trials, on_trial)
        extras["trials"] = trials_table(kind.study)
        extras["elbow"] = kind.elbow(features)
        params.update({f"chosen.{k}": v for k, v in vars(kind.chosen).items()})
        refit_sample, refits = kind.fit_sample, kind.stability_refits
    heldout_assign = None
    if isinstance(kind, TreeScheme):
        kind = kind.learn(features, history, scheme_file.strategies, on_trial)
        params.update(kind.params)
        metrics.update(kind.metrics)
        extras.update(kind.extras, notes=kind.notes, model=kind.model)
        heldout_assign = kind.heldout_assign
    assigner = kind.fit(features)
    params.update({f"learned.{k}": v for k, v in getattr(assigner, "learned", dict)().items()})
    labels = assigner.assign(features)
    segments = kind.describe(assigner, features)
    rows = quality.eval_rows(len(features), EVAL_ROWS, seed)
    revenue = numeric(features, "monetary") if "monetary" in features else np.zeros(len(features))
    metrics.update(quality.sizes(labels, revenue))
    metrics.update(quality.rfm_separation(features, labels, rows))
    if isinstance(kind, ClusteringScheme):
        from training.segmentation.clustering import separation

        metrics.update(separation(assigner.embed(features.iloc[rows]), labels[rows]))
        metrics["tuning_best_value"] = float(kind.study.best_value)
    if history is not None:
        from training.segmentation.outcomes import heldout

        def assign(rows: pd.DataFrame) -> np.ndarray:
            check_inputs(rows, assigner, f"scheme {spec.name}")  # no `clv` at a past cutoff
            return assigner.assign(rows)

        metrics.update(heldout(heldout_assign or assign, history))
    metrics["stability_ari"] = (
        quality.stability(
            lambda df, s: kind.fit(df, s), features, labels, rows, refits, refit_sample, seed
        )
        if getattr(kind, "learns", True)
        else float("nan")  # fixed rules: a refit cannot move anyone
    )
    fitted = FittedScheme(
        spec.name,
        spec.kind,
        spec.description,
        assigner,
        segments,
        params,
        metrics,
        spec.serve,
        extras,
        definition(spec, scheme_file, trials),
    )
    fitted.labels = labels
    fitted.profile = profile(features, labels, fitted, scheme_file.strategies)
    return fitted


def fit_schemes(
    features: pd.DataFrame,
    scheme_file: SchemeFile,
    trials: int | None = None,
    progress: Callable[[SchemeSpec], AbstractContextManager] | None = None,
    history: History | None = None,
) -> tuple[list[FittedScheme], dict[str, str]]:
    """Every scheme of the file fitted on `features`; returns (fitted, skipped: name -> why).

    A scheme that cannot apply (demographic without attributes, clustering on too few
    customers, a scheme reading a column only `custseg run` adds, such as `clv`) is skipped,
    not an error. `progress(spec)` may wrap each fit: a context manager that yields a
    per-trial callback (or None). `history` (the log behind `features`, `outcomes.History`)
    lets tree schemes learn outcomes and measures every scheme on the held-out window; a tree
    with an outcome target is skipped without it.
    """
    fitted, skipped = [], {}
    for spec in scheme_file.schemes:
        why = skip_reason(spec, scheme_file, features, history)
        if why:
            skipped[spec.name] = why
            continue
        with progress(spec) if progress else nullcontext() as on_trial:
            try:
                fitted.append(
                    fit_scheme(spec, scheme_file, features, trials, on_trial, history=history)
                )
            except NothingToLearn as exc:
                skipped[spec.name] = str(exc)
    return fitted, skipped


# Columns a feature table may lack for a good reason, with where they come from: a scheme reading
# one that is absent is skipped with that reason. Any other missing column is an error (a typo
# in the scheme file, most likely), raised by the fit with the closest names.
RUN_COLUMNS = {  # the value model's outputs: the main job adds them before segmenting
    "clv": "predicted CLV",
    "expected_orders": "expected orders",
    "expected_order_value": "expected order value",
    "p_alive": "probability the customer is still active",
    "days_to_next_order": "median days to the next order",
}


def _origin(column: str) -> str | None:
    from features.registry import ATTRIBUTES

    if column in RUN_COLUMNS:
        return f"{column} ({RUN_COLUMNS[column]}): it comes from `custseg run`"
    if column in {f.name for f in ATTRIBUTES}:
        return f"{column} (customer attribute): it comes from a customer table (--customers)"
    return None


def skip_reason(
    spec: SchemeSpec,
    scheme_file: SchemeFile,
    features: pd.DataFrame,
    history: History | None = None,
) -> str | None:
    """Why a scheme cannot apply to this table (not an error: the others still run)."""
    kind = parse(spec, scheme_file)
    if isinstance(kind, TreeScheme) and (why := kind.skip_reason(features, history)):
        return why
    if isinstance(kind, DemographicScheme):
        missing = [c for c in kind.columns if c not in features]
        if missing or all(features[c].isna().all() for c in kind.columns):
            return f"no customer attributes ({', '.join(missing or kind.columns)})"
    if isinstance(kind, ClusteringScheme):
        return kind.too_few(len(features))
    missing = [c for c in kind.columns if c not in features]
    origins = [_origin(c) for c in missing]
    if missing and all(origins):
        return f"needs column{'s' if len(missing) > 1 else ''} {'; '.join(origins)}"
    return None


def trials_table(study) -> pd.DataFrame:
    """One row per Optuna trial: number, params, objective value and the recorded scores."""
    rows = [{"trial": t.number, **t.params, "value": t.value, **t.user_attrs} for t in study.trials]
    return pd.DataFrame(rows)
