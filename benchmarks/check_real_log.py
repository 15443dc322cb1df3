"""Real-data check: raw UCI Online Retail through `custseg run`, read right.

    python benchmarks/check_real_log.py ../shared/data/online_retail.parquet
    python benchmarks/check_real_log.py online_retail.xlsx --as-of 2011-08-31

Only `--column` mappings and a config file with the two patterns (cancellation invoices,
non-product lines) are given, as a user would. Runs the main job in a fresh process with its
own state folder, then checks its outputs against the raw file with plain pandas and asserts:
orders per customer = distinct non-cancelled invoices with a product line that sold something;
refunds = the kept cancellation lines, all matched to earlier purchases; input rows = kept +
dropped for every table. Prints the wall time of each stage and the job's peak memory.
Not a test: the data lives outside the repository (tests must pass on a fresh clone).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
from harness import print_stages, timed_job

COLUMNS = {  # custseg's name = Online Retail's
    "customer_id": "CustomerID",
    "order_date": "InvoiceDate",
    "order_id": "InvoiceNo",
    "product": "StockCode",
    "category": "Description",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "region": "Country",
}
# Online Retail II (sheet "Year 2009-2010") names the same columns differently
COLUMNS_II = COLUMNS | {
    "customer_id": "Customer ID",
    "order_id": "Invoice",
    "unit_price": "Price",
}
CANCEL = "^C"
NON_PRODUCT = r"^(POST|DOT|M|C2|D|S|B|PADS|CRUK|BANK CHARGES|AMAZONFEE|gift_0001_\d+)$"
CONFIG = f"""[cleaning]
cancel_id_pattern = "{CANCEL}"
non_product_pattern = '{NON_PRODUCT}'
"""


def run_job(
    log: Path, out: Path, as_of: str | None, trials: int, columns: dict
) -> tuple[str, float, float]:
    home = out.parent / "home"
    config = out.parent / "retail.toml"
    config.write_text(CONFIG)
    cmd = [sys.executable, "-m", "custseg", "run", "-t", str(log), "--config", str(config)]
    for target, source in columns.items():
        cmd += ["--column", f"{target}={source}"]
    cmd += ["--out", str(out), "--trials", str(trials), *(["--as-of", as_of] if as_of else [])]
    return timed_job(cmd, home)


def raw_log(path: Path) -> pd.DataFrame:
    """The raw file with file 1's column names (file II's renamed)."""
    if path.suffix.lower() == ".xlsx":
        import fastexcel

        names = _excel_names(path)
        text = {n: "string" for n in ("InvoiceNo", "Invoice", "StockCode") if n in names}
        book = fastexcel.read_excel(str(path))
        raw = book.load_sheet(0, dtypes=text, schema_sample_rows=None).to_pandas()
    else:
        raw = pd.read_parquet(path)
    return raw.rename(columns={COLUMNS_II[k]: COLUMNS[k] for k in COLUMNS if k in COLUMNS_II})


def columns_of(path: Path) -> dict:
    """Which of the two files' column names `path` uses."""
    import pyarrow.parquet as pq

    if path.suffix.lower() == ".xlsx":
        names = _excel_names(path)
    else:
        names = set(pq.read_schema(path).names)
    return COLUMNS_II if "Invoice" in names else COLUMNS


def _excel_names(path: Path) -> set[str]:
    import fastexcel

    return {
        c.name for c in fastexcel.read_excel(str(path)).load_sheet(0, n_rows=1).available_columns()
    }


def expected(raw: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.Series, pd.DataFrame]:
    """Orders per customer from the raw lines, and the cancellation lines, with plain pandas."""
    raw = raw[raw["CustomerID"].notna() & (raw["InvoiceDate"].dt.normalize() <= as_of)].copy()
    raw["customer_id"] = raw["CustomerID"].astype("int64").astype(str)
    raw["amount"] = raw["Quantity"] * raw["UnitPrice"]
    invoice = raw["InvoiceNo"].astype(str)
    product = ~raw["StockCode"].astype(str).str.fullmatch(NON_PRODUCT[1:-1])
    sold = ~invoice.str.match(CANCEL) & (raw["amount"] > 0) & product
    orders = raw[sold].groupby("customer_id")["InvoiceNo"].nunique()
    cancellations = raw[invoice.str.match(CANCEL) & (raw["amount"] < 0) & product]
    return orders, cancellations


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("log", type=Path, help="online_retail.parquet or .xlsx (raw, as published)")
    ap.add_argument("--as-of", default=None, help="cutoff (default: the last order date)")
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="custseg-real-") as tmp:
        out = Path(tmp) / "out"
        columns = columns_of(args.log)
        stderr, wall, peak = run_job(args.log.resolve(), out, args.as_of, args.trials, columns)
        audit = json.loads((out / "audit.json").read_text())
        features = pd.read_parquet(out / "features.parquet").set_index("customer_id")
        clean = pd.read_parquet(out / "transactions.parquet")
    as_of = pd.Timestamp(audit["config"]["reference_date"])
    print(f"custseg run on {args.log.name}, as of {as_of.date()}")
    print_stages(stderr, wall, peak)

    orders, cancellations = expected(raw_log(args.log), as_of)
    got = features["frequency_orders"].reindex(orders.index)
    wrong = (got != orders).sum()
    print(
        f"orders: {orders.sum():,} invoices of {len(orders):,} customers; "
        f"the feature table differs on {wrong}"
    )
    refunds = clean[clean["is_refund"]]
    cancelled_kept = clean["order_id"].astype(str).str.match(CANCEL) & (clean["amount"] < 0)
    print(
        f"refunds: {len(refunds):,} lines kept as refunds of {len(cancellations):,} cancellation "
        f"lines ({cancelled_kept.sum():,} kept); refund amount "
        f"{-refunds['amount'].sum():,.2f}; customers with refunds "
        f"{(features['refund_amount'] > 0).sum():,}"
    )
    for name, t in audit["tables"].items():
        print(
            f"{name}: {t['input_rows']:,} in = {t['kept_rows']:,} kept + {t['dropped_rows']:,} "
            f"dropped ({', '.join(f'{r} {n:,}' for r, n in t['dropped_by_rule'].items())})"
        )
    assert wrong == 0, got[got != orders].head(10)
    assert cancelled_kept.sum() == len(refunds), "every kept cancellation line is a refund"
    by_customer = (-refunds.groupby("customer_id")["amount"].sum()).reindex(features.index)
    assert (by_customer.fillna(0).round(6) == features["refund_amount"].round(6)).all()
    assert all(t["balanced"] for t in audit["tables"].values())
    print("all checks passed")


if __name__ == "__main__":
    main()
