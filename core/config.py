"""One TOML file configures every stage; each stage gets only its own table and validates it
itself (`CleaningConfig.from_dict`, `FeatureConfig.from_dict`, ...):

    [cleaning]
    extreme_factor = 10
    [cleaning.policies]
    extreme_amount = "cap"
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.errors import ConfigError

SECTIONS = (
    "cleaning",
    "features",
    "prediction",
    "monitoring",
    "baskets",
    "segmentation_benefit",
)
T = TypeVar("T")


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


def section(
    path: str | Path | None, name: str, from_dict: Callable[[dict], T], **overrides: object
) -> T:
    """The `[name]` table of the file as the stage's config object, built (and checked) by the
    stage's own `from_dict`; overrides (command-line options, None = not given) win over the
    file. A ConfigError names the file, or "options" when there is none."""
    data = dict(load(path).get(name, {}))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path or 'options'}: {exc}") from None
