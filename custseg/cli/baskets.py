"""`custseg basket`: what customers buy together (association rules for all customers and per
segment) and the next-best products per customer, checked out of time."""

from __future__ import annotations

from typing import Annotated

import typer

from custseg.cli.options import (
    DEFAULT_EXPERIMENT,
    AsOfOpt,
    ColumnOpt,
    ConfigOpt,
    CustomersOpt,
    ExperimentOpt,
    ProjectOpt,
    SchemesOpt,
    SheetOpt,
    TrackingOpt,
    TrackOpt,
    TransactionsOpt,
    column_map,
    configs,
    out_option,
    parse_date,
    tracking,
)

BasketOut = out_option("Output folder. Default: baskets/ in the state folder.")


def basket(
    transactions: TransactionsOpt,
    customers: CustomersOpt = None,
    out: BasketOut = None,
    as_of: AsOfOpt = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            help="Items of a basket: product or category. [product, or [baskets] level]",
            show_default=False,
        ),
    ] = None,
    scheme: Annotated[
        str | None,
        typer.Option(
            "--scheme",
            help="Also mine the rules per segment of this scheme of the scheme file (fitted "
            "as of the cutoff), e.g. rfm_rules; 'none': all customers only. [rfm_rules]",
            show_default=False,
        ),
    ] = "rfm_rules",
    schemes: SchemesOpt = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where the pairs are counted (the same SQL): duckdb (embedded) or spark "
            "(local mode, or the cluster in CUSTSEG_SPARK_MASTER).",
        ),
    ] = "duckdb",
    column: ColumnOpt = None,
    sheet: SheetOpt = None,
    config: ConfigOpt = None,
    tracking_uri: TrackingOpt = None,
    project: ProjectOpt = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    track: TrackOpt = True,
) -> None:
    """What customers buy together: association rules X -> Y (support, confidence, lift,
    conviction) for all customers and per segment, the rules that set each segment apart, and
    the next-best products per customer with an out-of-time check against popularity.

    One basket per order (per customer-day without order ids), lines after --as-of and
    refunds left out. Writes to --out: rules.csv, rules.parquet, next_best.csv, baskets.json
    and baskets.html; logs them to MLflow.
    """
    from core.progress import console
    from features.stage import features_from_log
    from training.baskets.sql import checked
    from training.baskets.stage import run_baskets
    from training.pipeline import check

    engine = checked(engine)  # before the log is read
    cfg = configs(config, level=level)
    where = tracking(track, experiment, tracking_uri)
    check(cfg, None, where)
    feats = features_from_log(
        transactions,
        customers,
        column_map(column),
        cfg.cleaning,
        cfg.features,
        parse_date(as_of, "--as-of"),
        sheet=sheet,
    )
    r = run_baskets(
        feats,
        out,
        cfg.baskets,
        scheme=None if (scheme or "none").lower() == "none" else scheme,
        schemes_path=schemes,
        track=where,
        inputs=[transactions, customers],
        engine=engine,
    )
    s = r.summary
    console.print(
        f"baskets: {s['baskets']:,} of {s['customers']:,} customers, {s['items']:,} "
        f"{s['level']}s as of {s['as_of']}; rules: "
        + ", ".join(f"{k} {v:,}" for k, v in s["rules"].items())
    )
    check_ = r.validation
    for name, m in check_["methods"].items():
        console.print(
            f"next-best, out of time ({check_['customers']:,} customers after {check_['cutoff']}):"
            f" {name}: hit rate@{check_['k']} {m['hit_rate']:.1%}, recall@{check_['k']} "
            f"{m['recall']:.4f}"
        )
    for key in ("rules_csv", "next_best", "page"):
        console.print(f"{key.replace('_', ' ')}: {r.paths[key]}")
    if r.run_id:
        console.print(f"MLflow run {r.run_id} (experiment {experiment})")
