"""Seeded row samples: tuning and scoring on a bounded sample keeps large N affordable."""

from __future__ import annotations

import numpy as np


def sample_rows(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Sorted positions of `size` rows out of `n` without replacement (all rows when n <= size)."""
    return np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)
