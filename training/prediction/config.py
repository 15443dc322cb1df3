"""The `[prediction]` slice of the config file, with the CLI's overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields

from core.errors import ConfigError, check_keys


@dataclass(frozen=True)
class PredictionConfig:
    repurchase_days: int = 30  # repurchase = any order in (D, D + repurchase_days]
    churn_days: int = 90  # churn = no order in (D, D + churn_days]
    clv_days: int = 365  # CLV = discounted expected spend in (D, D + clv_days]
    monthly_discount: float = 0.01  # CLV's discount rate per month (1%: about 12.7% a year)
    train_windows: int = 4  # training cutoffs per target (fewer when history is short)
    window_step_days: int = 30  # days between training cutoffs
    min_history_days: int = 60  # a cutoff needs this much history before it
    trials: int = 20  # Optuna trials per target
    tune_rows: int = 100_000  # Optuna trials train on at most this many rows (final fit: all)
    max_boost_rounds: int = 400
    early_stopping_rounds: int = 30
    # None: in memory; a URL (sqlite:///optuna.db, postgresql://...) shared by workers
    study_storage: str | None = None
    study_name: str | None = None  # prefix of <name>-<target>-<horizon>d-<cutoff>-<data>
    gate_metric: str = (
        "log_loss"  # the promotion gate's yardstick: log_loss, roc_auc, pr_auc, brier
    )
    gate_margin: float = 0.001  # against the champion a new model must win by more than this
    btyd_prior: bool = True  # boost from the BG/NBD log-odds (False: from the base rate)
    seed: int = 42

    @classmethod
    def from_dict(cls, data: dict) -> PredictionConfig:
        """The `[prediction]` table (with CLI overrides), every value checked: a ConfigError
        names the key and what it should be."""
        from training.prediction.promotion import GATE_METRICS

        check_keys("prediction", data, cls)
        for f in fields(cls):
            value = data.get(f.name)
            if value is None:
                continue
            where = f"prediction.{f.name} = {value!r}"
            if f.type == "bool":
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}: true or false")
            elif f.type == "float":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ConfigError(f"{where}: a number >= 0")
            elif f.type == "int":
                low = {"seed": 0, "tune_rows": 1000}.get(f.name, 1)
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ConfigError(f"{where}: a whole number >= {low}")
            elif not isinstance(value, str):
                raise ConfigError(f"{where}: expected text")
            elif f.name == "gate_metric" and value not in GATE_METRICS:
                raise ConfigError(f"{where}: one of {', '.join(GATE_METRICS)}")
        return cls(**data)
