"""Drift between the customer table a segmentation was fitted on (reference) and today's (current).

The comparison is a real Evidently 0.7 `DataDriftPreset` report per column group (features,
predictions, target), so the HTML is Evidently's and the verdicts are Evidently's. We keep its
automatic method choice; in 0.7.23 that is, per column:

- reference > 1,000 non-missing values: numeric with > 5 distinct values -> Wasserstein distance
  normed by the reference std; categorical (and numeric with <= 5 values) -> Jensen-Shannon
  distance. Both use threshold 0.1 and drift when score >= threshold.
- reference <= 1,000 values (e.g. a small `max_rows`): K-S (numeric), chi-square (> 2 values) or
  Z-test (2 values) p-values, threshold 0.05, drift when p < threshold.

Evidently cannot test a column with no values on a side (it raises), so such a feature or
prediction column is reported as drifted with method "all missing (<side>)" and infinite severity:
a column that vanished is the loudest drift there is. Target columns with no labels on a side are
left out instead, because labels of current customers usually arrive late.

Evidently is imported inside functions: importing it takes ~10 s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import catalog
from core.errors import CustsegError, InputError

ALL_MISSING = "all missing"
# the drifted-feature share that makes a table drifted: custseg's trigger ([monitoring]
# drift_share) and, passed to its DataDriftPreset, what Evidently's pages show and test (its own
# default is 0.5). Evidently counts a share equal to it as drift, custseg's trigger only above.
DRIFT_SHARE = 0.3
_TINY = 1e-300  # floor for scores in the severity log: p-values underflow to 0.0


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's verdict for one column: method and threshold as Evidently resolved them."""

    column: str
    kind: str  # "numeric" | "categorical"
    method: str
    score: float
    threshold: float
    drifted: bool

    @property
    def severity(self) -> float:
        """Orders of magnitude past the threshold, so distances and p-values rank together.

        Distances (drift when score >= threshold): log10(score / threshold); p-values (drift when
        score < threshold): log10(threshold / score). Positive means drifted; 1.0 is a distance 10x
        its threshold or a p-value 10x below it. Which of the two a method is follows from
        Evidently's own verdict (drifted while below the threshold = p-value). Infinite when a side
        has no values at all.
        """
        if self.method.startswith(ALL_MISSING):
            return math.inf
        ratio = math.log10(max(self.score, _TINY) / max(self.threshold, _TINY))
        is_p_value = self.drifted == (self.score < self.threshold)
        return -ratio if is_p_value else ratio


