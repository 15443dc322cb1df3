"""Record the golden feature values of `definitions.VERSION` (and, the first time, the fixed
log itself). Refuses to overwrite a version's values: a change that moves them is a new version.

    python -m tests.golden.record
"""

from __future__ import annotations

import json
import sys

from features.definitions import VERSION
from tests.golden import AS_OF, HERE, SHAPES, as_records, features, labels, values_path


def write_fixture() -> None:
    """A small generated log with order lines, cancellations and a customer table, cleaned,
    then given what real logs and /score_transactions requests have and the generator does
    not: more categories than the share columns (14, 10 kept), lines without a category or
    channel, orders after the cutoff (never counted) and customers without attributes."""
    from datetime import timedelta

    import pandas as pd

    from custseg.sample import SampleConfig, generate
    from features.cleaning import CleaningConfig, clean
    from features.contract import CUSTOMERS, TRANSACTIONS, type_table

    data = generate(SampleConfig(customers=60, seed=11, multi_line_share=0.5))
    result = clean(
        type_table(data["transactions"], TRANSACTIONS),
        type_table(data["customers"], CUSTOMERS),
        CleaningConfig(reference_date=AS_OF),
    )
    tx, customers = result.transactions.copy(), result.customers.copy()
    rare = tx.index[::7]
    tx.loc[rare, "category"] = [f"类目{i % 8}" for i in range(len(rare))]
    tx.loc[tx.index[3::29], "category"] = None
    tx.loc[tx.index[5::31], "channel"] = None
    later = tx.drop_duplicates("customer_id").head(10).copy()
    later["order_date"] = pd.Timestamp(AS_OF + timedelta(days=5))
    later["order_id"] = later["order_id"] + "-later"
    tx = pd.concat([tx, later], ignore_index=True)
    tx.to_parquet(HERE / "transactions.parquet", index=False)
    customers.iloc[5:].to_parquet(HERE / "customers.parquet", index=False)


def _one_customer_a_line(version: int, tables: dict[str, list[dict]]) -> str:
    """JSON, per shape the column names once and each customer's values on a line of its own:
    a diff shows whose moved."""
    shapes = []
    for shape, rows in tables.items():
        lines = ",\n".join(json.dumps(list(row.values()), ensure_ascii=False) for row in rows)
        columns = json.dumps(list(rows[0]), ensure_ascii=False)
        shapes.append(f'{json.dumps(shape)}: {{"columns": {columns}, "rows": [\n{lines}\n]}}')
    return f'{{"version": {version}, "tables": {{\n' + ",\n".join(shapes) + "\n}}\n"


def main() -> None:
    target = values_path(VERSION)
    if target.exists():
        sys.exit(
            f"{target.name} exists: a version's values never change. If the values moved on "
            "purpose, bump features.definitions.VERSION first."
        )
    if not (HERE / "transactions.parquet").exists():
        write_fixture()
    tables = {shape: as_records(features(shape, "duckdb")) for shape in SHAPES}
    tables["labels"] = as_records(labels("duckdb"))
    target.write_text(_one_customer_a_line(VERSION, tables), encoding="utf-8")
    print(f"wrote {target} ({', '.join(f'{s}: {len(t)} customers' for s, t in tables.items())})")


if __name__ == "__main__":
    main()
