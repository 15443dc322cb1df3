"""Next-best products: for each customer, the k items it has not bought (or not in the last
N days) that its history points to most, from item-item co-occurrence:

    score(customer, y) = sum over items x the customer bought of n_xy / (n_x + shrink)

(the confidence of x -> y, shrunk towards 0 for rare x), computed as sparse matrix products
(customers x items history @ items x items co-occurrence) in chunks of customers; ties and
customers without co-occurring items fall back to popularity.

`validate` checks it out of time: history up to c = as_of - horizon, the top k against what
each customer bought in (c, as_of] that it had not bought before, next to two baselines on the
same customers: the most popular items, and the most popular items of the customer's segment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy import sparse

from training.baskets.build import Baskets
from training.baskets.config import BasketConfig

CELLS = 20_000_000  # dense score cells per chunk of customers (float32: 80 MB)


def incidence(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """A 0/1 sparse matrix with ones at (rows, cols) (duplicates count once)."""
    m = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    m.data[:] = 1.0
    return m


def cooccurrence(b: Baskets, shrink: float) -> sparse.csr_matrix:
    """items x items: n_xy / (n_x + shrink), zero diagonal."""
    lines = b.lines
    basket = incidence(
        lines["basket"].to_numpy(), lines["item"].to_numpy(), (b.n_baskets, b.n_items)
    )
    counts = (basket.T @ basket).tocsr()
    n_x = counts.diagonal()
    counts.setdiag(0)
    counts.eliminate_zeros()
    return (sparse.diags(1.0 / (n_x + shrink)) @ counts).astype(np.float32).tocsr()


def history(b: Baskets, since_day: int | None = None) -> sparse.csr_matrix:
    """customers x items, 1 where the customer bought the item (after `since_day`, if given)."""
    lines = b.lines if since_day is None else b.lines[b.lines["day"] > since_day]
    return incidence(
        lines["customer"].to_numpy(), lines["item"].to_numpy(), (b.n_customers, b.n_items)
    )


def popularity(b: Baskets) -> np.ndarray:
    """Baskets holding each item, as a share of all baskets."""
    n = np.bincount(b.lines["item"].to_numpy(), minlength=b.n_items).astype(np.float64)
    return n / max(b.n_baskets, 1)


def top_k(
    scores: Callable[[np.ndarray], np.ndarray],
    exclude: sparse.csr_matrix,
    rows: np.ndarray,
    k: int,
) -> np.ndarray:
    """rows x k item codes of the highest scores, items in `exclude` left out (-1: fewer
    than k items left). `scores(chunk)` gives the dense scores of a chunk of rows."""
    n_items = exclude.shape[1]
    k = min(k, n_items)
    out = np.full((len(rows), k), -1, np.int64)
    step = max(1, CELLS // max(n_items, 1))
    for start in range(0, len(rows), step):  # chunks of customers, not a loop over rows
        chunk = rows[start : start + step]
        s = np.asarray(scores(chunk), dtype=np.float32)
        ex = exclude[chunk].tocoo()
        s[ex.row, ex.col] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
        best = np.take_along_axis(part, order, 1)
        best[~np.isfinite(np.take_along_axis(s, best, 1))] = -1
        out[start : start + len(chunk)] = best
    return out


def _served(model, keep: np.ndarray, hist: sparse.csr_matrix):
    """Scores over all the baskets' items of the next-best model (which knows the items in
    `keep` only: the others score -inf, never offered); popularity breaks ties and scores
    customers whose items co-occur with nothing."""
    n_items = hist.shape[1]
    sub = hist[:, keep].tocsr()

    def scores(chunk: np.ndarray) -> np.ndarray:
        out = np.full((len(chunk), n_items), -np.inf, np.float32)
        out[:, keep] = (sub[chunk] @ model.conf).toarray() + model.tie
        return out

    return scores


def _exclusion(b: Baskets, cfg: BasketConfig) -> sparse.csr_matrix:
    if cfg.repeat_after_days <= 0:
        return history(b)
    as_of = (pd.Timestamp(b.as_of) - pd.Timestamp(0)).days
    return history(b, as_of - cfg.repeat_after_days)


def next_best(b: Baskets, cfg: BasketConfig, k: int | None = None, model=None) -> pd.DataFrame:
    """customer_id, next_best_1..k (item names; empty when fewer are left), one row per
    customer with a basket. Scored by `model` (`NextBestModel.fit(b, cfg)` when not given),
    as the service scores a history: the same matrices, the same `top`."""
    from training.baskets.model import NextBestModel

    k = k or cfg.top_k
    model = model or NextBestModel.fit(b, cfg)
    keep = _codes(b, model)
    hist = history(b)[:, keep].tocsr()
    hist.sort_indices()  # the order the service's histories sum in
    best = model.top(hist, _exclusion(b, cfg)[:, keep].tocsr(), k)
    names = np.append(model.items, None)[best]  # -1 -> None
    out = pd.DataFrame(names, columns=[f"next_best_{i + 1}" for i in range(best.shape[1])])
    out.insert(0, "customer_id", b.customers)
    return out


def _codes(b: Baskets, model) -> np.ndarray:
    """The baskets' item codes of the model's items (the model names items as text)."""
    return pd.Index([str(x) for x in b.items], dtype=object).get_indexer(
        pd.Index(model.items, dtype=object)
    )


def validate(
    b: Baskets,
    cfg: BasketConfig,
    segments_at: Callable[[date], pd.Series] | None = None,
    k: int | None = None,
) -> dict:
    """Hit rate@k and recall@k of the next-best items against what customers bought in
    (as_of - horizon, as_of] that they had not bought before, for the co-occurrence model,
    the popularity baseline and (given `segments_at(cutoff)`: customer_id -> segment) the
    segment-popularity baseline, on the same customers."""
    k = k or cfg.top_k
    cutoff = b.as_of - timedelta(days=cfg.horizon_days)
    past = b.until(cutoff)
    later = b.after(cutoff)
    hist = history(past)
    later_m = incidence(
        later["customer"].to_numpy(), later["item"].to_numpy(), (b.n_customers, b.n_items)
    )
    new = later_m - later_m.multiply(hist)  # bought later, never before the cutoff
    new.eliminate_zeros()
    n_new = np.asarray(new.sum(axis=1)).ravel()
    rows = np.flatnonzero((np.asarray(hist.sum(axis=1)).ravel() > 0) & (n_new > 0))
    out = {
        "cutoff": str(cutoff),
        "horizon_days": cfg.horizon_days,
        "k": k,
        "customers": int(len(rows)),
        "baskets_before": past.n_baskets and int(past.lines["basket"].nunique()),
        "methods": {},
    }
    if not len(rows):
        return out
    pop = popularity(past).astype(np.float32)
    from training.baskets.model import NextBestModel

    model = NextBestModel.fit(past, cfg)
    keep = _codes(past, model)
    methods = {
        "co-occurrence": _served(model, keep, hist),
        "popularity": lambda chunk: np.broadcast_to(pop, (len(chunk), len(pop))).copy(),
    }
    if segments_at is not None:
        seg = pd.Series(segments_at(cutoff)).astype(object)
        per_customer = seg.reindex(pd.Index(b.customers, dtype=object)).to_numpy(object)
        codes, names = pd.factorize(per_customer)
        codes = np.where(codes < 0, len(names), codes)  # no segment: its own group
        seg_lines = codes[past.lines["customer"].to_numpy()]
        counts = incidence(seg_lines, past.lines["item"].to_numpy(), (len(names) + 1, b.n_items))
        counts = sparse.csr_matrix(
            (np.ones(len(seg_lines), np.float32), (seg_lines, past.lines["item"].to_numpy())),
            shape=counts.shape,
        ).toarray()
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) + pop * 1e-6
        methods["segment popularity"] = lambda chunk: share[codes[chunk]]
    for name, scores in methods.items():
        best = top_k(scores, hist, rows, k)
        out["methods"][name] = _hits(best, new, rows, n_new)
    return out


def _hits(best: np.ndarray, new: sparse.csr_matrix, rows: np.ndarray, n_new: np.ndarray) -> dict:
    r = np.repeat(rows, best.shape[1])
    c = best.ravel()
    got = np.zeros(len(c), np.float64)
    ok = c >= 0
    got[ok] = np.asarray(new[r[ok], c[ok]]).ravel()
    got = got.reshape(best.shape)
    hits = got.sum(axis=1)
    return {
        "hit_rate": float((hits > 0).mean()),
        "recall": float((hits / n_new[rows]).mean()),
        "precision": float((hits / best.shape[1]).mean()),
    }
