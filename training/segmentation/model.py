"""The fitted segmenter as an MLflow pyfunc model: feature rows in, segment and strategy out.

Serving loads it by alias (`models:/custseg-segmenter-<scheme>@champion`); batch jobs can too.
The model carries the assigner (fitted parameters), the segment names and the strategies it
can return, and the feature snapshot it was fitted on (as-of date, definition hash).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from training.segmentation.base import FittedScheme, Strategy, check_inputs

OUTPUT_COLUMNS = (
    "segment",
    "segment_name",
    "segment_name_zh",
    "strategy",
    "strategy_direction",
    "strategy_direction_zh",
    "strategy_actions",
    "strategy_actions_zh",
    "strategy_owner",
)


class SegmenterModel(PythonModel):
    def __init__(self, scheme: FittedScheme, strategies: dict[str, Strategy], snapshot: dict):
        self.scheme_name, self.kind = scheme.name, scheme.kind
        self.assigner = scheme.assigner
        self.segments = {s.key: s for s in scheme.segments}
        used = {s.strategy for s in scheme.segments}
        self.strategies = {k: v for k, v in strategies.items() if k in used}
        self.snapshot = {k: snapshot.get(k) for k in ("as_of", "definition_hash", "engine", "tags")}

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.assigner.columns)

    def _lookup(self) -> pd.DataFrame:
        """Segment key -> the output columns; built once (on first use, so models pickled
        before it existed load too), not on every request."""
        table = getattr(self, "_table", None)
        if table is None:
            rows = [
                (
                    s.key,
                    s.name,
                    s.name_zh,
                    s.strategy,
                    st.direction,
                    st.direction_zh,
                    st.actions,
                    st.actions_zh,
                    st.owner,
                )
                for s in self.segments.values()
                for st in [self.strategies[s.strategy]]
            ]
            table = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS)).set_index(
                "segment", drop=False
            )
            self._table = table
        return table

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        check_inputs(model_input, self.assigner, f"segmenter {self.scheme_name}")
        keys = self.assigner.assign(model_input)
        table = self._lookup()
        out = table.loc[np.asarray(keys, dtype=object)].reset_index(drop=True)
        out.index = model_input.index
        return out
