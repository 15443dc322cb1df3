"""The `custseg` command. Heavy libraries are imported inside commands so `--help` is instant."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from custseg.errors import CustsegError

app = typer.Typer(
    name="custseg",
    help="Customer segmentation: clean raw customer data, build features, segment, predict, "
    "serve and monitor. Start with `custseg run` (sample data, all defaults).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

TransactionsOpt = Annotated[
    Path,
    typer.Option(
        "--transactions",
        "-t",
        help="Transaction log (CSV or Parquet): customer_id, order_date, amount, "
        "optional order_id, quantity, product, category, channel, store, region.",
        show_default=False,
    ),
]
CustomersOpt = Annotated[
    Path | None,
    typer.Option(
        "--customers",
        "-c",
        help="Customer table (CSV or Parquet): customer_id, optional signup_date, age, "
        "gender, region, industry, phone, email, is_test, tags.",
        show_default=False,
    ),
]
ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        help="Map a column name: TARGET=SOURCE (e.g. amount=金额), or TABLE.TARGET=SOURCE "
        "(e.g. customers.region=地区). Repeat for several.",
        metavar="TARGET=SOURCE",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file with a \\[cleaning] table: thresholds and per-rule policies (see README).",
        show_default=False,
    ),
]
ReferenceOpt = Annotated[
    str | None,
    typer.Option(
        "--reference-date",
        help="Orders after this date (YYYY-MM-DD) count as future-dated. Default: today.",
        metavar="YYYY-MM-DD",
        show_default=False,
    ),
]


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CustsegError(f"{option} {value!r}: expected a date as YYYY-MM-DD") from None


def _read(transactions: Path, customers: Path | None, column: list[str] | None, max_invalid: float):
    """Both input files under the data contract (exit 2 with a clear line when they break it)."""
    from custseg.progress import stage
    from features.contract import CUSTOMERS, TRANSACTIONS, parse_column_map, read_table

    mapping = parse_column_map(column)
    with stage("reading input"):
        tx = read_table(transactions, TRANSACTIONS, mapping, max_invalid)
        cust = read_table(customers, CUSTOMERS, mapping, max_invalid) if customers else None
    return tx, cust


def _clean(
    transactions: Path,
    customers: Path | None,
    out: Path,
    column: list[str] | None,
    config: Path | None,
    reference_date: str | None,
):
    from custseg import config as cfgmod
    from custseg.progress import stage
    from features.cleaning import clean

    cfg = cfgmod.cleaning(config, reference_date=_date(reference_date, "--reference-date"))
    tx, cust = _read(transactions, customers, column, cfg.max_invalid_share)
    with stage("cleaning"):
        result = clean(tx, cust, cfg)
    with stage("writing outputs"):
        paths = result.write(out)
    _print_summary(result.audit, paths)
    return result, paths


def _cutoff(as_of: str | None, last: date, transactions: Path) -> date:
    """--as-of, or the last order date; a warning when it lies after the last order. A date
    after today is refused: cleaning takes the cutoff as its reference date, so orders dated
    between today and it would pass as real, and recency would count days to come."""
    from custseg.progress import console

    cutoff = _date(as_of, "--as-of") or last
    if cutoff > date.today():
        raise CustsegError(
            f"--as-of {cutoff} is after today ({date.today()}): features are as of a day that "
            "has happened"
        )
    if cutoff > last:
        console.print(
            f"[yellow]warning:[/] --as-of {cutoff} is {(cutoff - last).days} day(s) after the "
            f"last order in {transactions} ({last}): recency and lifecycle stages count those "
            "days as inactivity"
        )
    return cutoff


def _cleaned_features(
    transactions: Path,
    customers: Path | None,
    config: Path | None,
    as_of: str | None,
    engine: str | None,
):
    """Features straight from clean Parquet tables, read by the engine itself (no pandas on
    the way in): `custseg features --cleaned`."""
    from custseg import config as cfgmod
    from custseg.progress import stage
    from features.build import build_features_from_scans, check_clean, scan_clean
    from features.engines import DEFAULT_ENGINE

    engine = engine or DEFAULT_ENGINE
    for path, option in ((transactions, "--transactions"), (customers, "--customers")):
        if path is None:
            continue
        if not path.exists():
            raise CustsegError(f"{option} {path}: no such file or folder")
        if path.is_file() and path.suffix.lower() != ".parquet":
            raise CustsegError(
                f"{option} {path}: --cleaned reads clean Parquet tables (`custseg clean` writes "
                "transactions.parquet and customers.parquet) or a folder of Parquet files"
            )
    feature_cfg = cfgmod.features(config)
    with stage(f"checking {transactions} ({engine})"):
        tx = scan_clean(transactions, "transactions", engine)
        cust = scan_clean(customers, "customers", engine) if customers else None
        last = check_clean(tx, cust, str(transactions))
    if last is None:
        raise CustsegError(f"--transactions {transactions}: no order dated today or earlier")
    cutoff = _cutoff(as_of, last, transactions)
    _warn_cleaned_later(transactions, cutoff)
    with stage(f"features as of {cutoff} ({engine})"):
        table = build_features_from_scans(tx, cutoff, feature_cfg, engine, customers=cust)
    if table.empty:
        raise CustsegError(
            f"no customer in {transactions} has an order (refunds aside) on or before {cutoff} "
            f"(the last order is on {last}); choose a later --as-of"
        )
    return table


def _warn_cleaned_later(transactions: Path, cutoff: date) -> None:
    """Point in time: clean tables whose extreme amounts were capped or dropped against the mean
    of a later reference date (audit.json beside them says) saw data after the cutoff."""
    import json

    from custseg.progress import console

    audit = (transactions if transactions.is_dir() else transactions.parent) / "audit.json"
    try:
        config = json.loads(audit.read_text(encoding="utf-8"))["config"]
        reference = date.fromisoformat(config["reference_date"])
        policy = config["policies"]["extreme_amount"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if reference > cutoff and policy != "flag":
        console.print(
            f"[yellow]warning:[/] these tables were cleaned as of {reference} with extreme "
            f"amounts {'capped' if policy == 'cap' else 'dropped'} against the mean up to that "
            f"date, which includes orders after --as-of {cutoff}; for an exact point-in-time "
            f"table clean with --reference-date {cutoff} (or build from the raw log)"
        )


@dataclass
class Prepared:
    """What the feature stage hands on: the typed inputs, the configs, the cutoff, the
    cleaning result and the feature table as of the cutoff."""

    transactions: object
    customers: object
    cleaning: object
    features_cfg: object
    as_of: date
    table: object
    result: object


def _features(
    transactions: Path,
    customers: Path | None,
    column: list[str] | None,
    config: Path | None,
    as_of: str | None,
    engine: str | None,
) -> Prepared:
    """Clean and build features as of a cutoff (default: the last order date) on `engine`
    (default: the embedded default engine)."""
    import pandas as pd

    from custseg import config as cfgmod
    from custseg.progress import stage
    from features.engines import DEFAULT_ENGINE
    from features.pipeline import features_as_of, last_order_date

    engine = engine or DEFAULT_ENGINE
    cleaning, feature_cfg = cfgmod.cleaning(config), cfgmod.features(config)
    tx, cust = _read(transactions, customers, column, cleaning.max_invalid_share)
    last = last_order_date(tx)
    cutoff = _cutoff(as_of, last, transactions)
    with stage(f"cleaning + features as of {cutoff} ({engine})"):
        table, result = features_as_of(tx, cust, cutoff, cleaning, feature_cfg, engine)
    if table.empty:
        dates = tx.frame["order_date"].dropna()
        if (dates <= pd.Timestamp(cutoff)).any():  # orders up to the cutoff, all dropped
            dropped = result.audit["tables"]["transactions"]["dropped_by_rule"]
            why = ", ".join(f"{r} {n:,}" for r, n in sorted(dropped.items(), key=lambda x: -x[1]))
            raise CustsegError(
                f"no order of {transactions} on or before {cutoff} survives cleaning "
                f"(dropped: {why or 'none'}); `custseg clean` writes the audit of every row"
            )
        raise CustsegError(
            f"no customer has a valid order on or before {cutoff} (orders in {transactions} run "
            f"from {dates.min():%Y-%m-%d} to {last}); choose a later --as-of"
        )
    return Prepared(tx, cust, cleaning, feature_cfg, cutoff, table, result)


def _print_summary(audit: dict, paths: dict[str, Path]) -> None:
    from custseg.progress import console

    for name, t in audit["tables"].items():
        dropped = ", ".join(f"{r} {n:,}" for r, n in t["dropped_by_rule"].items()) or "none"
        console.print(
            f"{name}: {t['input_rows']:,} in, {t['kept_rows']:,} kept, "
            f"{t['dropped_rows']:,} dropped ({dropped})"
        )
    flagged = [r for r in audit["rules"] if r["action"] == "flag" and r["rows"]]
    if flagged:
        console.print("flagged (kept): " + ", ".join(f"{r['rule']} {r['rows']:,}" for r in flagged))
    m = audit["merges"]
    if m["customers_merged_away"]:
        console.print(
            f"duplicate customers: {m['customers_merged_away']:,} ids merged into "
            f"{m['groups']:,} customers"
        )
    for w in audit["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"audit report: {paths['audit_html']}")


@app.command()
def sample(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Folder to write customers, transactions and truth/ into.",
        ),
    ] = Path("data/sample"),
    customers: Annotated[
        int,
        typer.Option(
            "--customers",
            "-n",
            min=10,
            help="Number of real customers (duplicates, test accounts come on top).",
        ),
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 42,
    end_date: Annotated[
        str, typer.Option(help="Last day of the history (YYYY-MM-DD).")
    ] = "2026-06-30",
    orders_scale: Annotated[
        float,
        typer.Option(
            min=0.05, help="Order intensity multiplier (1.0 = about 8-10 orders per customer)."
        ),
    ] = 1.0,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Generate a realistic transaction log and customer table with known ground truth.

    Customers come from latent behaviour groups with seasonality, repurchase cycles and known
    churn dates; dirt (duplicates, test accounts, bad dates, negative amounts, outliers, missing
    fields) is injected at known rates and recorded in OUT/truth/.
    """
    from custseg.progress import console, stage
    from custseg.sample import SampleConfig, generate, write

    if fmt not in ("csv", "parquet"):
        raise CustsegError(f"--format {fmt!r}: use csv or parquet")
    cfg = SampleConfig(
        customers=customers,
        seed=seed,
        end_date=_date(end_date, "--end-date"),
        orders_scale=orders_scale,
    )
    with stage(f"generating {customers:,} customers"):
        data = generate(cfg)
    with stage("writing"):
        paths = write(data, out, fmt)
    console.print(
        f"{len(data['customers']):,} customer rows, {len(data['transactions']):,} "
        f"transactions -> {paths['transactions'].parent}"
    )


