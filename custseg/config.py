"""One TOML file configures every stage; each stage gets only its own table (`[cleaning]`, ...).

[cleaning]
extreme_factor = 10
[cleaning.policies]
extreme_amount = "cap"
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from custseg.errors import ConfigError

SECTIONS = ("cleaning",)


def load(path: str | Path | None) -> dict:
    """The parsed file ({} when no file is given); unknown sections are an error."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}"
        )
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
