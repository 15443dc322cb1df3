"""The feature definitions compute what their version's golden values say (`tests/golden`):
the definition hash names the version, so values may only move with a new version."""

from __future__ import annotations

import pytest

from features.definitions import VERSION
from tests.conftest import needs_spark
from tests.golden import SHAPES, as_records, features, labels, recorded, same, values_path


@pytest.fixture(scope="module")
def golden() -> dict:
    path = values_path(VERSION)
    if not path.exists():
        pytest.fail(
            f"no golden values for feature definitions v{VERSION} ({path.name}): record them "
            "with `python -m tests.golden.record`"
        )
    return recorded(VERSION)


ENGINES = ["duckdb", "polars", pytest.param("spark", marks=[needs_spark, pytest.mark.slow])]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("table", [*SHAPES, "labels"])
def test_feature_values_are_their_versions(golden, table, engine):
    made = labels(engine) if table == "labels" else features(table, engine)
    got, want = as_records(made), golden[table]
    assert [r["customer_id"] for r in got] == [r["customer_id"] for r in want]
    assert list(got[0]) == list(want[0]), "the feature columns changed"
    moved = [
        f"{g['customer_id']}.{k}: {w[k]!r} -> {g[k]!r}"
        for g, w in zip(got, want, strict=True)
        for k in w
        if not same(g[k], w[k])
    ]
    assert not moved, (
        f"feature values differ from definitions v{VERSION}'s ({len(moved)}, e.g. "
        f"{'; '.join(moved[:5])}): a change that moves any value needs a new "
        "features.definitions.VERSION, then `python -m tests.golden.record`"
    )


def test_the_definition_hash_names_the_version_not_the_source(monkeypatch):
    from features import definitions
    from features.build import definition_hash
    from features.definitions import FeatureConfig

    here = definition_hash(FeatureConfig(), ["a"])
    monkeypatch.setattr(definitions, "VERSION", VERSION + 1)
    assert definition_hash(FeatureConfig(), ["a"]) != here