@app.command("clean")
def clean_cmd(
    transactions: TransactionsOpt,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", file_okay=False, help="Folder for clean tables and the audit."),
    ],
    customers: CustomersOpt = None,
    column: ColumnOpt = None,
    config: ConfigOpt = None,
    reference_date: ReferenceOpt = None,
) -> None:
    """Clean a transaction log (and customer table) and write an audit of every change.

    Writes OUT/transactions.parquet, customers.parquet, id_map.parquet (merged duplicate ids),
    changes.parquet (one row per dropped, changed or flagged row), audit.json and audit.html.
    """
    _clean(transactions, customers, out, column, config, reference_date)


AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Cutoff date (YYYY-MM-DD): only data on or before it is used. "
        "Default: the last order date in the data.",
        metavar="YYYY-MM-DD",
        show_default=False,
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where the feature definitions run: duckdb (embedded, the default), polars "
        "(embedded) or spark (local mode, or the cluster in CUSTSEG_SPARK_MASTER).",
    ),
]


@app.command("features")
def features_cmd(
    transactions: TransactionsOpt,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", dir_okay=False, help="Snapshot file to write (.parquet)."),
    ],
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    engine: EngineOpt = None,
    column: ColumnOpt = None,
    config: ConfigOpt = None,
    cleaned: Annotated[
        bool,
        typer.Option(
            "--cleaned",
            help="The inputs are clean tables (`custseg clean` outputs: a Parquet file or a "
            "folder of Parquet files): skip cleaning and let the engine read them itself, so "
            "nothing but the result passes through memory here. The path for logs that outgrow "
            "one machine, with --engine spark.",
        ),
    ] = False,
) -> None:
    """Build the customer feature table as of a cutoff and save it as a snapshot.

    RFM over 30/90/180/365-day windows, tenure, order value, inter-purchase gaps, trends,
    category and channel shares, refunds, lifecycle stage, and customer attributes. Cleaning
    and features use only data on or before --as-of, so the table does not change when later
    data is added. The Parquet file records the as-of date and the definition hash.
    """
    from custseg.progress import console
    from features.snapshot import write_snapshot

    if out.suffix.lower() != ".parquet":
        raise CustsegError(f"--out {out}: the snapshot is a Parquet file; name it *.parquet")
    if cleaned and column:
        raise CustsegError(
            "--column maps raw input columns; clean tables (--cleaned) already use custseg's names"
        )
    if cleaned:
        table = _cleaned_features(transactions, customers, config, as_of, engine)
    else:
        table = _features(transactions, customers, column, config, as_of, engine).table
    meta = write_snapshot(table, out)
    console.print(
        f"{len(table):,} customers x {len(table.columns) - 1} features as of {meta['as_of']} "
        f"(definition {meta['definition_hash']}, engine {meta['engine']}) -> {out}"
    )


