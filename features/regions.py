"""Normalise Chinese regions to "省-市" with short names (广东-深圳, 北京-北京), and tell place
names outside China ("United Kingdom", "EIRE") from spellings of nothing (火星, N1-X9).

Accepts the usual spellings: 广东省深圳市, 广东 深圳, 粤-深圳, 深圳市南山区, 京, 北京市朝阳区.
Work is done once per distinct value, then mapped back, so cost grows with the number of
distinct spellings, not rows.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")
_SEPARATORS = re.compile(r"[\s\-—–_/|,，·、]+")
_CITY_TAIL = re.compile(r"(市|地区|盟|自治州).*$")
# Chinese characters (CJK ideographs and their extensions): a Chinese spelling, never foreign
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# besides letters, what a place name may hold: Côte d'Ivoire, St. Lucia, Bosnia & Herzegovina
_NAME_MARKS = frozenset(" .'’-&(),/")
# words that name no place: the value is missing, not a country
_PLACEHOLDERS = frozenset(
    {"unspecified", "not specified", "unknown", "n/a", "na", "none", "null", "nan", "undefined"}
)


def _stems(text: str) -> list[str]:
    """Ways to read a city spelling: 深圳, 深圳市, 深圳市南山区, 延边朝鲜族自治州."""
    cut = _CITY_TAIL.sub("", text)
    return [text, cut] if cut and cut != text else [text]


@cache
def _tables() -> tuple[
    dict[str, str], dict[str, set[str]], dict[str, str], list[str], dict[str, list[str]]
]:
    data = json.loads(resources.files("features").joinpath("data/regions.json").read_text("utf-8"))
    alias: dict[str, str] = {}  # any province spelling -> short name
    cities: dict[str, set[str]] = {}
    city_to_province: dict[str, str] = {}
    for p in data["provinces"]:
        for spelling in [p["name"], p["full"], *p["abbr"]]:
            alias[spelling] = p["name"]
        cities[p["name"]] = set(p["cities"])
        for c in p["cities"]:
            city_to_province.setdefault(c, p["name"])
    prefixes = sorted((a for a in alias if len(a) > 1), key=len, reverse=True)
    ordered = {p["name"]: p["cities"] for p in data["provinces"]}
    return alias, cities, city_to_province, prefixes, ordered


def aliases() -> dict[str, str]:
    """Every province spelling (short, official, 简称) -> short name."""
    return dict(_tables()[0])


def provinces() -> list[str]:
    """Short names of all provinces, municipalities and SARs."""
    return list(_tables()[1])


def cities_of(province: str) -> list[str]:
    return sorted(_tables()[1][province])


def capital_first(province: str) -> list[str]:
    """Cities of a province in the data file's order (the capital first)."""
    return list(_tables()[4][province])


def _province(token: str) -> str | None:
    alias = _tables()[0]
    if token in alias:
        return alias[token]
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and token[: -len(suffix)] in alias:
            return alias[token[: -len(suffix)]]
    return None


def _city(province: str, rest: str) -> str | None:
    cities = _tables()[1][province]
    if len(cities) == 1:  # municipality / SAR: the rest is a district
        return next(iter(cities))
    rest = rest.strip()
    if not rest:
        return None
    stems = _stems(rest)
    return next((c for c in stems if c in cities), stems[-1])


def normalize_one(text: str) -> tuple[str | None, str | None]:
    """(province, city) for one spelling; (None, None) when no province can be told."""
    text = text.strip()
    if not text:
        return None, None
    _, _, city_to_province, prefixes, _ = _tables()
    parts = [p for p in _SEPARATORS.split(text) if p]
    if len(parts) >= 2 and (prov := _province(parts[0])):
        return prov, _city(prov, "".join(parts[1:]))
    joined = "".join(parts)
    if prov := _province(joined):
        return prov, _city(prov, "")
    for prefix in prefixes:
        if joined.startswith(prefix):
            rest = joined[len(prefix) :]
            for suffix in _SUFFIXES:  # 广东省深圳市: drop the province suffix
                if rest.startswith(suffix):
                    rest = rest[len(suffix) :]
                    break
            prov = _tables()[0][prefix]
            return prov, _city(prov, rest)
    for stem in _stems(joined):
        if stem in city_to_province:
            return city_to_province[stem], stem
    return None, None


def normalize_regions(s: pd.Series) -> pd.DataFrame:
    """Columns `region` ("省-市", or "省" when no city is given), `province`, `city`.

    Unrecognised spellings give missing values; the caller decides what to do with them.
    """
    text = s.astype("string[pyarrow]").str.strip()
    uniques = text.dropna().unique()
    lookup = pd.DataFrame(
        [normalize_one(str(u)) for u in uniques],
        index=pd.Index(uniques),
        columns=["province", "city"],
    )
    out = lookup.reindex(text.to_numpy()).reset_index(drop=True)
    out.index = s.index
    out = out.astype("string[pyarrow]")
    region = out["province"].str.cat(out["city"], sep="-", na_rep="")
    region = region.str.rstrip("-").mask(out["province"].isna())
    return pd.DataFrame({"region": region, "province": out["province"], "city": out["city"]})


def is_foreign_name(text: str) -> bool:
    """Whether a spelling reads as a place outside China: letters of any script but Chinese
    characters (United Kingdom, EIRE, Côte d'Ivoire, Россия), at least two, no digits, not a
    placeholder such as "Unspecified". Call it on values `normalize_one` did not recognise: a
    pinyin spelling of a Chinese place (Guangdong) also reads as foreign."""
    text = unicodedata.normalize("NFC", text.strip())
    return (
        sum(ch.isalpha() for ch in text) >= 2
        and all(ch.isalpha() or ch in _NAME_MARKS for ch in text)
        and not _CJK.search(text)
        and text.casefold() not in _PLACEHOLDERS
    )


def foreign_names(s: pd.Series) -> np.ndarray:
    """`is_foreign_name` of each value (missing: False), worked out once per distinct value."""
    text = s.astype("string[pyarrow]")
    uniques = text.dropna().unique()
    foreign = pd.Series([is_foreign_name(str(u)) for u in uniques], pd.Index(uniques), bool)
    return foreign.reindex(text.to_numpy(), fill_value=False).to_numpy(bool)
