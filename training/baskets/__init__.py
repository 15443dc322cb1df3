"""What customers buy together: baskets from the clean log, association rules X -> Y for all
customers and per segment (counted in DuckDB SQL), and the next-best products per customer
(item-item co-occurrence as sparse matrix products), validated out of time.

    b = build_baskets(clean_transactions, as_of, "product")
    table = rules(b, BasketConfig())                       # all customers
    table = rules(b, cfg, segments=segment_of_customer)    # per segment
    picks = next_best(b, cfg)                              # top-k per customer
"""

from training.baskets.build import Baskets, build_baskets
from training.baskets.config import BasketConfig
from training.baskets.nextbest import next_best, validate
from training.baskets.rules import distinctive, rules

__all__ = [
    "BasketConfig",
    "Baskets",
    "build_baskets",
    "distinctive",
    "next_best",
    "rules",
    "validate",
]
