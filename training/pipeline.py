"""The main job (`custseg run`) and the predictors alone (`custseg train`) as functions that
the commands, tests and benchmarks call. Each reads as its steps; the steps live in the stages
(`features.stage`, `training.segmentation.stage`, `training.prediction.stage`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from core import catalog
from core import tracking as mlflow_setup
from core.errors import InputError
from core.outputs import check_output, moved, staged
from core.progress import note, stage
from features.cleaning import CleaningConfig
from features.definitions import FeatureConfig
from features.stage import FeatureRun, features_from_log, write_clean_and_features
from training.baskets.config import BasketConfig
from training.prediction import stage as predict
from training.prediction.config import PredictionConfig
from training.scores import write_scores
from training.segmentation import stage as segment
from training.segmentation.outcomes import from_feature_run
from training.segmentation.spec import SchemeFile


@dataclass(frozen=True)
class Inputs:
    """The raw files: a transaction log, an optional customer table, column renames."""

    transactions: Path
    customers: Path | None = None
    mapping: dict = field(default_factory=dict)  # target -> source column (--column)
    sheet: str | None = None  # the sheet of Excel inputs (default: the first)


@dataclass(frozen=True)
class Configs:
    """Every stage's slice of the config file, already checked."""

    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)
    baskets: BasketConfig = field(default_factory=BasketConfig)


@dataclass(frozen=True)
class Tracking:
    """Where runs are logged and models registered (uri None: the state folder's store)."""

    experiment: str = catalog.EXPERIMENT
    uri: str | None = None


@dataclass
class RunResult:
    features: FeatureRun
    snapshot: dict  # the feature snapshot's metadata (as of, definition hash, engine)
    fitted: list  # fitted schemes
    skipped_schemes: dict[str, str]
    predictions: dict  # target -> TargetResult
    skipped: dict[str, str]  # target -> why it was not trained
    notes: list[str]
    segmenters: dict = field(default_factory=dict)  # scheme -> {version, champion, run_id, ...}
    registered: dict = field(default_factory=dict)  # target -> {version, promoted, decision}
    run_id: str | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    model_set: str | None = None  # the served set's new version, None when nothing was promoted
    dropped: list[str] = field(default_factory=list)  # served before, fitted on other features
    value: object = None  # training.prediction.clv.ValueResult: CLV, expected orders, tiers
    segment_table: object = None  # the feature table with the value columns: what schemes read
    offers: object = None  # training.baskets.offers.Offers: next-best products, what to offer
    next_best: dict = field(default_factory=dict)  # the next-best model: version, promoted, ...

    @property
    def scored(self):
        """The rows scores.csv describes: features plus the value columns when there are any."""
        return self.features.table if self.segment_table is None else self.segment_table


def check(
    configs: Configs, schemes: SchemeFile | str | Path | None, track: Tracking | None
) -> tuple[Configs, SchemeFile]:
    """What can be wrong before the work starts (the scheme file, the Optuna storage, the
    tracking URI), so a typo fails in a second rather than after the work."""
    scheme_file = schemes if isinstance(schemes, SchemeFile) else segment.load_schemes(schemes)
    storage = configs.prediction.study_storage
    if storage:
        storage = predict.open_study_storage(storage)
        configs = replace(configs, prediction=replace(configs.prediction, study_storage=storage))
    if track:
        mlflow_setup.use(track.experiment, track.uri)
    return configs, scheme_file


