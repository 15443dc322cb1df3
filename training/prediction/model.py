"""The predictor as an MLflow pyfunc model: feature rows in, a calibrated probability out."""

from __future__ import annotations

import pandas as pd
from mlflow.pyfunc import PythonModel

from training.prediction.predictor import Predictor
from training.segmentation.base import require_columns


class PredictorModel(PythonModel):
    def __init__(self, predictor: Predictor, snapshot: dict, held_out=None):
        self.predictor = predictor  # what scores: the chosen model refitted on the freshest labels
        # the same model as fitted without its test window: what the gate re-scores on a later
        # run's test window (the refit may have learned from labels inside that window)
        self.held_out = held_out
        self.snapshot = {k: snapshot.get(k) for k in ("as_of", "definition_hash", "engine", "tags")}

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        p = self.predictor
        require_columns(model_input, p.columns, f"{p.target} model")
        return pd.DataFrame(
            {f"{p.target}_probability": p.predict_proba(model_input)}, index=model_input.index
        )


class ValueModelPyfunc(PythonModel):
    """The value model as an MLflow pyfunc: feature rows in, CLV, expected orders, order
    value, P(alive) and the next order out (`custseg-value`)."""

    def __init__(self, predictor, snapshot: dict, held_out=None):
        self.predictor = predictor  # training.prediction.clv.ValuePredictor
        self.held_out = held_out  # fitted without the test window: what the gate re-scores
        self.snapshot = {k: snapshot.get(k) for k in ("as_of", "definition_hash", "engine", "tags")}

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        from datetime import date

        p = self.predictor
        require_columns(model_input, p.columns, "value model")
        as_of = (params or {}).get("as_of") or self.snapshot.get("as_of")
        table = p.table(model_input, date.fromisoformat(str(as_of)))
        return table.set_index(model_input.index)
