"""The reference a serving champion was fitted on: the feature snapshot logged with it.

`custseg run` / `custseg segment fit` log the feature table to the fitting run
(`reference/features.parquet`) and tag every scheme run with that run's id; a champion's
registered version points at its scheme run, so the reference of what is served is one lookup
away and never a file somebody has to keep.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date

import pandas as pd

from core.catalog import REFERENCE_DIR, REFERENCE_FILE, REFERENCE_TAG, scheme_of
from core.errors import CustsegError
from features.snapshot import read_snapshot


@dataclass(frozen=True)
class Reference:
    table: pd.DataFrame  # the feature snapshot (customer_id + features), attrs as_of, categories
    as_of: date
    definition_hash: str | None
    run_id: str  # the fitting run that logged it
    schemes: tuple[str, ...]  # the champion schemes fitted on it

    @property
    def categories(self) -> list[str] | None:
        return self.table.attrs.get("categories")


def champion_references(versions: dict[str, str], tracking_uri: str) -> dict[str, Reference]:
    """Scheme -> the reference its serving champion was fitted on (`versions`: registered
    name -> version, as the serving model set reports them). Champions fitted together share
    one Reference; after a re-evaluation promoted some schemes, they have a newer one."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    runs: dict[str, list[str]] = {}
    for name, version in sorted(versions.items()):
        scheme = scheme_of(name)
        if scheme is None:
            continue
        run_id = client.get_model_version(name, version).run_id
        reference = client.get_run(run_id).data.tags.get(REFERENCE_TAG)
        if reference is None:
            raise CustsegError(
                f"champion {name} v{version} has no reference snapshot (it was fitted before "
                "custseg logged one): fit the schemes again (`custseg run`) to monitor them"
            )
        runs.setdefault(reference, []).append(scheme)
    if not runs:
        raise CustsegError(
            f"no segmenter champion in the registry at {tracking_uri}: run `custseg run` first"
        )
    out = {}
    for run_id, schemes in runs.items():
        ref = _download(run_id, tuple(schemes), tracking_uri)
        out |= dict.fromkeys(schemes, ref)
    return out


def oldest(references: dict[str, Reference]) -> Reference:
    """The oldest reference still served: drift compares today's data with it (after a
    re-evaluation promoted some schemes, the rest still stand on the older one)."""
    return min(references.values(), key=lambda r: (r.as_of, r.run_id))


def _download(run_id: str, schemes: tuple[str, ...], tracking_uri: str) -> Reference:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=f"{REFERENCE_DIR}/{REFERENCE_FILE}",
            dst_path=tmp,
            tracking_uri=tracking_uri,
        )
        table, meta = read_snapshot(path)
    return Reference(
        table=table,
        as_of=date.fromisoformat(str(meta["as_of"])[:10]),
        definition_hash=meta.get("definition_hash"),
        run_id=run_id,
        schemes=schemes,
    )