def run(
    inputs: Inputs,
    out: Path | None = None,
    *,
    as_of: date | None = None,
    configs: Configs = Configs(),  # noqa: B008 - frozen
    schemes: SchemeFile | str | Path | None = None,
    trials: int | None = None,
    track: Tracking | None = Tracking(),  # noqa: B008 - frozen; None: log nothing
) -> RunResult:
    """The main job: clean, build features as of the cutoff, fit every segmentation scheme and
    both predictors, log and register them (promoting winners), score every customer."""
    configs, scheme_file = check(configs, schemes, track)
    out = check_output(out or catalog.run_dir(), [inputs.transactions, inputs.customers])
    feats = _features(inputs, configs, as_of)
    with staged(out) as tmp:  # a failed or killed run leaves the previous outputs as they were
        paths, snapshot = write_clean_and_features(feats, tmp)
        result = _predict(RunResult(feats, snapshot, [], {}, {}, {}, []), configs)
        table = result.segment_table  # value tiers and CLV x activity read the value columns
        history = from_feature_run(feats)  # the log: tree schemes and held-out measures
        result.fitted, result.skipped_schemes = segment.fit(table, scheme_file, trials, history)
        for scheme in result.fitted:
            result.notes += scheme.extras.get("notes", [])
        paths |= segment.write(tmp, table, result.fitted)
        result.offers = _offers(result, configs.baskets)
        if track:
            name = _run_name("run", feats, inputs)
            with mlflow_setup.run(track.experiment, name, track.uri) as active:
                from features.tracking import log_clean_and_features

                log_clean_and_features(feats.result.audit, snapshot, paths)
                result.segmenters = segment.log(result.fitted, table, scheme_file, snapshot)
                result.registered = predict.log_targets(
                    result.predictions, snapshot, configs.prediction, result.value
                )
                if result.offers is not None:
                    from training.baskets.tracking import log_next_best

                    result.next_best = log_next_best(result.offers)
                result.run_id = active.info.run_id
        else:
            predict.decide_untracked(
                result.predictions, configs.prediction.gate_metric, result.value
            )
        result.paths = paths | _scores(tmp, result)
        if result.run_id:
            _log_outputs(result, track)
            _promote(result)  # the one step that changes what is served
    result.paths = moved(result.paths, tmp, out)
    return result


def train(
    inputs: Inputs,
    out: Path | None = None,
    *,
    as_of: date | None = None,
    snapshot: Path | None = None,
    configs: Configs = Configs(),  # noqa: B008 - frozen
    track: Tracking | None = Tracking(),  # noqa: B008 - frozen
) -> RunResult:
    """The predictors alone: repurchase and churn trained on backtest windows of the log,
    compared with the baselines, logged and registered (winners promoted), every customer
    scored. `snapshot` (a feature snapshot of this log) is scored instead of a table built
    here, and sets the cutoff."""
    configs, _ = check(configs, None, track)
    sources = [inputs.transactions, inputs.customers, snapshot]
    out = check_output(out or catalog.train_dir(), sources)
    table = None
    if snapshot is not None:
        table, as_of = _snapshot_table(snapshot, as_of)
    feats = _features(inputs, configs, as_of)
    if table is not None:
        feats = replace(feats, table=_same_definitions(table, feats.table, snapshot))
    result = _predict(RunResult(feats, {}, [], {}, {}, {}, []), configs)
    with staged(out) as tmp:
        if track:
            from features.snapshot import snapshot_meta

            result.snapshot = snapshot_meta(feats.table)
            name = _run_name("train", feats, inputs)
            with mlflow_setup.run(track.experiment, name, track.uri) as active:
                result.registered = predict.log_targets(
                    result.predictions, result.snapshot, configs.prediction, result.value
                )
                result.run_id = active.info.run_id
        else:
            predict.decide_untracked(
                result.predictions, configs.prediction.gate_metric, result.value
            )
        result.paths = _scores(tmp, result)
        if result.run_id:
            _log_outputs(result, track)
            _promote(result)
    result.paths = moved(result.paths, tmp, out)
    return result


def _run_name(command: str, feats: FeatureRun, inputs: Inputs) -> str:
    """`run 2026-03-31 transactions`: the command, the cutoff and the log it read."""
    return f"{command} {feats.as_of} {Path(inputs.transactions).stem}"


def _features(inputs: Inputs, configs: Configs, as_of: date | None) -> FeatureRun:
    return features_from_log(
        inputs.transactions,
        inputs.customers,
        inputs.mapping,
        configs.cleaning,
        configs.features,
        as_of,
        sheet=inputs.sheet,
    )


