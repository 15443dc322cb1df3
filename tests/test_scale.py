"""The out-of-core path (issue 24): a sample log written block by block, and `clean_parquet`
cleaning it part by part to what `clean` makes of the whole log in memory."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import InputError
from custseg.sample import CANCEL_ID_PATTERN, SampleConfig, generate
from custseg.sample.blocks import block_config, write_blocks
from features.cleaning import CleaningConfig, clean, clean_parquet
from features.contract import TRANSACTIONS, type_table

AS_OF = date(2026, 6, 30)
BLOCK = 400


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    out = tmp_path_factory.mktemp("blocks")
    return out, write_blocks(out, 2 * BLOCK, SampleConfig(seed=7), block_size=BLOCK)


def _whole(log_dir) -> pd.DataFrame:
    """The blocks as one frame, in file order (what one file of all of them would hold)."""
    parts = sorted((log_dir / "transactions").glob("*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pandas()


def test_blocks_are_deterministic_and_disjoint(log, tmp_path):
    out, manifest = log
    assert len(manifest["blocks"]) == 2
    again = write_blocks(tmp_path, 2 * BLOCK, SampleConfig(seed=7), block_size=BLOCK)
    for table in ("transactions", "customers"):
        for name in ("part-00000.parquet", "part-00001.parquet"):
            assert pq.read_table(out / table / name).equals(pq.read_table(tmp_path / table / name))
    assert again["transactions"] == manifest["transactions"]
    # each block is `generate` with its own settings; a smaller log is the first blocks
    first = generate(block_config(SampleConfig(seed=7), 0, BLOCK))
    assert pa.Table.from_pandas(first["customers"], preserve_index=False).equals(
        pq.read_table(out / "customers" / "part-00000.parquet")
    )
    ids = [
        set(pq.read_table(out / "customers" / f"part-0000{b}.parquet")["customer_id"].to_pylist())
        for b in (0, 1)
    ]
    assert not ids[0] & ids[1]
    orders = [
        set(
            pq.read_table(out / "transactions" / f"part-0000{b}.parquet")["order_id"]
            .drop_null()
            .to_pylist()
        )
        for b in (0, 1)
    ]
    assert not orders[0] & orders[1]
    # block 0 of the default settings is the plain sample (ids from C0000001)
    assert block_config(SampleConfig(), 0, 5000).id_offset == 0
    # a cached part is kept (its file not rewritten)
    mtime = (tmp_path / "transactions" / "part-00000.parquet").stat().st_mtime_ns
    write_blocks(tmp_path, 2 * BLOCK, SampleConfig(seed=7), block_size=BLOCK)
    assert (tmp_path / "transactions" / "part-00000.parquet").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("factor", "policy", "parts"),
    [(10.0, "flag", 3), (2.0, "cap", 5), (2.0, "drop", 5)],
)
def test_clean_parquet_equals_clean_in_memory(log, tmp_path, factor, policy, parts):
    out, _ = log
    cfg = CleaningConfig(
        reference_date=AS_OF,
        cancel_id_pattern=CANCEL_ID_PATTERN,
        extreme_factor=factor,
        policies={"extreme_amount": policy},
    )
    whole = clean(type_table(_whole(out), TRANSACTIONS), None, cfg)
    r = clean_parquet(out / "transactions", tmp_path, cfg, parts=parts)
    assert r.parts == parts
    if factor == 2.0:  # many amounts near a low threshold: parts' own means would differ
        assert r.recleaned > 0
    got = pd.read_parquet(r.paths["transactions"]).sort_values("source_row", ignore_index=True)
    want = whole.transactions.sort_values("source_row", ignore_index=True)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12)
    assert r.audit["tables"] == {
        k: {**v, "source": r.audit["tables"][k]["source"]} for k, v in whole.audit["tables"].items()
    }
    counts = {(x["table"], x["rule"], x["action"]): x["rows"] for x in r.audit["rules"]}
    assert counts == {(x["table"], x["rule"], x["action"]): x["rows"] for x in whole.audit["rules"]}
    assert r.audit["reformatted"] == whole.audit["reformatted"]
    assert r.audit["notes"] == whole.audit["notes"]
    key = ["source_row", "rule", "column"]
    log_got = pd.read_parquet(r.paths["changes"]).sort_values(key, ignore_index=True)
    log_want = whole.changes.sort_values(key, ignore_index=True)
    # a capped amount's text may differ in its last digit (the mean summed in another order)
    for c in ("old_value", "new_value"):
        a = pd.to_numeric(log_got[c], errors="coerce").to_numpy(float)
        b = pd.to_numeric(log_want[c], errors="coerce").to_numpy(float)
        np.testing.assert_allclose(a, b, rtol=1e-12)
        text = np.isnan(b)
        assert log_got[c].astype(object)[text].fillna("").tolist() == (
            log_want[c].astype(object)[text].fillna("").tolist()
        )
    rest = [c for c in log_want.columns if c not in ("old_value", "new_value")]
    pd.testing.assert_frame_equal(log_got[rest].astype("string"), log_want[rest].astype("string"))


def test_a_given_threshold_is_used_as_it_is(log, tmp_path):
    out, _ = log
    cfg = CleaningConfig(reference_date=AS_OF, extreme_threshold=500.0)
    r = clean_parquet(out / "transactions", tmp_path, cfg, parts=2)
    got = pd.read_parquet(r.paths["transactions"])
    assert (got["flag_extreme_amount"] == (got["amount"] > 500.0)).all()
    assert r.recleaned == 0
    assert r.audit["notes"][-1].endswith("threshold = 500.00 (cleaning.extreme_threshold)")
    assert sum("unreadable value" in n for n in r.audit["notes"]) == 1  # the parts' summed


def test_duckdb_settings_come_from_the_environment(monkeypatch):
    from core.errors import CustsegError
    from features.engines import duckdb_settings

    monkeypatch.setenv("CUSTSEG_DUCKDB_MEMORY_LIMIT", "2GB")
    monkeypatch.setenv("CUSTSEG_DUCKDB_TEMP_DIRECTORY", "/tmp/spill")
    monkeypatch.delenv("CUSTSEG_DUCKDB_THREADS", raising=False)
    assert duckdb_settings() == {"memory_limit": "2GB", "temp_directory": "/tmp/spill"}
    monkeypatch.setenv("CUSTSEG_DUCKDB_THREADS", "1'; DROP")
    with pytest.raises(CustsegError):
        duckdb_settings()


def test_features_by_part_equal_the_whole_logs(log, tmp_path):
    from features.build import build_features_by_part, build_features_from_parquet

    out, _ = log
    cfg = CleaningConfig(reference_date=AS_OF, cancel_id_pattern=CANCEL_ID_PATTERN)
    r = clean_parquet(out / "transactions", tmp_path / "clean", cfg, parts=3)
    whole = build_features_from_parquet(r.paths["transactions"], AS_OF)
    got = build_features_by_part(r.paths["transactions"], tmp_path / "features", AS_OF)
    assert got["parts"] == 3
    assert got["rows"] == len(whole)
    assert got["definition_hash"] == whole.attrs["definition_hash"]
    parts = pd.read_parquet(tmp_path / "features").sort_values("customer_id", ignore_index=True)
    assert list(parts.columns) == list(whole.columns)
    pd.testing.assert_frame_equal(parts, whole, check_dtype=False, rtol=1e-9)
    # parts that share a customer are refused (one customer's orders must be in one part)
    split = tmp_path / "shared"
    split.mkdir()
    tx = pd.read_parquet(r.paths["transactions"])
    tx.iloc[::2].to_parquet(split / "a.parquet", index=False)
    tx.iloc[1::2].to_parquet(split / "b.parquet", index=False)
    with pytest.raises(InputError, match="more than one part"):
        build_features_by_part(split, tmp_path / "f2", AS_OF)
