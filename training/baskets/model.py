"""The next-best model that travels with the champions (`<project>-next-best`): the item-item
co-occurrence matrix over the items bought in at least `min_item_baskets` baskets, the item
names and their popularity (ties, and customers whose items co-occur with nothing).

    model = NextBestModel.fit(baskets, cfg)
    model.recommend([["p1", "p7"], [], ["p3"]], k=3)   # -> [[...], [], [...]]

`recommend` is vectorised: one sparse customers x items history matrix times the co-occurrence
matrix (in chunks of customers), the customer's own items left out. The batch job's
`next_best` goes through the same `top` on the same matrices, so the service and scores.csv
answer the same products for the same history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from scipy import sparse

from training.baskets.build import Baskets
from training.baskets.config import BasketConfig
from training.baskets.nextbest import cooccurrence, incidence, popularity, top_k


@dataclass
class NextBestModel:
    items: np.ndarray  # model code -> item name (text, as the log's product column)
    conf: sparse.csr_matrix  # items x items: n_xy / (n_x + shrink), float32
    tie: np.ndarray  # popularity * 1e-6 (float32): breaks ties, scores lone items
    level: str = "product"
    as_of: str = ""
    settings: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, b: Baskets, cfg: BasketConfig) -> NextBestModel:
        """The co-occurrence of the items in at least `cfg.min_item_baskets` baskets of `b`."""
        n_x = np.bincount(b.lines["item"].to_numpy(), minlength=b.n_items)
        keep = np.flatnonzero(n_x >= cfg.min_item_baskets)
        conf = cooccurrence(b, cfg.shrink)[keep][:, keep].tocsr()
        conf.sort_indices()
        tie = (popularity(b)[keep] * 1e-6).astype(np.float32)
        names = np.array([str(x) for x in b.items[keep]], dtype=object)
        settings = {
            "shrink": cfg.shrink,
            "min_item_baskets": cfg.min_item_baskets,
            "baskets": b.n_baskets,
        }
        return cls(names, conf, tie, b.level, str(b.as_of), settings)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def codes(self, names) -> np.ndarray:
        """Model codes of item names (-1: not an item of the model)."""
        return self._index.get_indexer(pd.Index([str(n) for n in names], dtype=object))

    @property
    def _index(self) -> pd.Index:
        index = self.__dict__.get("_index_cache")
        if index is None:
            index = self.__dict__["_index_cache"] = pd.Index(self.items, dtype=object)
        return index

    def top(self, hist: sparse.csr_matrix, exclude: sparse.csr_matrix, k: int) -> np.ndarray:
        """rows x k model codes (-1: fewer left) of the best items for customers x items
        histories `hist`, items in `exclude` left out."""
        conf, tie = self.conf, self.tie
        rows = np.arange(hist.shape[0])
        return top_k(lambda chunk: (hist[chunk] @ conf).toarray() + tie, exclude, rows, k)

    def recommend(self, histories: list, k: int = 3) -> list[list[str]]:
        """Per customer, up to k items not in its history (a list of item names), best first;
        [] for an empty history. Names the model does not know count as bought (left out) but
        point nowhere; a history of unknown items only gets the most popular items."""
        n = len(histories)
        out: list[list[str]] = [[] for _ in range(n)]
        sizes = np.fromiter((len(h) if h else 0 for h in histories), np.int64, n)
        wanted = np.flatnonzero(sizes > 0)
        if not len(wanted) or not self.n_items or k < 1:
            return out
        flat = [x for i in wanted for x in histories[i]]
        codes = self.codes(flat)
        rows = np.repeat(np.arange(len(wanted)), sizes[wanted])
        known = codes >= 0
        hist = incidence(rows[known], codes[known], (len(wanted), self.n_items))
        hist.sort_indices()
        best = self.top(hist, hist, k)
        names = self.items
        for j, i in enumerate(wanted):
            out[i] = [names[c] for c in best[j] if c >= 0]
        return out


class NextBestPyfunc(PythonModel):
    """The next-best model as an MLflow pyfunc (`<project>-next-best`): a frame with a
    `products` column (per customer, a list of the items it bought) in, next_best_1..k out."""

    def __init__(self, model: NextBestModel, k: int = 3, validation: dict | None = None):
        self.model = model
        self.k = k
        self.validation = validation or {}

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        k = int((params or {}).get("k") or self.k)
        picks = self.model.recommend(list(model_input["products"]), k)
        padded = [p + [None] * (k - len(p)) for p in picks]
        return pd.DataFrame(
            padded, columns=[f"next_best_{i + 1}" for i in range(k)], index=model_input.index
        )
