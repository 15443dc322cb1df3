"""The anchor of bench_serving: a plain BentoML service over one LightGBM model, no custseg code.

What an engineer writes in an afternoon: rows of features in, the booster's probabilities out,
one float per row (text that is not a number becomes NaN). The benchmark starts it twice beside
custseg's service, on the same machine and in the same run, so the ratios mean the same on any
machine:

- plain-default: as the BentoML and LightGBM docs write it, no thread settings (LightGBM's
  predict then starts an OpenMP team of one thread per core for every request, in every worker);
- plain-tuned (PLAIN_THREADS=1, and OMP_NUM_THREADS=1 in its environment): one thread per
  request, the budget custseg's service keeps (`serving/budget.py`).

    PLAIN_MODEL=model.txt bentoml serve plain_service:Plain --port 3001
"""

from __future__ import annotations

import os

import bentoml
import lightgbm as lgb
import numpy as np

# unset: the libraries' defaults; a number: LightGBM's threads per predict call
THREADS = int(os.environ["PLAIN_THREADS"]) if os.environ.get("PLAIN_THREADS") else None


@bentoml.service(name="plain", workers=int(os.environ.get("PLAIN_WORKERS", "2")))
class Plain:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ["PLAIN_MODEL"])
        self.columns = self.booster.feature_name()
        self.threads = {} if THREADS is None else {"num_threads": THREADS}

    @bentoml.api
    def predict(self, customers: list[dict]) -> list[float]:
        x = np.array(
            [[_number(row.get(c)) for c in self.columns] for row in customers], dtype=float
        )
        return self.booster.predict(x, **self.threads).tolist()


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


@bentoml.service(name="empty", workers=int(os.environ.get("PLAIN_WORKERS", "2")))
class Empty:
    """The framework's ceiling: the same request and answer shapes, no model (one 0.0 per row)."""

    @bentoml.api
    def predict(self, customers: list[dict]) -> list[float]:
        return [0.0] * len(customers)
