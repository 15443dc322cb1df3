"""A sample log too large to generate in one piece, written block by block.

`generate` holds a whole log in memory (1M customers / 13M order lines: about 5 GB at its
peak). `write_blocks` draws the log in blocks of `block_size` customers instead, each block an
independent `generate` with its own seed and disjoint customer and order ids but the same
distribution, written as one Parquet part of `transactions/` and of `customers/`:

    out/transactions/part-00000.parquet, part-00001.parquet, ...
    out/customers/part-00000.parquet, ...
    out/blocks.json                     # the settings and each block's row counts

Each block depends only on (seed, block number), so the first k blocks of a 10M-customer log
are the k-block log, and a part already written with the same settings is not drawn again.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from custseg.sample import SampleConfig, generate

__all__ = ["block_config", "write_blocks"]

MANIFEST = "blocks.json"
# customer numbers a block may use (real, duplicate and test ids: about 1.03 x its customers)
ID_STRIDE = 2
UNKNOWN_START = 1_000_000_000  # unknown customers' numbers: far above any block's real ids


def block_config(base: SampleConfig, block: int, block_size: int) -> SampleConfig:
    """Block `block`'s settings: `base` with its own seed and id ranges."""
    seed = int(np.random.SeedSequence([base.seed, block]).generate_state(1)[0])
    offset = block * block_size * ID_STRIDE
    return replace(
        base,
        customers=block_size,
        seed=seed,
        id_offset=base.id_offset + offset,
        unknown_id_start=UNKNOWN_START + base.id_offset + offset,
    )


def _settings(base: SampleConfig, block_size: int) -> dict:
    cfg = replace(base, customers=block_size)
    return json.loads(json.dumps(cfg.__dict__, default=str))


def write_blocks(
    out_dir: str | Path,
    customers: int,
    base: SampleConfig | None = None,
    block_size: int = 1_000_000,
    progress=None,
) -> dict:
    """Write a log of `customers` customers (a multiple of `block_size`, or fewer than it) as
    Parquet parts; returns the manifest. Parts already there with the same settings are kept.
    `progress(block, n_blocks)` is called before each block drawn."""
    base = base or SampleConfig()
    if customers < block_size:
        block_size = customers
    if customers % block_size:
        raise ValueError(f"customers = {customers:,}: not a multiple of {block_size:,}")
    out = Path(out_dir)
    for name in ("transactions", "customers"):
        (out / name).mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST
    settings = _settings(base, block_size)
    manifest = json.loads(path.read_text()) if path.exists() else {}
    if manifest.get("settings") != settings:
        manifest = {"settings": settings, "blocks": {}}
    n_blocks = customers // block_size
    for b in range(n_blocks):
        name = f"part-{b:05d}.parquet"
        parts = [out / "transactions" / name, out / "customers" / name]
        if str(b) in manifest["blocks"] and all(p.exists() for p in parts):
            continue
        if progress:
            progress(b, n_blocks)
        data = generate(block_config(base, b, block_size))
        for table, part in zip(("transactions", "customers"), parts, strict=True):
            tmp = part.with_suffix(".tmp")
            pq.write_table(pa.Table.from_pandas(data[table], preserve_index=False), tmp)
            tmp.replace(part)
        manifest["blocks"][str(b)] = {
            "customers": len(data["customers"]),
            "transactions": len(data["transactions"]),
        }
        del data
        path.write_text(json.dumps(manifest, indent=1))
    blocks = {k: v for k, v in manifest["blocks"].items() if int(k) < n_blocks}
    return {
        "settings": settings,
        "blocks": blocks,
        "customers": customers,
        "transactions": sum(v["transactions"] for v in blocks.values()),
        "customer_rows": sum(v["customers"] for v in blocks.values()),
        "transactions_dir": out / "transactions",
        "customers_dir": out / "customers",
    }
