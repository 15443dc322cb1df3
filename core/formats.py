"""Numbers as reports print them: one place that never writes "-0.0%" (a tiny negative
rounded away keeps its sign in Python's formatting) and writes "n/a" for what is missing."""

from __future__ import annotations

import math
import re

_DIGIT = re.compile(r"[1-9]")


def number(value, fmt: str = "{:.3f}") -> str:
    """`value` formatted with `fmt`; "n/a" for None, NaN or infinity; a result that shows only
    zeros loses its sign ("-0.0" and "+0.0" print as "0.0")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    text = fmt.format(value)
    if not _DIGIT.search(text.split("e")[0].split("E")[0]):
        text = text.replace("-", "", 1) if "-" in text[:2] else text.replace("+", "", 1)
    return text


def pct(value, digits: int = 1, signed: bool = False) -> str:
    """A share (0.123) as a percentage ("12.3%"), "+" before gains when `signed`."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return number(100 * value, f"{{:{'+' if signed else ''}.{digits}f}}%")
