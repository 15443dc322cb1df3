"""Association rules X -> Y between single items, counted in DuckDB SQL: item counts per group,
items below the minimum support pruned, then pairs by a self-join on the basket id (x < y, so
each pair is counted once), then both directions with their measures:

    support    = n_xy / n_baskets          confidence = n_xy / n_x
    lift       = confidence / (n_y / n_baskets)
    conviction = (1 - n_y / n_baskets) / (1 - confidence)   (inf when confidence = 1)

A group is "all" or a segment: a basket belongs to its customer's segment. `distinctive`
compares a segment's rules with the rest of the customers (confidence there, lift ratio, a
one-sided two-proportion z-test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from training.baskets.build import Baskets
from training.baskets.config import BasketConfig
from training.baskets.sql import INF, number, query

ALL = "all"
COLUMNS = [
    "segment",
    "antecedent",
    "consequent",
    "antecedent_label",
    "consequent_label",
    "n_baskets",
    "n_antecedent",
    "n_consequent",
    "n_both",
    "support",
    "confidence",
    "lift",
    "conviction",
]


def _grouped(b: Baskets, segments: pd.Series | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The lines with a group code, and the group names (all, or the segments of the
    customers: `segments` maps customer_id -> segment; customers without one are left out)."""
    lines = b.lines[["basket", "item", "customer"]]
    if segments is None:
        return lines.assign(grp=np.int32(0)).drop(columns="customer"), np.array([ALL], object)
    seg = pd.Series(segments).astype(object)
    seg = seg[seg.notna()]
    per_customer = seg.reindex(pd.Index(b.customers, dtype=object)).to_numpy(object)
    codes, names = pd.factorize(per_customer[lines["customer"].to_numpy()], sort=True)
    keep = codes >= 0
    out = lines[keep].drop(columns="customer").assign(grp=codes[keep].astype(np.int32))
    return out.reset_index(drop=True), np.asarray(names, object)


def rules(
    b: Baskets, cfg: BasketConfig, segments: pd.Series | None = None, engine: str = "duckdb"
) -> pd.DataFrame:
    """Every rule X -> Y above the thresholds, for all baskets (segments None) or for each
    segment's baskets, sorted by segment then lift; counted on `engine` (duckdb or spark) by
    the same SQL text. With cfg.max_antecedent = 2 also X1, X2 -> Y (columns antecedent_2 and
    its label, empty for single-item rules)."""
    lines, names = _grouped(b, segments)
    pairs_only = cfg.max_antecedent < 2
    if lines.empty:
        return pd.DataFrame(columns=COLUMNS if pairs_only else COLUMNS + ITEMSET_COLUMNS)
    table = pa.Table.from_pandas(lines, preserve_index=False)
    sql = "WITH " + PAIR_CTES + ("" if pairs_only else "," + TRIPLE_CTES) + PAIR_RULES
    sql += "" if pairs_only else " UNION ALL " + TRIPLE_RULES
    second = "" if pairs_only else ", CAST(NULL AS INT) AS antecedent_2"
    out = query(engine, sql.format(**_thresholds(cfg), second=second), {"_rule_lines": table})
    return _named(out, b, names)


ITEMSET_COLUMNS = ["antecedent_2", "antecedent_2_label"]


def _thresholds(cfg: BasketConfig) -> dict[str, str]:
    return {
        "min_count": number(cfg.min_count),
        "min_support": number(cfg.min_support),
        "min_confidence": number(cfg.min_confidence),
        "min_lift": number(cfg.min_lift),
        "inf": INF,
    }


# The queries are DuckDB and Spark SQL alike (training.baskets.sql): {placeholders} are DOUBLE
# literals. Item counts per group, items below the floor pruned, pairs by a self-join on the
# basket (x < y: each pair once), the frequent ones kept. Each CTE that counts is read from
# one place (both directions by a cross join, not a UNION of two reads): Spark inlines a CTE
# at each reference, so a second read would count the pairs again.
PAIR_CTES = """
n AS (SELECT grp, CAST(count(DISTINCT basket) AS DOUBLE) AS nb FROM _rule_lines GROUP BY grp),
floor AS (SELECT grp, nb, greatest({min_count}, ceil({min_support} * nb)) AS low FROM n),
items AS (SELECT grp, item, CAST(count(*) AS DOUBLE) AS n_x FROM _rule_lines
          GROUP BY grp, item),
kept AS (SELECT l.grp, l.basket, l.item FROM _rule_lines l
         JOIN items i ON i.grp = l.grp AND i.item = l.item
         JOIN floor f ON f.grp = l.grp WHERE i.n_x >= f.low),
pairs AS (SELECT a.grp, a.item AS x, b.item AS y, CAST(count(*) AS DOUBLE) AS n_xy
          FROM kept a JOIN kept b
            ON a.grp = b.grp AND a.basket = b.basket AND a.item < b.item
          GROUP BY a.grp, a.item, b.item),
strong AS (SELECT p.grp, p.x, p.y, p.n_xy FROM pairs p JOIN floor f ON f.grp = p.grp
           WHERE p.n_xy >= f.low),
both_ways AS (SELECT s.grp, CASE WHEN d.k = 0 THEN s.x ELSE s.y END AS x,
                     CASE WHEN d.k = 0 THEN s.y ELSE s.x END AS y, s.n_xy
              FROM strong s CROSS JOIN (VALUES (0), (1)) AS d(k))
"""
# X -> Y for each frequent pair, both directions, with their measures.