SchemesOpt = Annotated[
    Path | None,
    typer.Option(
        "--schemes",
        help="Scheme file (TOML): which schemes to fit, their thresholds and the strategy table. "
        "Default: the built-in file (`custseg segment init FILE` writes a copy to edit).",
        show_default=False,
    ),
]
TrialsOpt = Annotated[
    int | None,
    typer.Option(
        "--trials",
        min=1,
        help="Optuna trials for each clustering scheme. Default: the scheme file's `trials` (20).",
        show_default=False,
    ),
]
TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI. Default: MLFLOW_TRACKING_URI, else a SQLite store in the "
        "state folder.",
        show_default=False,
    ),
]
ExperimentOpt = Annotated[
    str, typer.Option("--experiment", help="MLflow experiment to log to / read from.")
]
segment_app = typer.Typer(
    help="Segmentation schemes: fit them side by side, compare their runs, edit the scheme file.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(segment_app, name="segment")


def _segment(table, scheme_file, trials: int | None, out: Path) -> tuple:
    """Fit every scheme of the (checked) scheme file on the feature table and write
    segments.parquet and profiles.csv."""
    from custseg.progress import console
    from training.segmentation import job

    fitted, skipped = job.fit(table, scheme_file, trials)
    paths = job.write(out, table, fitted)
    for name, why in skipped.items():
        console.print(f"[yellow]skipped scheme {name}:[/] {why}")
    _print_schemes(fitted)
    console.print(f"segments: {paths['segments']}; profiles: {paths['profiles']}")
    return fitted, paths


def _print_schemes(fitted, rows: int = 8) -> None:
    """One small table per scheme: its largest segments' names, sizes and revenue shares."""
    from rich.table import Table

    from custseg.progress import console

    for scheme in fitted:
        p = scheme.profile[(scheme.profile["segment"] != "all") & (scheme.profile["customers"] > 0)]
        more = len(p) - rows
        if more > 0:
            p = p.nlargest(rows, "customers")
        t = Table(title=f"{scheme.name} ({scheme.kind})", title_justify="left", box=None)
        t.add_column("segment", overflow="ellipsis", max_width=40, no_wrap=True)
        t.add_column("名称", overflow="ellipsis", max_width=16, no_wrap=True)
        for col in ("customers", "share", "revenue"):
            t.add_column(col, justify="right")
        for r in p.itertuples():
            t.add_row(
                r.name,
                r.name_zh,
                f"{r.customers:,}",
                f"{r.customer_share:.1%}",
                f"{r.revenue_share:.1%}",
            )
        if more > 0:
            t.caption = f"... and {more} smaller segments (profiles.csv has them all)"
        console.print(t)


def _log_segmentation(scheme_file, fitted, table, meta: dict, promote: bool) -> dict:
    from custseg.progress import console
    from training.segmentation import job

    logged = job.log(fitted, table, scheme_file, meta, promote)
    champions = [n for n, v in logged.items() if v["champion"]]
    if champions:
        console.print(f"registered segmenters; alias champion -> {', '.join(champions)}")
    return logged


@segment_app.command("fit")
def segment_fit(
    features: Annotated[
        Path,
        typer.Option(
            "--features", "-f", help="Feature snapshot from `custseg features`.", show_default=False
        ),
    ],
    schemes: SchemesOpt = None,
    trials: TrialsOpt = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", file_okay=False, help="Folder for segments.parquet and profiles.csv."
        ),
    ] = Path("segments"),
    tracking_uri: TrackingOpt = None,
    experiment: ExperimentOpt = "custseg",
    promote: Annotated[
        bool,
        typer.Option(help="Give the new segmenters of served schemes the registry alias champion."),
    ] = True,
    track: Annotated[bool, typer.Option(help="Log the fits to MLflow and register them.")] = True,
) -> None:
    """Fit every scheme of the scheme file on a feature snapshot, side by side.

    RFM rule thresholds, RFM quintile scores, value x activity matrix, ABC (Pareto), demographic
    (when the snapshot has customer attributes) and behavioural clustering tuned by Optuna.
    Each scheme becomes an MLflow run (params, metrics, profile, plots, segmenter model),
    registered as `custseg-segmenter-<scheme>`.
    """
    from custseg import tracking
    from custseg.progress import console
    from features.snapshot import read_snapshot

    table, meta = read_snapshot(features)
    from training.segmentation.base import require_columns
    from training.segmentation.job import check

    scheme_file = check(schemes)
    if track:
        tracking.use(experiment, tracking_uri)
    require_columns(table, ["customer_id"], str(features))
    if table.empty:
        raise CustsegError(f"{features}: the snapshot has no customers")
    fitted, _ = _segment(table, scheme_file, trials, out)
    if track:
        with tracking.run(experiment, "segment", tracking_uri) as active:
            import mlflow

            mlflow.set_tags(
                {"custseg.stage": "segment-fit", "features.as_of": str(meta.get("as_of"))}
            )
            mlflow.log_params({"schemes": scheme_file.path, "features": str(features)})
            _log_segmentation(scheme_file, fitted, table, meta, promote)
            console.print(f"MLflow run {active.info.run_id}: `custseg segment compare` to compare")


