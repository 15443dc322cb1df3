"""The scheme file: named schemes (kind + options) and the strategy table, validated on load.

Every mistake is a ConfigError that names the file, the scheme and the key, so an analyst editing
thresholds sees exactly what to fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from core.errors import ConfigError
from training.segmentation.base import Strategy

KINDS = ("rules", "rfm_scores", "matrix", "abc", "tiers", "demographic", "clustering", "tree")
COMMON = {"kind", "description", "serve"}
STRATEGY_KEYS = ("direction", "direction_zh", "actions", "actions_zh", "owner")


@dataclass(frozen=True)
class SchemeSpec:
    name: str
    kind: str
    description: str
    serve: bool
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SchemeFile:
    path: str
    schemes: list[SchemeSpec]
    strategies: dict[str, Strategy]


class Options:
    """Typed access to one scheme's options; remembers what was read to reject unknown keys."""

    def __init__(self, where: str, data: dict):
        self.where, self.data, self.seen = where, data, set(COMMON)

    def get(self, key: str, kind: type | tuple, default=None, required: bool = False):
        self.seen.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.where}: missing key {key!r}")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{self.where}: {key} = {value!r}: expected {names}")
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self.get(key, float, default)
        if not lo <= value <= hi:
            raise ConfigError(f"{self.where}: {key} = {value!r}: expected a number in [{lo}, {hi}]")
        return value

    def strings(self, key: str, default: list[str] | None = None) -> list[str]:
        value = self.get(key, list, default, required=default is None)
        if not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.where}: {key} = {value!r}: expected a list of names")
        return list(value)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


def default_path() -> Path:
    return Path(str(resources.files("training") / "schemes.toml"))


def load(path: str | Path | None = None) -> SchemeFile:
    """The scheme file at `path` (the packaged defaults when None).

    A user file's `[schemes]` replace the defaults (so it can keep a subset); its
    `[strategies]` entries are merged over the default strategy table.
    """
    defaults = _toml(default_path())
    data = _toml(Path(path)) if path else defaults
    where = str(path or default_path())
    unknown = sorted(set(data) - {"schemes", "strategies"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; known: schemes, strategies"
        )
    own = data.get("strategies", {})
    if not isinstance(own, dict):
        raise ConfigError(f"{where}: strategies must be tables: [strategies.KEY]")
    strategies = _strategies(where, {**defaults.get("strategies", {}), **own})
    raw = data.get("schemes")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: no [schemes.NAME] tables: define at least one scheme")
    schemes = []
    for name, table in raw.items():
        w = f"{where}: [schemes.{name}]"
        if not name.replace("_", "").isalnum() or not name.isascii():
            raise ConfigError(f"{w}: scheme names use letters, digits and _ only")
        if not isinstance(table, dict):
            raise ConfigError(f"{w}: expected a table")
        kind = table.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{w}: kind = {kind!r}: expected one of {', '.join(KINDS)}")
        description = table.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{w}: description = {description!r}: expected text")
        serve = table.get("serve", True)
        if not isinstance(serve, bool):
            raise ConfigError(f"{w}: serve = {serve!r}: expected true or false")
        options = {k: v for k, v in table.items() if k not in COMMON}
        schemes.append(SchemeSpec(name, kind, description, serve, options))
    return SchemeFile(where, schemes, strategies)


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such scheme file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the scheme file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scheme file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _strategies(where: str, raw: dict) -> dict[str, Strategy]:
    out = {}
    for key, entry in raw.items():
        w = f"{where}: [strategies.{key}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{w}: expected a table")
        unknown = sorted(set(entry) - set(STRATEGY_KEYS))
        if unknown:
            raise ConfigError(
                f"{w}: unknown key(s) {', '.join(unknown)}; known: {', '.join(STRATEGY_KEYS)}"
            )
        values = {k: entry.get(k, "") for k in STRATEGY_KEYS}
        if not values["direction"] or not all(isinstance(v, str) for v in values.values()):
            raise ConfigError(f"{w}: needs a text `direction` (and text actions, owner)")
        out[key] = Strategy(key, **values)
    return out


def check_strategy(where: str, key: object, strategies: dict[str, Strategy]) -> str:
    if not isinstance(key, str) or key not in strategies:
        raise ConfigError(
            f"{where}: strategy = {key!r} is not in the strategy table "
            f"(known: {', '.join(sorted(strategies))})"
        )
    return key


def definition(spec: SchemeSpec, scheme_file: SchemeFile, trials: int | None = None) -> dict:
    """What decides a scheme's fit, as plain data: its own table of the scheme file (with the
    clustering's effective trials) and the strategy table its segmenter carries. Equal
    definitions on equal data give the same fit, so `segment fit` reuses it."""
    options = dict(spec.options)
    if spec.kind == "clustering":
        options["trials"] = trials or options.get("trials", 20)
    return {
        spec.name: {"kind": spec.kind, "description": spec.description, "serve": spec.serve}
        | options,
        "strategies": {k: vars(s) for k, s in sorted(scheme_file.strategies.items())},
    }


def definition_hash(definition: dict) -> str:
    """A short content hash of `definition` (key order does not matter)."""
    import hashlib
    import json

    text = json.dumps(definition, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