def _measures(both: str, ante: str, cons: str) -> str:
    """The counts and measures of a rule, one SQL text for pairs and triples: `both`, `ante`,
    `cons` are the basket counts of X and Y, X, Y (f.nb: all baskets of the group)."""
    return f"""f.nb AS n_baskets, {ante} AS n_antecedent, {cons} AS n_consequent, {both} AS n_both,
       {both} / f.nb AS support, {both} / {ante} AS confidence,
       {both} * f.nb / ({ante} * {cons}) AS lift,
       CASE WHEN {both} >= {ante} THEN {{inf}}
            ELSE (1 - {cons} / f.nb) / (1 - {both} / {ante}) END AS conviction"""


def _passes(both: str, ante: str, cons: str) -> str:
    """The minimum confidence and lift, on the same counts as `_measures`."""
    return (
        f"{both} / {ante} >= {{min_confidence}} "
        f"AND {both} * f.nb / ({ante} * {cons}) >= {{min_lift}}"
    )


PAIR_RULES = f"""
SELECT r.grp, r.x AS antecedent, r.y AS consequent,
       {_measures("r.n_xy", "ix.n_x", "iy.n_x")}{{second}}
FROM both_ways r
JOIN floor f ON f.grp = r.grp
JOIN items ix ON ix.grp = r.grp AND ix.item = r.x
JOIN items iy ON iy.grp = r.grp AND iy.item = r.y
WHERE {_passes("r.n_xy", "ix.n_x", "iy.n_x")}
"""
# Triples x < y < z all of whose pairs are frequent (apriori): the frequent pairs of each
# basket, two of them sharing x, and (y, z) frequent too; the frequent triples kept.
TRIPLE_CTES = """
held AS (SELECT a.grp, a.basket, a.item AS x, b.item AS y
         FROM kept a JOIN kept b
           ON a.grp = b.grp AND a.basket = b.basket AND a.item < b.item
         JOIN strong s ON s.grp = a.grp AND s.x = a.item AND s.y = b.item),
triples AS (SELECT p.grp, p.x, p.y, q.y AS z, CAST(count(*) AS DOUBLE) AS n_xyz
            FROM held p JOIN held q
              ON q.grp = p.grp AND q.basket = p.basket AND q.x = p.x AND q.y > p.y
            JOIN strong s ON s.grp = p.grp AND s.x = p.y AND s.y = q.y
            GROUP BY p.grp, p.x, p.y, q.y),
strong3 AS (SELECT t.grp, t.x, t.y, t.z, t.n_xyz FROM triples t JOIN floor f ON f.grp = t.grp
            WHERE t.n_xyz >= f.low),
three_ways AS (SELECT grp, x AS a1, y AS a2, z AS c, n_xyz FROM strong3
               UNION ALL SELECT grp, x AS a1, z AS a2, y AS c, n_xyz FROM strong3
               UNION ALL SELECT grp, y AS a1, z AS a2, x AS c, n_xyz FROM strong3)
"""
# X1, X2 -> Y for each frequent triple, the three ways (X1 < X2), with their measures: the
# antecedent's count is its pair's.
TRIPLE_RULES = f"""
SELECT r.grp, r.a1 AS antecedent, r.c AS consequent,
       {_measures("r.n_xyz", "s.n_xy", "ic.n_x")},
       r.a2 AS antecedent_2
FROM three_ways r
JOIN floor f ON f.grp = r.grp
JOIN strong s ON s.grp = r.grp AND s.x = r.a1 AND s.y = r.a2
JOIN items ic ON ic.grp = r.grp AND ic.item = r.c
WHERE {_passes("r.n_xyz", "s.n_xy", "ic.n_x")}
"""


