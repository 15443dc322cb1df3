"""`custseg segment diff`: what changed between two fits, and which is better.

Per scheme in either fit: the scheme-file keys that changed (old -> new), every quality measure
with its better side and the fit that wins it, segment sizes side by side and where customers
moved (old segment x new segment, from the fits' logged assignments).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core import catalog
from core.errors import InputError
from training.segmentation.history import SCHEME_RUNS, fits
from training.segmentation.measures import MEASURES, Measure, fmt, winner


@dataclass
class Fit:
    run_id: str
    name: str
    as_of: str
    started: str


@dataclass
class SchemeDiff:
    scheme: str
    versions: tuple[str | None, str | None]  # "v3" or "v3 (reused)", None: not in that fit
    same_fit: bool = False  # both fits are the same registered fit: nothing differs
    changes: list[tuple[str, object, object]] = field(default_factory=list)
    measures: list[tuple[Measure, float | None, float | None, str]] = field(default_factory=list)
    sizes: pd.DataFrame | None = None  # segment, a, b (customers)
    migration: pd.DataFrame | None = None  # old segment (rows) x new segment (columns)
    note: str = ""


@dataclass
class FitDiff:
    a: Fit
    b: Fit
    schemes: list[SchemeDiff]


def diff_fits(
    experiment: str, run_a: str | None, run_b: str | None, last: int | None = None
) -> FitDiff:
    """The two fits (run ids or their first characters; or the `last` two, older first)
    compared scheme by scheme."""
    import mlflow

    known = fits(experiment, 10_000)
    if last:
        if len(known) < 2:
            raise InputError(f"--last {last}: experiment {experiment!r} has {len(known)} fit(s)")
        run_a, run_b = known[-2:]
    a, b = (_resolve(r, known, experiment) for r in (run_a, run_b))
    client = mlflow.MlflowClient()
    runs = {r: _scheme_runs(client, r) for r in (a.run_id, b.run_id)}
    names = list(dict.fromkeys([*runs[a.run_id], *runs[b.run_id]]))
    schemes = [_scheme(client, s, runs[a.run_id].get(s), runs[b.run_id].get(s)) for s in names]
    return FitDiff(a, b, schemes)


def _resolve(run: str | None, known: list[str], experiment: str) -> Fit:
    import mlflow

    matches = [r for r in known if r.startswith(run or "\0")]
    if len(matches) != 1:
        why = "no fit" if not matches else "several fits"
        raise InputError(
            f"run {run!r}: {why} in experiment {experiment!r} with that id; "
            "`custseg segment compare --all` lists them (column fit)"
        )
    info = mlflow.MlflowClient().get_run(matches[0])
    started = pd.Timestamp(info.info.start_time, unit="ms").strftime("%Y-%m-%d %H:%M")
    as_of = info.data.tags.get("features.as_of", "?")
    return Fit(matches[0], info.info.run_name or "", as_of, started)


def _scheme_runs(client, parent: str) -> dict:
    runs = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"{SCHEME_RUNS} and tags.mlflow.parentRunId = '{parent}'",
        order_by=["attributes.start_time ASC"],
    )
    return {r.data.tags["custseg.scheme"]: r for r in runs}


def _version(run) -> str | None:
    if run is None:
        return None
    v = run.data.tags.get("custseg.model_version")
    label = f"v{v}" if v else "unregistered"
    return label + (" (reused)" if catalog.REUSED_TAG in run.data.tags else "")


def _source(run) -> str:
    return run.data.tags.get(catalog.REUSED_TAG, run.info.run_id)


def _scheme(client, scheme: str, a, b) -> SchemeDiff:
    out = SchemeDiff(scheme, (_version(a), _version(b)))
    if a is None or b is None:
        out.note = f"only in fit {'B' if a is None else 'A'}"
        return out
    out.same_fit = _source(a) == _source(b)
    if out.same_fit:
        out.note = "the same fit in both (reused): nothing differs"
        return out
    with tempfile.TemporaryDirectory() as tmp:
        defs = [
            _artifact(r.info.run_id, catalog.SCHEME_DEFINITION, tmp, "a" + str(i))
            for i, r in enumerate((a, b))
        ]
        if None in defs:
            out.note = "scheme file not recorded by one of the fits (fitted before custseg kept it)"
        else:
            import json

            old, new = (flatten(json.loads(Path(d).read_text("utf-8"))) for d in defs)
            out.changes = [
                (k, old.get(k), new.get(k))
                for k in dict.fromkeys([*old, *new])
                if old.get(k) != new.get(k)
            ]
        out.sizes = _sizes(
            [
                _artifact(_source(r), catalog.PROFILE_CSV, tmp, "p" + str(i))
                for i, r in enumerate((a, b))
            ]
        )
        out.migration = _migration(
            [
                _artifact(_source(r), catalog.ASSIGNMENTS, tmp, "s" + str(i))
                for i, r in enumerate((a, b))
            ]
        )
    for m in MEASURES:
        x, y = a.data.metrics.get(m.metric), b.data.metrics.get(m.metric)
        if x is not None or y is not None:
            out.measures.append((m, x, y, winner(m, x, y)))
    return out


def _artifact(run_id: str, path: str, tmp: str, sub: str) -> str | None:
    import os

    import mlflow
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    try:
        return mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=str(Path(tmp) / sub)
        )
    except (MlflowException, OSError):
        return None


def _sizes(paths: list[str | None]) -> pd.DataFrame | None:
    if None in paths:
        return None
    a, b = (pd.read_csv(p) for p in paths)
    a, b = (p[p["segment"] != "all"].set_index("segment")["customers"] for p in (a, b))
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1).fillna(0).astype(int)
    return both.rename_axis("segment").reset_index()


def _migration(paths: list[str | None]) -> pd.DataFrame | None:
    if None in paths:
        return None
    a, b = (pd.read_parquet(p) for p in paths)
    both = a.merge(b, on="customer_id", suffixes=("_a", "_b"))
    return pd.crosstab(both["segment_a"], both["segment_b"])


def flatten(definition: dict) -> dict[str, object]:
    """Keys as the scheme file reads: `rfm_rules.segments[churn_risk].recency_days.min`."""
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                key = v.get("key", i)
                walk(f"{prefix}[{key}]", {k: x for k, x in v.items() if k != "key"})
        else:
            out[prefix] = value

    walk("", definition)
    return out


def write_html(d: FitDiff, path: Path) -> Path:
    """The diff as a self-contained page (every value escaped by Jinja's autoescape)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("training", "templates"), autoescape=select_autoescape(["html"])
    )
    html = env.get_template("segment_diff.html").render(d=d, fmt=fmt)
    try:
        path.write_text(html, "utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the page ({exc.strerror})") from None
    return path
