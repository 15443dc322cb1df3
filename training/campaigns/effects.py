"""The strategy-effect table: the measured effect of each (scheme, segment, strategy) per
evaluated campaign, one CSV in the state folder that every `campaign evaluate` updates (a
re-evaluated plan replaces its rows) and `segment compare` reads as "business response"."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from core import catalog
from core.outputs import CSV_ENCODING, staged_file, write_csv

COLUMNS = (
    "scheme",
    "segment",
    "strategy",
    "plan_id",
    "start",
    "end",
    "treatment",
    "control",
    "conversion_uplift",
    "conversion_low",
    "conversion_high",
    "conversion_p_adj",
    "revenue_uplift",
    "revenue_low",
    "revenue_high",
    "revenue_p_adj",
    "incremental_revenue",
    "incremental_roi",
    "responded",
    "evaluated_at",
)


def rows(evaluation) -> pd.DataFrame:
    t = evaluation.segments.reset_index()
    t["scheme"], t["plan_id"] = evaluation.scheme, evaluation.plan_id
    t["start"], t["end"] = str(evaluation.start), str(evaluation.end)
    # responded: a significant (corrected) rise in conversion or revenue per customer
    t["responded"] = (t["conversion_significant"] & (t["conversion_uplift"] > 0)) | (
        t["revenue_significant"] & (t["revenue_uplift"] > 0)
    )
    t["evaluated_at"] = datetime.now().isoformat(timespec="seconds")
    return t.reindex(columns=list(COLUMNS))


def read(path: Path | None = None) -> pd.DataFrame:
    path = path or catalog.campaign_effects()
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.read_csv(path, encoding=CSV_ENCODING, dtype={"segment": str, "plan_id": str})


def update(evaluation, path: Path | None = None) -> Path:
    """Add the evaluation's rows, replacing earlier ones of the same plan."""
    path = path or catalog.campaign_effects()
    old = read(path)
    old = old[~((old["plan_id"] == evaluation.plan_id) & (old["scheme"] == evaluation.scheme))]
    new = rows(evaluation)
    table = new if old.empty else pd.concat([old, new], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(path) as tmp:
        write_csv(table, tmp, index=False)
    return path


def latest(table: pd.DataFrame) -> pd.DataFrame:
    """Each scheme's rows of its latest evaluated plan, measured segments only, with `responded`
    as booleans (the CSV stores them as text)."""
    if table.empty:
        return table
    table = table.sort_values("evaluated_at", kind="stable")
    plan = table.groupby("scheme")["plan_id"].transform("last")
    out = table[(table["plan_id"] == plan) & table["conversion_uplift"].notna()].copy()
    out["responded"] = out["responded"].astype(str).str.lower().eq("true")
    return out


def business_response(path: Path | None = None) -> dict[str, str]:
    """scheme -> "responded/measured segments" in its latest evaluated campaign, e.g. "3/5"."""
    got = latest(read(path)).groupby("scheme")["responded"].agg(["sum", "size"])
    return {str(s): f"{int(r['sum'])}/{int(r['size'])}" for s, r in got.iterrows()}