@dataclass
class DriftResult:
    """Per-column drift of one reference/current comparison, plus Evidently's reports for HTML."""

    features: list[ColumnDrift]
    predictions: list[ColumnDrift]
    target: list[ColumnDrift]
    share_drifted: float  # of feature columns
    n_reference: int
    n_current: int
    _reports: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def drifted_features(self) -> list[str]:
        """Drifted feature names, most severe first (see `ColumnDrift.severity`)."""
        drifted = sorted((c for c in self.features if c.drifted), key=lambda c: -c.severity)
        return [c.column for c in drifted]

    def to_dict(self) -> dict:
        """Plain JSON-ready summary; severity is null where infinite (a side with no values)."""

        def rows(columns: list[ColumnDrift]) -> list[dict]:
            return [
                {**asdict(c), "severity": c.severity if math.isfinite(c.severity) else None}
                for c in columns
            ]

        return {
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "share_drifted": self.share_drifted,
            "drifted_features": self.drifted_features(),
            "features": rows(self.features),
            "predictions": rows(self.predictions),
            "target": rows(self.target),
        }

    def save_html(self, out_dir: str | Path) -> dict[str, Path]:
        """Write Evidently's self-contained report per group as drift_<group>.html, its embedded
        data made unable to end its script (see `inert_page`): column names and category values
        come from the data, and the pages are opened by analysts and logged to MLflow."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pages = {}
        for group, snapshot in self._reports.items():
            with np.errstate(divide="ignore", invalid="ignore"):
                pages[group] = inert_page(snapshot.get_html_str(as_iframe=False), group)
        paths = {}
        for group, page in pages.items():  # all checked before any is written
            paths[group] = out / catalog.drift_page(group)
            paths[group].write_text(page, "utf-8")
        return paths


# Evidently 0.7 (evidently.legacy.utils.dashboard.file_html_template) embeds a page's data in its
# first inline script as two lines, `var <id> = <JSON>;` and `var additional_graphs_<id> = <JSON>;`.
# json.dumps writes no line break, so these lines are the data whatever the data holds, even a
# value that ends the script early in the page as Evidently writes it.
_DATA_SCRIPT = re.compile(
    r"<script>\n(?P<head>[ \t]*var (?P<id>metric_\w+) = )(?P<info>[^\n]*);\n"
    r"(?P<mid>[ \t]*var additional_graphs_(?P=id) = )(?P<graphs>[^\n]*);\n</script>"
)
# the page's other inline scripts: `var global = globalThis`, Evidently's library and the call
# that draws the dashboard; none holds data
_SCRIPTS = 4


def inert_page(page: str, group: str = "report") -> str:
    """Evidently's HTML `page` with the JSON of its data script escaped for a script (`<`, `>`,
    `&` as \\u escapes: `</script>` and `<!--` cannot occur, the dashboard reads the same
    strings), then checked: exactly Evidently's scripts, no event handler, script URL or frame.
    A page of another layout raises a CustsegError rather than being written unchecked."""
    from core.html import scan, script_json

    found = _DATA_SCRIPT.search(page)
    problem = None if found else "no data script where Evidently 0.7 writes it"
    if found:
        data = (
            f"\n{found['head']}{script_json(found['info'])};\n"
            f"{found['mid']}{script_json(found['graphs'])};\n"
        )
        page = f"{page[: found.start()]}<script>{data}</script>{page[found.end() :]}"
        checked = scan(page)
        scripts = checked.scripts
        problem = "; ".join(checked.problems(scripts_allowed=True)) or None
        if problem is None and (
            len(scripts) != _SCRIPTS
            or scripts[0]["text"] != data
            or any(s["attrs"] for s in scripts)
            or f'"root_{found["id"]}"' not in scripts[-1]["text"]
        ):
            problem = f"{len(scripts)} scripts, expected {_SCRIPTS} with the data first"
    if problem:
        from importlib.metadata import version

        raise CustsegError(
            f"drift: Evidently {version('evidently')}'s page for {catalog.drift_page(group)} "
            f"is not laid out as custseg expects ({problem}); not written, as its data could run "
            "as script"
        )
    return page


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    predictions: Sequence[str] = (),
    target: Sequence[str] = (),
    max_rows: int = 50_000,
    seed: int = 0,
    drift_share: float = DRIFT_SHARE,
) -> DriftResult:
    """Compare `current` with `reference` column by column, each side sampled to `max_rows`.
    `drift_share` is the threshold Evidently's pages show for the share of drifted columns.

    Prediction columns are categorical when their dtype is not numeric (segment labels), numeric
    otherwise (probabilities); target columns are always categorical labels.
    """
    features = [*numeric, *categorical]
    groups = {"features": features, "predictions": list(predictions), "target": list(target)}
    columns = list(dict.fromkeys(c for cols in groups.values() for c in cols))
    _check_inputs(reference, current, columns, numeric, categorical, max_rows)
    rng = np.random.default_rng(seed)
    ref, cur = _sample(reference[columns], max_rows, rng), _sample(current[columns], max_rows, rng)

    kinds = {c: "numeric" for c in numeric} | {c: "categorical" for c in categorical}
    kinds |= {c: _prediction_kind(ref[c], cur[c]) for c in predictions}
    kinds |= {c: "categorical" for c in target}

    result: dict[str, list[ColumnDrift]] = {}
    reports: dict[str, Any] = {}
    for group, cols in groups.items():
        result[group], report = _drift_group(
            ref, cur, cols, kinds, keep_missing=group != "target", drift_share=drift_share
        )
        if report is not None:
            reports[group] = report
    n_drifted = sum(c.drifted for c in result["features"])
    return DriftResult(
        **result,
        share_drifted=n_drifted / len(features) if features else 0.0,
        n_reference=len(ref),
        n_current=len(cur),
        _reports=reports,
    )


def _check_inputs(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    numeric: Sequence[str],
    categorical: Sequence[str],
    max_rows: int,
) -> None:
    """One clear InputError (a CustsegError) for what would otherwise fail deep in Evidently."""
    if max_rows < 1:
        raise InputError(f"drift: max_rows must be at least 1, got {max_rows}")
    sides = {"reference": reference, "current": current}
    for side, frame in sides.items():
        if frame.empty:
            raise InputError(f"drift: the {side} table is empty ({len(frame)} rows)")
    for side, frame in sides.items():
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"drift: column(s) {', '.join(missing)} missing from the {side} table")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise InputError(f"drift: column(s) {', '.join(both)} listed as numeric and categorical")
    for side, frame in sides.items():
        bad = [
            c
            for c in numeric
            if not pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any()
        ]
        if bad:
            raise InputError(f"drift: numeric column(s) {', '.join(bad)} are not numeric in {side}")


def _sample(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most `max_rows` rows without replacement: drift tests need a sample, not everyone."""
    return frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=rng)


