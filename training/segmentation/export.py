"""Learned rules you can edit: a fitted rule-expressible scheme written as an ordinary `rules`
scheme in the scheme file's own syntax (`custseg segment export-rules`).

A tree's leaves become segments in their order (leaf_1 first), each with its simplified path
as bounds (`recency_days = { max = 100.5 }`, `online_share = { above = 0.7, max = 0.9 }`,
`missing = true` where a missing value belongs to the leaf); the last leaf is the `default`.
The leaves do not overlap, so first-match-wins gives each customer the leaf the tree gives:
`custseg segment fit --schemes FILE.toml` fits the same segmentation as a plain rule scheme.
Thresholds are written exactly (shortest round-trip decimals); edit them freely.
"""

from __future__ import annotations

import json
import math

from core.errors import InputError
from training.segmentation.base import Segment, Strategy
from training.segmentation.rules import Condition, RuleAssigner


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _bounds(conditions: tuple[Condition, ...]) -> list[str]:
    by_column: dict[str, list[Condition]] = {}
    for c in conditions:
        by_column.setdefault(c.column, []).append(c)
    lines = []
    for column, conds in by_column.items():
        parts = [f"{c.bound} = {_number(c.value)}" for c in conds]
        if all(c.missing for c in conds):
            parts.append("missing = true")
        lines.append(f"{column} = {{ {', '.join(parts)} }}")
    return lines


def _segment_inline(s: Segment) -> str:
    return (
        f"{{ key = {_text(s.key)}, en = {_text(s.name)}, zh = {_text(s.name_zh)}, "
        f"strategy = {_text(s.strategy)} }}"
    )


def rules_toml(
    name: str,
    assigner,
    strategies: dict[str, Strategy],
    description: str = "",
    header: str = "",
) -> str:
    """The scheme file text of one `rules` scheme `name` from a fitted `RuleAssigner` (a tree's
    included), with the strategy table entries its segments use."""
    if not isinstance(assigner, RuleAssigner):
        kind = type(assigner).__name__
        raise InputError(f"{kind}: only rule-shaped schemes (rules, tree) can be exported as rules")
    out = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    if out:
        out.append("")
    out += [
        f"[schemes.{name}]",
        'kind = "rules"',
        f"description = {_text(description or f'{name}: rules exported by custseg')}",
        f"default = {_segment_inline(assigner.default)}",
    ]
    for rule in assigner.rules:
        s = rule.segment
        out += [
            "",
            f"[[schemes.{name}.segments]]",
            f"key = {_text(s.key)}",
            f"en = {_text(s.name)}",
            f"zh = {_text(s.name_zh)}",
            f"strategy = {_text(s.strategy)}",
            *_bounds(rule.conditions),
        ]
    used = dict.fromkeys([*(r.segment.strategy for r in assigner.rules), assigner.default.strategy])
    for key in used:
        st = strategies.get(key)
        if st is None:
            continue
        out += ["", f"[strategies.{key}]"]
        out += [
            f"{field} = {_text(getattr(st, field))}"
            for field in ("direction", "direction_zh", "actions", "actions_zh", "owner")
        ]
    return "\n".join(out) + "\n"


def champion(scheme: str, version: str | None = None):
    """The served (or `version`) segmenter of `scheme` from the registry: its SegmenterModel."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from core.catalog import segmenter_name

    uri = f"models:/{segmenter_name(scheme)}/{version}" if version else None
    uri = uri or f"models:/{segmenter_name(scheme)}@champion"
    try:
        return mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except MlflowException as exc:
        which = f"version {version}" if version else "a served (champion) fit"
        raise InputError(
            f"scheme {scheme}: no {which} in the registry at {mlflow.get_tracking_uri()} "
            f"({str(exc).splitlines()[0][:200]}); fit it with `custseg run` (and promote it), "
            "or pass --version"
        ) from None
