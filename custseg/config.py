"""One TOML file configures every stage; each stage gets only its own table (`[cleaning]`, ...).

[cleaning]
extreme_factor = 10
[cleaning.policies]
extreme_amount = "cap"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from custseg.errors import ConfigError, check_keys

if TYPE_CHECKING:
    from monitoring.health import HealthConfig

SECTIONS = ("cleaning", "features", "prediction", "monitoring")


def load(path: str | Path | None) -> dict:
    """The parsed file ({} when no file is given); unknown sections are an error."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8
        raise ConfigError(f"{path}: cannot read it as a UTF-8 text file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}"
        )
    for name, section in data.items():
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [{name}] must be a table of settings, not {section!r}")
    return data


def cleaning(path: str | Path | None, **overrides):
    """The `[cleaning]` slice as a CleaningConfig, with CLI overrides applied."""
    from features.cleaning.config import CleaningConfig

    data = dict(load(path).get("cleaning", {}))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return CleaningConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path or 'options'}: {exc}") from None


def features(path: str | Path | None):
    """The `[features]` slice as a FeatureConfig."""
    from features.definitions import FeatureConfig

    data = dict(load(path).get("features", {}))
    try:
        check_keys("features", data, FeatureConfig)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for key in ("windows", "age_bands"):
        if key in data:
            values = data[key]
            if not (
                isinstance(values, list)
                and values
                and all(isinstance(v, int) and v > 0 for v in values)
            ):
                raise ConfigError(
                    f"{path}: features.{key} = {values!r}: a list of positive whole days"
                )
            data[key] = tuple(sorted(values))
    for key in ("trend_days", "new_days", "active_days", "lost_days", "top_categories"):
        if key in data and (not isinstance(data[key], int) or data[key] < 0):
            raise ConfigError(f"{path}: features.{key} = {data[key]!r}: a whole number >= 0")
    return FeatureConfig(**data)


def prediction(path: str | Path | None, **overrides):
    """The `[prediction]` slice as a PredictionConfig, with CLI overrides applied."""
    from dataclasses import fields

    from training.prediction.config import PredictionConfig

    data = dict(load(path).get("prediction", {}))
    try:
        check_keys("prediction", data, PredictionConfig)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    for f in fields(PredictionConfig):
        value = data.get(f.name)
        if value is None:
            continue
        if f.type == "bool":
            if not isinstance(value, bool):
                raise ConfigError(
                    f"{path or 'options'}: prediction.{f.name} = {value!r}: true or false"
                )
            continue
        if f.type == "float":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(
                    f"{path or 'options'}: prediction.{f.name} = {value!r}: a number >= 0"
                )
            continue
        low = {"seed": 0, "tune_rows": 1000}.get(f.name, 1)
        if f.type == "int" and (
            isinstance(value, bool) or not isinstance(value, int) or value < low
        ):
            raise ConfigError(
                f"{path or 'options'}: prediction.{f.name} = {value!r}: a whole number >= {low}"
            )
        if f.name == "gate_metric":
            from training.prediction.promotion import GATE_METRICS

            if value not in GATE_METRICS:
                raise ConfigError(
                    f"{path or 'options'}: prediction.gate_metric = {value!r}: one of "
                    f"{', '.join(GATE_METRICS)}"
                )
        if f.type != "int" and not isinstance(value, str):
            raise ConfigError(
                f"{path or 'options'}: prediction.{f.name} = {value!r}: expected text"
            )
    return PredictionConfig(**data)


def monitoring(path: str | Path | None) -> HealthConfig:
    """The `[monitoring]` slice (segment health weights and thresholds) as a HealthConfig."""
    from monitoring.health import HealthConfig

    data = dict(load(path).get("monitoring", {}))
    try:
        return HealthConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
