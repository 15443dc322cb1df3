"""`custseg basket` as a function: clean the log and build features as of the cutoff, fit the
chosen segmentation scheme (segments of the customers at that cutoff), build the baskets,
mine the rules for all customers and per segment (with what sets each segment apart), pick the
next-best products, check them out of time, write the outputs and log them to MLflow."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from core import catalog
from core.errors import ConfigError
from core.outputs import check_output, moved, staged, write_csv
from core.progress import stage
from training.baskets.build import Baskets, build_baskets
from training.baskets.config import BasketConfig
from training.baskets.nextbest import next_best, validate
from training.baskets.rules import distinctive, rules
from training.baskets.sql import checked

ENGINE_NAMES = {"duckdb": "DuckDB", "spark": "Spark"}


@dataclass
class BasketResult:
    baskets: Baskets
    rules: pd.DataFrame  # all customers ("all") and per segment, distinctive columns for those
    next_best: pd.DataFrame
    validation: dict
    scheme: str | None
    summary: dict = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None


def scheme_segments(feats, scheme: str, schemes_path=None, trials: int | None = None):
    """(customer_id -> segment name as of the cutoff, cutoff -> the same at an earlier cutoff)
    for one scheme of the scheme file, fitted on the feature table (and on the table as of an
    earlier cutoff for the out-of-time check)."""
    from training.segmentation import stage as segment
    from training.segmentation.outcomes import from_feature_run
    from training.segmentation.spec import SchemeFile

    scheme_file = segment.load_schemes(schemes_path)
    spec = [s for s in scheme_file.schemes if s.name == scheme]
    if not spec:
        known = ", ".join(s.name for s in scheme_file.schemes)
        raise ConfigError(
            f"--scheme {scheme!r}: no such scheme in {scheme_file.path}; known: {known}"
        )
    one = SchemeFile(scheme_file.path, spec, scheme_file.strategies)
    history = from_feature_run(feats)

    def at(table: pd.DataFrame) -> pd.Series:
        fitted, skipped = segment.fit(table, one, trials, history)
        if not fitted:
            raise ConfigError(f"--scheme {scheme}: cannot be fitted here ({skipped.get(scheme)})")
        named = segment.named_assignments(table, fitted)
        return named.set_index("customer_id")[f"segment_{scheme}_name"]

    return at(feats.table), lambda cutoff: at(history.build(cutoff))


def basket_rules(
    b: Baskets, cfg: BasketConfig, segments: pd.Series | None, engine: str = "duckdb"
) -> pd.DataFrame:
    """The rules of all customers, then each segment's with its comparison to the rest."""
    overall = rules(b, cfg, engine=engine)
    if segments is None:
        return overall
    per_segment = rules(b, cfg, segments, engine)
    per_segment = distinctive(b, per_segment, segments, cfg.alpha, engine)
    return pd.concat([overall, per_segment], ignore_index=True)


def run_baskets(
    feats,
    out: Path | None,
    cfg: BasketConfig,
    *,
    scheme: str | None = None,
    schemes_path=None,
    track=None,
    inputs: list | None = None,
    engine: str = "duckdb",
) -> BasketResult:
    """The basket job on a `features.stage.FeatureRun` (the clean log as of its cutoff); the
    rules are counted on `engine` (duckdb or spark, the same SQL)."""
    engine = checked(engine)
    out = check_output(out or catalog.baskets_dir(), inputs or [])
    segments = segments_at = None
    if scheme:
        with stage(f"segments of {scheme} as of {feats.as_of}"):
            segments, segments_at = scheme_segments(feats, scheme, schemes_path)
    with stage(f"baskets ({cfg.level}) as of {feats.as_of}"):
        b = build_baskets(feats.result.transactions, feats.as_of, cfg.level)
    with stage(f"association rules ({ENGINE_NAMES[engine]})"):
        table = basket_rules(b, cfg, segments, engine)
    with stage(f"next-best {cfg.level}s + out-of-time check ({cfg.horizon_days} days)"):
        picks = next_best(b, cfg)
        check = validate(b, cfg, segments_at)
    result = BasketResult(b, table, picks, check, scheme)
    result.summary = summary(result, cfg)
    with staged(out) as tmp:
        result.paths = write(tmp, result, cfg)
        if track:
            result.run_id = log(result, cfg, track)
    result.paths = moved(result.paths, tmp, out)
    return result


def summary(r: BasketResult, cfg: BasketConfig) -> dict:
    lines = r.baskets.lines
    counts = r.rules.groupby("segment").size().to_dict() if len(r.rules) else {}
    out = {
        "as_of": str(r.baskets.as_of),
        "level": r.baskets.level,
        "scheme": r.scheme,
        "baskets": r.baskets.n_baskets,
        "items": r.baskets.n_items,
        "customers": r.baskets.n_customers,
        "lines": len(lines),
        "items_per_basket": round(len(lines) / max(r.baskets.n_baskets, 1), 3),
        "rules": {str(k): int(v) for k, v in counts.items()},
        "validation": r.validation,
        "config": {k: v for k, v in vars(cfg).items()},
    }
    if "distinctive" in r.rules:
        out["distinctive_rules"] = int(r.rules["distinctive"].eq(True).sum())
    return out


def write(out: Path, r: BasketResult, cfg: BasketConfig) -> dict[str, Path]:
    from features.vector import spreadsheet_safe
    from training.baskets.page import write_page

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "rules_csv": out / catalog.RULES_CSV,
        "rules": out / catalog.RULES_PARQUET,
        "next_best": out / catalog.NEXT_BEST,
        "summary": out / catalog.BASKETS_JSON,
        "page": out / catalog.BASKETS_HTML,
    }
    r.rules.to_parquet(paths["rules"], index=False)
    # product names are text from the data: never a formula in a spreadsheet
    write_csv(spreadsheet_safe(r.rules), paths["rules_csv"], index=False)
    write_csv(spreadsheet_safe(r.next_best), paths["next_best"], index=False)
    paths["summary"].write_text(json.dumps(r.summary, indent=2, default=str), "utf-8")
    write_page(paths["page"], r, cfg)
    return paths


def log(r: BasketResult, cfg: BasketConfig, track) -> str:
    """One MLflow run: the settings, the counts, the out-of-time figures, the files."""
    import mlflow

    from core import tracking as mlflow_setup

    name = f"basket {r.baskets.as_of} {r.baskets.level}"
    with mlflow_setup.run(track.experiment, name, track.uri) as active:
        mlflow.log_params(mlflow_setup.flatten("baskets", {**vars(cfg), "scheme": r.scheme}))
        s = r.summary
        metrics = {k: s[k] for k in ("baskets", "items", "customers", "lines", "items_per_basket")}
        metrics |= {f"rules.{k}": v for k, v in s["rules"].items()}
        for method, m in r.validation["methods"].items():
            for k, v in m.items():
                metrics[f"next_best.{method}.{k}_at_{r.validation['k']}"] = v
        metrics["next_best.customers"] = r.validation["customers"]
        mlflow.log_metrics(mlflow_setup.flatten("", metrics))
        for key in ("rules", "rules_csv", "next_best", "summary", "page"):
            mlflow.log_artifact(str(r.paths[key]), artifact_path=catalog.RUN_BASKETS)
        return active.info.run_id


def with_level(cfg: BasketConfig, level: str | None) -> BasketConfig:
    return cfg if level is None else replace(cfg, level=level)