@segment_app.command("compare")
def segment_compare(
    experiment: ExperimentOpt = "custseg",
    tracking_uri: TrackingOpt = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Every scheme run, not only the latest fit.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs with --all.")] = 50,
) -> None:
    """Schemes of the latest fit side by side: sizes, revenue concentration, separation in
    a common RFM space, own silhouette (clustering) and bootstrap stability."""
    import mlflow
    from rich.console import Console
    from rich.table import Table

    from custseg import paths as state
    from training.segmentation.tracking import compare

    mlflow.set_tracking_uri(tracking_uri or state.tracking_uri())
    table = compare(experiment, all_runs, limit)
    if table.empty:
        raise CustsegError(
            f"no segmentation runs in experiment {experiment!r} at {mlflow.get_tracking_uri()}; "
            "run `custseg segment fit` or `custseg run` first"
        )
    info = ["as of", "run", "fit", "started"]
    title = f"segmentation schemes, experiment {experiment}"
    if not all_runs:
        first = table.iloc[0]
        title += f": latest fit (run {first['fit']}, as of {first['as of']}, {first['started']})"
        table = table.drop(columns=info)
    t = Table(title=title, title_justify="left", box=None)
    for col in table.columns:
        t.add_column(col, justify="left" if table[col].dtype == object else "right")
    shares = {"largest", "smallest", "top rev"}
    for row in table.to_dict("records"):
        t.add_row(*(_cell(v, k in shares) for k, v in row.items()))
    # the table is the command's output (stdout); a pipe or a file gets it whole, not cut at 80
    out = Console()
    out = out if out.is_terminal else Console(width=200)
    out.print(t)
    out.print(
        "largest/smallest: customer share of the largest/smallest segment; top rev: revenue "
        "share of the top segment; rev HHI: revenue concentration over segments; RFM silh: "
        "silhouette in one log-scaled recency/frequency/monetary space (comparable across "
        "schemes); own silh: in the clustering's own space; stability: mean adjusted Rand "
        "index between the fit and bootstrap refits (1 = refits move nobody)."
    )


