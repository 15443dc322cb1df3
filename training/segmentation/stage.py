"""The segmentation stage as the commands and the main job run it: load and check the scheme
file, fit every scheme with progress, write the outputs and log them to MLflow.

Outputs: `segments.parquet` (customer_id + `segment_<scheme>` per scheme) and `profiles.csv` (every
scheme's profile table, with a `scheme` column).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core import catalog
from training.segmentation import fit_schemes, load, parse
from training.segmentation.base import FittedScheme
from training.segmentation.spec import SchemeFile


def fit(features: pd.DataFrame, scheme_file: SchemeFile, trials: int | None, history=None):
    """(fitted schemes, skipped): a progress line per scheme, a bar over the tuning trials of a
    clustering scheme. `scheme_file` comes from `load_schemes`; `history` (`outcomes.History`,
    the log behind `features`) lets tree schemes learn outcomes and measures every scheme on
    the held-out window."""
    return fit_schemes(features, scheme_file, trials, progress=_progress(trials), history=history)


def load_schemes(schemes: str | Path | None) -> SchemeFile:
    """The scheme file, every scheme validated (before any long work starts)."""
    scheme_file = load(schemes)
    for spec in scheme_file.schemes:
        parse(spec, scheme_file)
    return scheme_file


def _progress(trials: int | None):
    from core.progress import bar, stage

    @contextmanager
    def progress(spec):
        if spec.kind == "clustering":
            n = trials or spec.options.get("trials", 20)
            with bar(f"{spec.name}: tuning + fit", n) as step:
                yield lambda trial: step()
        else:
            with stage(f"{spec.name} ({spec.kind})"):
                yield None

    return progress


def assignments(features: pd.DataFrame, fitted: list[FittedScheme]) -> pd.DataFrame:
    out = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    for scheme in fitted:
        out[f"segment_{scheme.name}"] = scheme.labels
    return out


NAME_COLUMNS = {"name": "name", "name_zh": "name_zh", "strategy": "strategy_direction"}


def named_assignments(features: pd.DataFrame, fitted: list[FittedScheme]) -> pd.DataFrame:
    """`assignments` with, after each `segment_<scheme>`, the segment's English and Chinese
    name and its strategy direction (from the scheme's profile): readers of scores.csv need
    not join profiles.csv by hand."""
    out = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    for scheme in fitted:
        column = f"segment_{scheme.name}"
        labels = pd.Series(scheme.labels, dtype=object)
        # the profile's last row is `all`; a segment key may read "all" too (a demographic value)
        named = scheme.profile.iloc[:-1].set_index("segment")
        out[column] = labels.to_numpy()
        for suffix, source in NAME_COLUMNS.items():
            out[f"{column}_{suffix}"] = labels.map(named[source]).to_numpy()
    return out


def profiles(fitted: list[FittedScheme]) -> pd.DataFrame:
    return (
        pd.concat([s.profile.assign(scheme=s.name) for s in fitted], ignore_index=True)[
            ["scheme", *fitted[0].profile.columns]
        ]
        if fitted
        else pd.DataFrame()
    )


def write(out: Path, features: pd.DataFrame, fitted: list[FittedScheme]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"segments": out / catalog.SEGMENTS, "profiles": out / catalog.PROFILES}
    assignments(features, fitted).to_parquet(paths["segments"], index=False)
    # segment names and strategies come from the scheme file: no cell may run as a formula
    from core.outputs import write_csv
    from features.vector import spreadsheet_safe
    from training.segmentation.profile import rounded

    write_csv(spreadsheet_safe(rounded(profiles(fitted))), paths["profiles"], index=False)
    return paths


def log(
    fitted,
    features,
    scheme_file: SchemeFile,
    snapshot: dict,
    promote: bool = True,
    reference_run: str | None = None,
    reused: dict | None = None,
    data_hash: str | None = None,
) -> dict[str, dict]:
    """Log every scheme as a child of the active MLflow run, in the scheme file's order (fits
    in `reused` as runs pointing at theirs), with the feature table as the monitoring reference
    unless `reference_run` holds it or nothing was fitted. Quietly: MLflow's own chatter about
    pickled models and integer columns is not for our users."""
    import logging
    import warnings

    from core.progress import bar
    from features.snapshot import fingerprint
    from training.segmentation.tracking import log_reference, log_reused, log_scheme

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    reused = reused or {}
    data_hash = data_hash or fingerprint(features)
    out = {}
    with warnings.catch_warnings(), bar("logging schemes to MLflow", len(fitted)) as step:
        warnings.simplefilter("ignore", UserWarning)
        reference = reference_run or (log_reference(features) if fitted else None)
        by_name = {s.name: s for s in fitted}
        for name in [s.name for s in scheme_file.schemes]:
            if name in reused:
                out[name] = log_reused(reused[name], promote)
            elif name in by_name:
                out[name] = log_scheme(
                    by_name[name],
                    features,
                    scheme_file.strategies,
                    snapshot,
                    True,
                    promote,
                    reference,
                    data_hash,
                )
                step()
    return out


def promotions(logged: dict[str, dict]) -> dict[str, str]:
    """Registered name -> version of the logged schemes that are to be served."""
    from core.catalog import segmenter_name

    return {segmenter_name(s): str(v["version"]) for s, v in logged.items() if v["champion"]}


@dataclass
class SnapshotFit:
    """What `fit_snapshot` did: the fitted schemes, those reused and those skipped (with why),
    the files written, and, when tracked, the MLflow run, what was registered per scheme, how
    the new fits measure up to the served champions and what is served now."""

    fitted: list[FittedScheme]
    skipped: dict[str, str]
    paths: dict[str, Path]
    reused: dict = field(default_factory=dict)  # scheme -> reuse.Reused
    run_id: str | None = None
    run_name: str | None = None
    logged: dict = field(default_factory=dict)
    versus: dict = field(default_factory=dict)  # scheme -> history.Verdict
    model_set: str | None = None  # the served set's new version (None: nothing promoted)
    dropped: list[str] = field(default_factory=list)


def fit_snapshot(
    snapshot: Path,
    schemes: str | Path | None,
    trials: int | None,
    out: Path,
    track=None,  # training.pipeline.Tracking, or None to log nothing
    promote: bool = False,
) -> SnapshotFit:
    """`custseg segment fit`: every scheme of the scheme file on a feature snapshot, written to
    `out` and (tracked) logged as one run with a child run per scheme. Tracked, a scheme whose
    definition and data are those of a registered fit is reused, not refitted; what is served
    changes only with `promote`."""
    from dataclasses import replace

    from core import tracking
    from core.errors import InputError
    from core.outputs import check_output, moved, staged
    from features.snapshot import fingerprint, read_snapshot
    from training.segmentation.base import require_columns

    out = check_output(out, [snapshot])
    table, meta = read_snapshot(snapshot)
    scheme_file = load_schemes(schemes)
    require_columns(table, ["customer_id"], str(snapshot))
    if table.empty:
        raise InputError(f"{snapshot}: the snapshot has no customers")
    reused, data_hash = {}, fingerprint(table)
    if track:
        from training.segmentation.reuse import reusable

        tracking.use(track.experiment, track.uri)
        reused = reusable(track.experiment, scheme_file, trials, table, data_hash)
    todo = replace(scheme_file, schemes=[s for s in scheme_file.schemes if s.name not in reused])
    fitted, skipped = fit(table, todo, trials)
    order = [s.name for s in scheme_file.schemes]
    every = sorted([*fitted, *reused.values()], key=lambda f: order.index(f.name))
    with staged(out) as tmp:
        paths = write(tmp, table, every)
    done = SnapshotFit(fitted, skipped, moved(paths, tmp, out), reused)
    if track:
        import mlflow

        from core.registry import publish
        from training.segmentation.history import against_champions

        done.run_name = run_name(fitted, meta.get("as_of"))
        with tracking.run(track.experiment, done.run_name, track.uri) as active:
            mlflow.set_tags(
                {
                    "custseg.stage": "segment-fit",
                    "features.as_of": str(meta.get("as_of")),
                    catalog.DATA_HASH_TAG: data_hash,
                }
            )
            mlflow.log_params({"schemes": scheme_file.path, "features": str(snapshot)})
            done.logged = log(
                fitted, table, scheme_file, meta, promote, reused=reused, data_hash=data_hash
            )
            done.run_id = active.info.run_id
            client = mlflow.MlflowClient()
            done.versus = against_champions(done.logged)
            done.model_set, done.dropped = publish(
                client, promotions(done.logged), done.run_id, meta.get("definition_hash")
            )
    return done


def run_name(fitted: list[FittedScheme], as_of) -> str:
    """`segment fit rfm_rules, behaviour_clusters (2026-03-31)`: what the run refitted."""
    names = [s.name for s in fitted]
    what = ", ".join(names) if len(names) <= 3 else f"{len(names)} schemes"
    return f"segment fit {what} ({as_of})" if names else f"segment fit: all reused ({as_of})"