def _prediction_kind(*sides: pd.Series) -> str:
    """Numeric only if numeric (and not bool) on both sides: labels are compared as categories."""
    numeric = all(
        pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in sides
    )
    return "numeric" if numeric else "categorical"


def _drift_group(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    columns: list[str],
    kinds: dict[str, str],
    *,
    keep_missing: bool,
    drift_share: float = DRIFT_SHARE,
) -> tuple[list[ColumnDrift], Any]:
    """Evidently's verdicts for the columns with values on both sides, plus the all-missing ones."""
    if not columns:
        return [], None
    has = {"reference": _has_values(ref[columns]), "current": _has_values(cur[columns])}
    empty = {c: [side for side in has if not has[side][c]] for c in columns}
    testable = [c for c in columns if not empty[c]]
    drift: dict[str, ColumnDrift] = {}
    if keep_missing:
        for c in columns:
            if empty[c]:
                method = f"{ALL_MISSING} ({' and '.join(empty[c])})"
                drift[c] = ColumnDrift(c, kinds[c], method, 1.0, 0.0, True)
    report = _run_report(ref, cur, testable, kinds, drift_share) if testable else None
    if report is not None:
        drift |= _parse_report(report, kinds)
    return [drift[c] for c in columns if c in drift], report


def _has_values(frame: pd.DataFrame) -> pd.Series:
    """Per column: any value Evidently would keep (it drops NaN and +-inf before testing)."""
    return frame.replace([np.inf, -np.inf], np.nan).notna().any()


def _run_report(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    columns: list[str],
    kinds: dict[str, str],
    drift_share: float = DRIFT_SHARE,
):
    """A DataDriftPreset report over `columns`, with per-column tests (FAIL = drift), its
    dataset-level threshold custseg's `drift_share`."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numeric"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"],
    )

    def dataset(frame: pd.DataFrame):
        # Evidently's numpy code breaks on nullable (Int64) and Arrow-backed numbers: plain floats.
        plain = {c: _as_float(frame[c]) if kinds[c] == "numeric" else frame[c] for c in columns}
        return Dataset.from_pandas(pd.DataFrame(plain), data_definition=definition)

    preset = DataDriftPreset(columns=columns, drift_share=drift_share)
    report = Report([preset], include_tests=True)
    # Evidently's tests divide by zero on categories seen on one side only; the results are right.
    with np.errstate(divide="ignore", invalid="ignore"):
        return report.run(current_data=dataset(cur), reference_data=dataset(ref))


def _as_float(values: pd.Series) -> pd.Series:
    return pd.Series(values.to_numpy(dtype=float, na_value=np.nan), index=values.index)


def _parse_report(report: Any, kinds: dict[str, str]) -> dict[str, ColumnDrift]:
    """ValueDrift metrics (score, resolved method and threshold) joined to their test status."""
    data = report.dict()
    status = {t["metric_config"]["metric_id"]: t["status"] for t in data["tests"]}
    drift = {}
    for metric in data["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift"):
            continue
        column = config["column"]
        drift[column] = ColumnDrift(
            column=column,
            kind=kinds[column],
            method=str(config["method"]),
            score=float(metric["value"]),
            threshold=float(config["threshold"]),
            drifted=status[metric["id"]] == "FAIL",
        )
    return drift