def _cell(value, share: bool = False) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if share:
            return f"{value:.1%}"
        return f"{value:.0f}" if value.is_integer() and value > 1 else f"{value:.2f}"
    return "-" if value is None else str(value)


@segment_app.command("init")
def segment_init(
    path: Annotated[Path, typer.Argument(help="Where to write the scheme file.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a copy of the built-in scheme file to edit (thresholds, schemes, strategy table)."""
    from training.segmentation.spec import default_path

    if path.exists() and not force:
        raise CustsegError(f"{path} exists; pass --force to overwrite it")
    try:
        path.write_text(default_path().read_text("utf-8"), "utf-8")
    except OSError as exc:
        raise CustsegError(f"{path}: cannot write the scheme file ({exc.strerror})") from None
    typer.echo(f"wrote {path}; use it with --schemes {path}")


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Open the MLflow UI on the local store (runs, metrics, plots, registered models)."""
    import os

    from custseg import paths as state

    uri = tracking_uri or state.tracking_uri()
    typer.echo(f"MLflow UI for {uri} on http://{host}:{port} (Ctrl-C stops it)")
    args = ["ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", *args])  # this venv's MLflow


@app.command()
def monitor(
    transactions: TransactionsOpt,
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Folder for summary.json, monitor_report.html and the Evidently pages. "
            "Default: monitoring/YYYY-MM-DD (the as-of date) in the state folder.",
            show_default=False,
        ),
    ] = None,
    reevaluate: Annotated[
        bool,
        typer.Option(
            "--reevaluate",
            help="When re-evaluation is needed, refit the schemes on the current data and "
            "promote a challenger that beats its champion.",
        ),
    ] = False,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote/--no-promote", help="With --reevaluate: move the champion alias to winners."
        ),
    ] = True,
    schemes: SchemesOpt = None,
    trials: TrialsOpt = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file: [monitoring] weights and thresholds, [cleaning], [features].",
            show_default=False,
        ),
    ] = None,
    column: ColumnOpt = None,
    tracking_uri: TrackingOpt = None,
    experiment: ExperimentOpt = "custseg",
) -> None:
    """Compare new data with the reference the serving champions were fitted on: Evidently
    drift per feature, prediction and target drift, and the segment health index (0-100) per
    scheme. Writes summary.json (for machines), monitor_report.html (for analysts) and
    Evidently's pages, and logs them to MLflow.

    Health under 60 or a drifted-feature share over 0.3 (see [monitoring] in --config) means
    the schemes need re-evaluation; `--reevaluate` refits them and promotes only a better one.
    Exit code: 0 healthy, 1 unhealthy (re-evaluation needed, or done with --reevaluate: the
    summary says whether it promoted), 2 error.
    """
    from custseg import config as cfgmod
    from custseg import paths as state
    from custseg import tracking
    from custseg.progress import console, stage
    from features.pipeline import last_order_date
    from monitoring import summary
    from monitoring.job import check
    from monitoring.reference import champion_references
    from monitoring.report import write_report
    from serving.models import load_champions

    cfg = cfgmod.monitoring(config)
    scheme_file = None
    if reevaluate:
        from training.segmentation import job as segjob

        scheme_file = segjob.check(schemes)
    uri = tracking_uri or state.tracking_uri()
    tracking.use(experiment, uri)
    try:  # exit 1 means "unhealthy": an unexpected crash must say so and exit 2 instead
        with stage("loading the serving champions and their reference"):
            models = load_champions(uri)
            references = champion_references(models.versions, uri)
        cleaning, features_cfg = cfgmod.cleaning(config), cfgmod.features(config)
        tx, cust = _read(transactions, customers, column, cleaning.max_invalid_share)
        cutoff = _date(as_of, "--as-of") or last_order_date(tx)
        m = check(tx, cust, cutoff, models, references, cleaning, features_cfg, cfg)
        out = out or state.home() / "monitoring" / str(cutoff)
        with tracking.run(experiment, "monitor", uri):
            with stage("writing the Evidently pages"):
                reports = m.drift.save_html(out)
            verdicts = None
            if m.needed and scheme_file is not None:
                from monitoring.reevaluate import reevaluate

                with stage("re-evaluating the schemes on the current data"):
                    found = reevaluate(
                        m, models, scheme_file, trials or cfg.reevaluate_trials, cfg, promote
                    )
                verdicts = {k: v.to_dict() for k, v in found.items()}
            data = summary.summary(m, models, cfg, verdicts, reports)
            history = summary.update_history(state.home() / "monitoring" / "history.csv", m)
            report = write_report(data, history, out)
            path = summary.write(out, data)
            run_id = summary.log_run(m, data, [path, report, *reports.values()])
    except CustsegError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CustsegError(f"monitoring failed: {type(exc).__name__}: {exc}") from exc
    _print_monitoring(m, data, cfg)
    console.print(f"summary: {path}\nreport: {report}  (open it in a browser)\nMLflow run {run_id}")
    if data["status"] != "healthy":
        console.print("[yellow]unhealthy:[/] exit code 1")
        raise typer.Exit(1)


def _print_monitoring(m, data: dict, cfg) -> None:
    from rich.table import Table

    from custseg.progress import console

    t = Table(
        title=f"segment health as of {m.as_of} (reference {m.reference.as_of})",
        title_justify="left",
        box=None,
    )
    t.add_column("scheme")
    t.add_column("health", justify="right")
    for p in next(iter(m.health.values())).parts:
        t.add_column(p.name.replace("_", " "), justify="right")
    for scheme, h in m.health.items():
        t.add_row(
            scheme,
            f"{h.score:.0f}" + ("" if h.healthy else " !"),
            *("n/a" if p.score is None else f"{p.score:.0f}" for p in h.parts),
        )
    console.print(t)
    d = m.drift
    console.print(
        f"drift: {len(d.drifted_features())} of {len(d.features)} features drifted "
        f"(share {d.share_drifted:.2f}, threshold {cfg.drift_share:g})"
        + (f": {', '.join(d.drifted_features()[:8])}" if d.drifted_features() else "")
    )
    for why in m.reasons:
        console.print(f"[yellow]re-evaluation needed:[/] {why}")
    for note in m.notes:
        console.print(f"note: {note}")
    for scheme, v in (data["reevaluation"] or {}).items():
        verdict = f"promoted v{v['version']}" if v["promoted"] else "champion kept"
        console.print(f"{scheme}: {verdict}: {v['reason']}")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Serve the registered champions over HTTP (BentoML): POST /predict with customers'
    feature rows -> segment per scheme and repurchase / churn probabilities; GET /metadata
    (models, versions, feature schema); /healthz, /readyz; POST /reload picks up new champions.

    Set CUSTSEG_API_KEY to require the header `x-api-key`; CUSTSEG_MAX_BATCH caps a batch (5000).
    """
    import os

    from custseg import paths as state

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri or state.tracking_uri()
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    args = ["serve", "serving.service:Custseg", "--host", host, "--port", str(port)]
    typer.echo(
        f"serving the champions of {os.environ['MLFLOW_TRACKING_URI']} on http://{host}:{port}"
    )
    os.execv(sys.executable, [sys.executable, "-m", "bentoml", *args])


@app.command()
def run(
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions",
            "-t",
            help="Transaction log. Default: generate sample data first.",
            show_default=False,
        ),
    ] = None,
    customers: CustomersOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Output folder. Default: .custseg/output in the state folder.",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    repurchase_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Repurchase = an order within this many days after the cutoff. [30]",
            show_default=False,
        ),
    ] = None,
    churn_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Churn = no order within this many days after the cutoff. [90]",
            show_default=False,
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            help="Optuna trials for each tuned model (clustering, repurchase, churn). [20]",
            show_default=False,
        ),
    ] = None,
    schemes: SchemesOpt = None,
    column: ColumnOpt = None,
    config: ConfigOpt = None,
    study_storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL shared by workers, e.g. sqlite:///optuna.db or "
            "postgresql://host/db: processes running the same job join one study. "
            "Default: in memory.",
            show_default=False,
        ),
    ] = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            help="Study name prefix in that storage (studies are <name>-<target>-<as of>). "
            "[custseg]",
            show_default=False,
        ),
    ] = None,
    sample_customers: Annotated[
        int, typer.Option(help="Customers to generate when no --transactions is given.")
    ] = 25_000,
    tracking_uri: TrackingOpt = None,
    experiment: ExperimentOpt = "custseg",
    track: Annotated[
        bool, typer.Option(help="Log to MLflow and register the models (and promote them).")
    ] = True,
) -> None:
    """The main job: clean, build features, fit the segmentation schemes and the churn and
    repurchase models, log and register them in MLflow, and score every customer.

    Writes to --out: **scores.csv** (customer_id, repurchase_probability, churn_probability,
    segment_<scheme> per scheme), **report.html** (segments, models vs baselines, drivers),
    the clean tables and audit, features.parquet, segments.parquet and profiles.csv.
    Without --transactions it generates sample data first (`make run`).
    """
    from custseg import config as cfgmod
    from custseg import paths as state
    from custseg.progress import console, stage

    pcfg = cfgmod.prediction(
        config,
        repurchase_days=repurchase_days,
        churn_days=churn_days,
        trials=trials,
        study_storage=study_storage,
        study_name=study_name,
    )
    from training.segmentation.job import check

    # a typo in the scheme file or the tracking URI fails now, not after the work
    scheme_file = check(schemes)
    if pcfg.study_storage:
        from dataclasses import replace

        pcfg = replace(pcfg, study_storage=_study_storage(pcfg.study_storage))
    if track:
        from custseg import tracking

        tracking.use(experiment, tracking_uri)
    home = state.home()
    out = out or home / "output"
    if transactions is None:
        from custseg.sample import SampleConfig, generate, write

        with stage(f"sample data ({sample_customers:,} customers)"):
            files = write(generate(SampleConfig(customers=sample_customers)), home / "sample")
        transactions, customers = files["transactions"], files["customers"]
    prep = _features(transactions, customers, column, config, as_of, None)
    from features.snapshot import write_snapshot

    with stage("writing clean tables and features"):
        paths = prep.result.write(out)
        paths["features"] = out / "features.parquet"
        meta = write_snapshot(prep.table, paths["features"])
    _print_summary(prep.result.audit, paths)
    console.print(
        f"features: {len(prep.table):,} customers x {len(prep.table.columns) - 1} as of "
        f"{meta['as_of']} -> {paths['features']}"
    )
    fitted, seg_paths = _segment(prep.table, scheme_file, trials, out)
    paths.update(seg_paths)
    predictions, skipped, notes = _predict(prep, pcfg)
    run_id = None
    if track:
        from custseg import tracking

        with tracking.run(experiment, "run", tracking_uri) as active:
            _track(prep.result.audit, meta, paths)
            _log_segmentation(scheme_file, fitted, prep.table, meta, promote=True)
            _log_predictions(predictions, meta, pcfg)
            run_id = active.info.run_id
    else:
        from training.prediction.promotion import Decision, decide

        for r in predictions.values():  # nothing registered, so nothing promoted
            d = decide(r, metric=pcfg.gate_metric)
            r.decision = Decision(
                False, f"not registered (--no-track); {d.reason}", metric=d.metric
            )
    paths.update(_scores(prep, fitted, predictions, skipped, notes, out, run_id))
    if run_id:
        from custseg.tracking import log_outputs

        log_outputs(run_id, tracking_uri, [paths["scores"], paths["report"]])
    console.print(f"scores: {paths['scores']}")
    console.print(f"report: {paths['report']}  (open it in a browser)")
    if run_id:
        console.print(
            f"MLflow run {run_id} (experiment {experiment}); `custseg segment compare` compares "
            f"the schemes, `custseg ui` opens the MLflow UI"
        )