def _named(out: pd.DataFrame, b: Baskets, names: np.ndarray) -> pd.DataFrame:
    x, y = out["antecedent"].to_numpy(int), out["consequent"].to_numpy(int)
    out = out.assign(
        segment=names[out["grp"].to_numpy(int)],
        antecedent=b.items[x],
        consequent=b.items[y],
        antecedent_label=b.labels[x],
        consequent_label=b.labels[y],
    )
    for c in ("n_baskets", "n_antecedent", "n_consequent", "n_both"):
        out[c] = out[c].astype("int64")
    if "antecedent_2" in out:
        second = out["antecedent_2"].to_numpy(float)
        has = ~np.isnan(second)
        code = np.where(has, second, 0).astype(int)
        out["antecedent_2"] = np.where(has, b.items[code], None)
        out["antecedent_2_label"] = np.where(has, b.labels[code], None)
    order = ["segment", "lift", "n_both", "antecedent", "consequent", "antecedent_2"]
    order = [c for c in order if c in out]
    out = out.sort_values(order, ascending=[True, False, False, True, True, True][: len(order)])
    columns = COLUMNS + (ITEMSET_COLUMNS if "antecedent_2" in out else [])
    return out[columns].reset_index(drop=True)


def distinctive(
    b: Baskets,
    by_segment: pd.DataFrame,
    segments: pd.Series,
    alpha: float = 0.05,
    engine: str = "duckdb",
) -> pd.DataFrame:
    """The segment rules with the same rule among the other customers' baskets: confidence
    and lift there, the lift ratio (segment / rest), and a one-sided two-proportion z-test
    that X -> Y is more confident in the segment; `distinctive` when its p-value is below
    alpha / the segment's number of rules (Bonferroni). Rules X1, X2 -> Y are not compared
    (those columns empty, distinctive False)."""
    from scipy.stats import norm

    if "antecedent_2" in by_segment and by_segment["antecedent_2"].notna().any():
        single = by_segment["antecedent_2"].isna()
        tested = distinctive(b, by_segment[single].reset_index(drop=True), segments, alpha, engine)
        tested.index = by_segment.index[single]
        rest = by_segment[~single].assign(distinctive=False)
        out = pd.concat([tested, rest]).loc[by_segment.index].reset_index(drop=True)
        out["distinctive"] = out["distinctive"].astype(bool)
        return out
    if by_segment.empty:
        return by_segment.assign(
            confidence_rest=[], lift_rest=[], lift_ratio=[], p_value=[], distinctive=[]
        )
    codes = pd.DataFrame(
        {"x": b.item_codes(by_segment["antecedent"]), "y": b.item_codes(by_segment["consequent"])}
    ).drop_duplicates()
    scoped = b.lines[["basket", "item", "customer"]]
    seg = pd.Series(segments).astype(object).reindex(pd.Index(b.customers, dtype=object))
    scoped = scoped[seg.notna().to_numpy()[scoped["customer"].to_numpy()]]
    both = query(
        engine,
        """SELECT p.x, p.y, count(*) AS n_all FROM _d_pairs p
           JOIN _d_lines a ON a.item = p.x
           JOIN _d_lines c ON c.basket = a.basket AND c.item = p.y
           GROUP BY p.x, p.y""",
        {
            "_d_lines": pa.Table.from_pandas(scoped[["basket", "item"]], preserve_index=False),
            "_d_pairs": pa.Table.from_pandas(codes, preserve_index=False),
        },
    )
    item_n = np.bincount(scoped["item"].to_numpy(), minlength=b.n_items)
    n_all = scoped["basket"].nunique()
    out = by_segment.assign(
        x=b.item_codes(by_segment["antecedent"]), y=b.item_codes(by_segment["consequent"])
    ).merge(both, on=["x", "y"], how="left")
    n_rest = n_all - out["n_baskets"]
    x_rest = item_n[out["x"]] - out["n_antecedent"]
    y_rest = item_n[out["y"]] - out["n_consequent"]
    xy_rest = out["n_all"].fillna(0) - out["n_both"]
    with np.errstate(divide="ignore", invalid="ignore"):
        conf_rest = xy_rest / x_rest
        lift_rest = (conf_rest / (y_rest / n_rest)).where(y_rest > 0, 0.0)
        pooled = (out["n_both"] + xy_rest) / (out["n_antecedent"] + x_rest)
        se = np.sqrt(pooled * (1 - pooled) * (1 / out["n_antecedent"] + 1 / x_rest))
        z = (out["confidence"] - conf_rest) / se
    p = pd.Series(norm.sf(z.fillna(0)), index=out.index).where(x_rest > 0, np.nan)
    tests = out.groupby("segment")["segment"].transform("size")
    out = out.drop(columns=["x", "y", "n_all"]).assign(
        confidence_rest=conf_rest,
        lift_rest=lift_rest,
        lift_ratio=out["lift"] / lift_rest,
        p_value=p,
    )
    higher = out["confidence"] > out["confidence_rest"]
    out["distinctive"] = (out["p_value"] < alpha / tests) & higher
    return out