def _predict(result: RunResult, configs: Configs) -> RunResult:
    """Both targets and the value model on backtest windows; a note for each one skipped and
    each window note. The value columns join the feature table the schemes read."""
    from training.prediction.clv import with_value

    feats = result.features
    result.predictions, result.skipped, result.notes, result.value = predict.fit(
        feats.transactions,
        feats.customers,
        feats.result.transactions,
        feats.table,
        feats.as_of,
        feats.cleaning,
        feats.features_cfg,
        configs.prediction,
    )
    for why in [*result.skipped.values(), *result.notes]:
        note(why)
    result.segment_table = with_value(feats.table, result.value, feats.as_of)
    return result


def _scores(out: Path, r: RunResult) -> dict[str, Path]:
    return write_scores(
        out,
        r.scored,
        r.features.as_of,
        r.features.result.audit,
        r.fitted,
        r.predictions,
        r.value,
        r.skipped,
        r.notes,
        r.run_id,
        r.offers,
    )


def _offers(r: RunResult, cfg):
    """Next-best products per customer and what to offer per served segment; None (and a
    note) when the log has no column at the basket level."""
    from training.baskets.offers import offers
    from training.segmentation.stage import named_assignments

    tx = r.features.result.transactions
    if cfg.level not in tx.columns:
        r.notes.append(f"no next-best products: the log has no {cfg.level!r} column")
        return None
    with stage(f"next-best {cfg.level}s"):
        named = named_assignments(r.scored, r.fitted)
        return offers(tx, r.features.as_of, cfg, named, r.fitted)


def _promote(r: RunResult) -> None:
    """Serve this run's winners, all in one step (`core.registry.publish`)."""
    import mlflow

    from core.registry import publish
    from training.baskets.tracking import promotions as next_best

    promotions = segment.promotions(r.segmenters) | predict.promotions(r.registered)
    promotions |= next_best(r.next_best)
    r.model_set, r.dropped = publish(
        mlflow.MlflowClient(), promotions, r.run_id, r.snapshot.get("definition_hash")
    )


def _log_outputs(r: RunResult, track: Tracking) -> None:
    """scores.csv and report.html on the finished run."""
    mlflow_setup.log_outputs(r.run_id, track.uri, [r.paths["scores"], r.paths["report"]])


def _snapshot_table(path: Path, as_of: date | None):
    """A feature snapshot of today's definitions, and its cutoff (which --as-of must match)."""
    from features.snapshot import read_snapshot

    table, meta = read_snapshot(path)
    cutoff = date.fromisoformat(str(meta["as_of"]))
    if as_of is not None and as_of != cutoff:
        raise InputError(f"{path}: the snapshot is as of {cutoff}, not --as-of {as_of}")
    return table, cutoff


def _same_definitions(snapshot, built, path: Path):
    """The snapshot, when it was built by today's definitions and categories (the predictors
    learn on tables built here: other columns would be scored wrongly)."""
    for key in ("definition_hash", "categories"):
        if snapshot.attrs.get(key) != built.attrs.get(key):
            raise InputError(
                f"{path}: its {key.replace('_', ' ')} ({snapshot.attrs.get(key)}) differs from "
                f"this log's as built today ({built.attrs.get(key)}): build the snapshot again "
                "with `custseg features`, or leave --features out"
            )
    missing, extra = (
        sorted(set(a.columns) - set(b.columns)) for a, b in ((built, snapshot), (snapshot, built))
    )
    if missing or extra:  # e.g. a customer table given to one and not the other
        what = "; ".join(
            f"{label}: {', '.join(cols[:6])}{' ...' if len(cols) > 6 else ''}"
            for label, cols in (("only in the snapshot", extra), ("only in this log's", missing))
            if cols
        )
        raise InputError(
            f"{path}: its columns differ from this log's as built today ({what}): give the same "
            "--customers file to both commands, or leave --features out"
        )
    return snapshot