def _study_storage(value: str) -> str:
    """An Optuna storage URL (a plain path means a SQLite file), checked by connecting."""
    import time

    import optuna

    url = value if "://" in value else f"sqlite:///{Path(value).resolve()}"
    for attempt in range(3):  # workers starting together race to create the schema: retry
        try:
            optuna.storages.get_storage(url)
            return url
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy, drivers and Optuna raise many kinds
            if attempt == 2:
                first = str(exc).splitlines()[0]
                raise CustsegError(f"--study-storage {value}: cannot open it ({first})") from None
            time.sleep(1 + attempt)
    return url


def _predict(prep: Prepared, pcfg) -> tuple[dict, dict, list]:
    from custseg.progress import console
    from training.prediction import job

    results, skipped, notes = job.fit(
        prep.transactions,
        prep.customers,
        prep.result.transactions,
        prep.table,
        prep.as_of,
        prep.cleaning,
        prep.features_cfg,
        pcfg,
    )
    for why in [*skipped.values(), *notes]:
        console.print(f"[yellow]note:[/] {why}")
    for target, r in results.items():
        auc = max(m["roc_auc"] for m in r.baselines.values())
        loss = min(m["log_loss"] for m in r.baselines.values())
        console.print(
            f"{target} on the held-out window {r.plan.test}: log loss {r.metrics['log_loss']:.4f} "
            f"(best baseline {loss:.4f}), ROC-AUC {r.metrics['roc_auc']:.3f} (best baseline "
            f"{auc:.3f}), calibration {r.predictor.calibrator.method}"
        )
    return results, skipped, notes


