"""Scheme fits read back from MLflow: the runs `segment compare` lists, the fits `segment diff`
takes, and how a new fit measures up to the served champion."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core import catalog
from core.catalog import segmenter_name
from training.segmentation.measures import COMPARED, winner

SCHEME_RUNS = "tags.`custseg.stage` = 'segmentation' and attributes.status = 'FINISHED'"


def compare(
    experiment: str, all_runs: bool = False, limit: int = 50, scheme: str | None = None
) -> pd.DataFrame:
    """Scheme runs of `experiment`, newest first: those of the latest fit, or every one
    (`scheme`: that scheme's only); `fit` is the run they are children of."""
    import mlflow

    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return pd.DataFrame()
    where = SCHEME_RUNS + (f" and tags.`custseg.scheme` = '{_quote(scheme)}'" if scheme else "")
    runs = mlflow.search_runs(
        [exp.experiment_id],
        filter_string=where,
        order_by=["attributes.start_time DESC"],
        max_results=limit if all_runs else 500,
    )
    if runs.empty:
        return runs
    # fits that did not finish (killed, failed, still running) are not fits to compare
    unfinished = mlflow.search_runs(
        [exp.experiment_id], filter_string="attributes.status != 'FINISHED'", output_format="list"
    )
    runs = runs[~runs["tags.mlflow.parentRunId"].isin({r.info.run_id for r in unfinished})]
    runs = runs[_mine(runs)]
    if runs.empty:
        return runs
    if not all_runs:
        parent = runs["tags.mlflow.parentRunId"].iloc[0]
        runs = runs[runs["tags.mlflow.parentRunId"] == parent]
    table = pd.DataFrame({"scheme": runs["tags.custseg.scheme"], "kind": runs["tags.custseg.kind"]})
    for m in COMPARED:
        col = f"metrics.{m.metric}"
        table[m.label] = runs[col] if col in runs else float("nan")
    versions = runs.get("tags.custseg.model_version", pd.Series(None, index=runs.index))
    table["version"] = versions
    reused = runs.get(f"tags.{catalog.REUSED_TAG}", pd.Series(None, index=runs.index))
    table["reused"] = reused.notna()
    champions = _champions(set(table["scheme"]))
    table["champion"] = [
        "yes" if v is not None and champions.get(s) == str(v) else ""
        for s, v in zip(table["scheme"], versions, strict=True)
    ]
    table["as of"] = runs["tags.features.as_of"]
    table["run"] = runs["run_id"].str[:8]
    parents = runs["tags.mlflow.parentRunId"].fillna("")
    table["fit"] = parents.str[:8]
    names = _names(set(parents) - {""})
    table["fit name"] = [names.get(p, "") for p in parents]
    table["started"] = runs["start_time"].dt.strftime("%Y-%m-%d %H:%M")
    return table.reset_index(drop=True)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


def _mine(runs: pd.DataFrame) -> pd.Series:
    """Runs of this project (and, for the default project, runs from before projects)."""
    project = runs.get("tags.custseg.project", pd.Series(None, index=runs.index))
    mine = project == catalog.project()
    if catalog.project() == catalog.PROJECT:
        mine |= project.isna()
    return mine


def _names(run_ids: set[str]) -> dict[str, str]:
    import mlflow

    client = mlflow.MlflowClient()
    return {r: client.get_run(r).info.run_name or "" for r in run_ids}


def _champions(schemes: set[str]) -> dict[str, str]:
    """scheme -> version number served (schemes without one left out)."""
    import mlflow

    from core.registry import served

    members = served(mlflow.MlflowClient())
    return {s: members[segmenter_name(s)] for s in schemes if segmenter_name(s) in members}


def fits(experiment: str, last: int) -> list[str]:
    """Run ids of the `last` newest finished fits (top-level runs with scheme runs), oldest
    first."""
    import mlflow

    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = mlflow.search_runs(
        [exp.experiment_id],
        filter_string=SCHEME_RUNS,
        order_by=["attributes.start_time DESC"],
        max_results=5000,
    )
    if runs.empty:
        return []
    runs = runs[_mine(runs)]
    client = mlflow.MlflowClient()
    out: list[str] = []
    for parent in runs["tags.mlflow.parentRunId"].dropna().drop_duplicates():
        if client.get_run(parent).info.status == "FINISHED":
            out.append(parent)
        if len(out) == last:
            break
    return out[::-1]


@dataclass
class Verdict:
    """A new fit against the served champion of its scheme."""

    scheme: str
    version: str
    champion: str | None  # the served version (None: nothing served)
    better: list[str]  # labels of the measures the new fit wins
    worse: list[str]


def against_champions(logged: dict[str, dict]) -> dict[str, Verdict]:
    """Scheme -> how its logged fit measures up to the served champion (on each one's own
    data), for the schemes whose fit is not the champion already."""
    import mlflow

    from core.registry import served

    client = mlflow.MlflowClient()
    members = served(client)
    out = {}
    for scheme, v in logged.items():
        version, champion = str(v["version"]), members.get(segmenter_name(scheme))
        if v["version"] is None or version == champion:
            continue
        better, worse = [], []
        if champion is not None:
            new = client.get_run(v["run_id"]).data.metrics
            mv = client.get_model_version(segmenter_name(scheme), champion)
            old = client.get_run(mv.run_id).data.metrics
            for m in COMPARED:
                w = winner(m, new.get(m.metric), old.get(m.metric))
                (better if w == "a" else worse if w == "b" else []).append(m.label + m.arrow)
        out[scheme] = Verdict(scheme, version, champion, better, worse)
    return out
