import numpy as np
import pandas as pd
import pytest

from features.parsing import parse_bools, parse_dates, parse_numbers


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-05",
        "2024/03/05",
        "20240305",
        "2024.03.05",
        "2024年3月5日",
        "2024年03月05日",
        "2024-03-05 13:45:00",
        "2024-03-05T13:45:00",
        "  2024-03-05 ",
    ],
)
def test_date_formats_all_read_as_the_same_day(text):
    p = parse_dates(pd.Series([text]))
    assert p.values.iloc[0] == pd.Timestamp("2024-03-05")
    assert not p.invalid.any() and not p.missing.any()


@pytest.mark.parametrize("text", ["2024-13-45", "unknown", "0000-00-00", "2023-02-30", "昨天"])
def test_impossible_dates_are_invalid_not_missing(text):
    p = parse_dates(pd.Series([text]))
    assert p.invalid.tolist() == [True] and p.missing.tolist() == [False]
    assert pd.isna(p.values.iloc[0])


def test_blank_dates_are_missing_not_invalid():
    p = parse_dates(pd.Series(["", "  ", None], dtype=object))
    assert p.missing.tolist() == [True, True, True] and not p.invalid.any()


def test_date_format_counts_are_reported():
    p = parse_dates(pd.Series(["2024-01-01", "2024/01/02", "2024/01/03"]))
    assert p.by_format == {"%Y-%m-%d": 1, "%Y/%m/%d": 2}


@pytest.mark.parametrize(
    "text,value",
    [
        ("12.5", 12.5),
        ("¥1,200", 1200.0),
        ("1200元", 1200.0),
        ("-30", -30.0),
        ("35岁", 35.0),
        ("￥ 8", 8.0),
    ],
)
def test_numbers_tolerate_currency_and_units(text, value):
    assert parse_numbers(pd.Series([text])).values.iloc[0] == value


@pytest.mark.parametrize("text", ["abc", "1.2.3", "inf", "nan-ish"])
def test_non_numbers_are_invalid(text):
    p = parse_numbers(pd.Series([text]))
    assert p.invalid.tolist() == [True]


def test_typed_numbers_pass_through():
    p = parse_numbers(pd.Series([1.0, np.nan, 3.0]))
    assert p.missing.tolist() == [False, True, False] and not p.invalid.any()


def test_bools():
    p = parse_bools(pd.Series(["1", "0", "是", "否", "true", "", "maybe"]))
    assert p.values.tolist()[:5] == [True, False, True, False, True]
    assert p.missing.tolist()[5] and p.invalid.tolist()[6]