def _log_predictions(predictions: dict, meta: dict, pcfg) -> None:
    import logging
    import warnings

    from custseg.progress import console, stage
    from training.prediction.tracking import log_target

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    for target, r in predictions.items():
        with stage(f"logging {target} model to MLflow"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MLflow's schema hints
            out = log_target(r, meta, pcfg.gate_metric, pcfg.gate_margin)
        verdict = "[green]champion[/]" if out["promoted"] else "[yellow]not promoted[/]"
        console.print(f"{target}: registered v{out['version']}, {verdict}: {out['decision']}")


def _scores(prep: Prepared, fitted, predictions, skipped, notes, out: Path, run_id) -> dict:
    """scores.csv (one row per customer with an order on or before as-of) and report.html."""
    import numpy as np

    from custseg.progress import stage
    from training.report import write_report
    from training.segmentation import job

    with stage("scoring customers + report"):
        scores = job.assignments(prep.table, fitted)  # customer_id, segment_<scheme>...
        for i, target in enumerate(("repurchase", "churn"), start=1):
            r = predictions.get(target)
            p = r.predictor.predict_proba(prep.table).round(6) if r else np.nan
            scores.insert(i, f"{target}_probability", p)
        paths = {"scores": out / "scores.csv", "report": out / "report.html"}
        scores.to_csv(paths["scores"], index=False)
        write_report(
            paths["report"],
            as_of=str(prep.as_of),
            audit=prep.result.audit,
            schemes=fitted,
            predictions=predictions,
            skipped=skipped,
            notes=notes,
            run_id=run_id,
        )
    return paths


def _track(audit: dict, features: dict, paths: dict[str, Path]) -> None:
    """Cleaning and feature figures on the active MLflow run."""
    import mlflow

    from custseg import tracking

    params = tracking.flatten("cleaning", {k: v for k, v in audit["config"].items()})
    mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
    metrics = {}
    for name, t in audit["tables"].items():
        metrics.update(
            {
                f"{name}.input_rows": t["input_rows"],
                f"{name}.kept_rows": t["kept_rows"],
                f"{name}.dropped_rows": t["dropped_rows"],
            }
        )
    for r in audit["rules"]:
        metrics[f"{r['table']}.{r['rule']}.{r['action']}"] = r["rows"]
    for name, cols in audit["missing_rates"].items():
        metrics.update({f"{name}.missing.{c}": m["input"] for c, m in cols.items()})
    metrics["features.customers"] = features["rows"]
    metrics["features.columns"] = len(features["features"])
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    mlflow.log_params(
        {
            "features.as_of": features["as_of"],
            "features.definition_hash": features["definition_hash"],
            "features.engine": features["engine"],
        }
    )
    mlflow.log_dict(features, "features/snapshot_meta.json")
    mlflow.set_tags(
        {"custseg.stage": "run", "balanced": all(t["balanced"] for t in audit["tables"].values())}
    )
    for key in ("audit_json", "audit_html"):
        mlflow.log_artifact(str(paths[key]), artifact_path="cleaning")


def main() -> None:
    try:
        app()
    except CustsegError as exc:
        typer.echo(f"custseg: error: {exc}", err=True)
        sys.exit(2)
