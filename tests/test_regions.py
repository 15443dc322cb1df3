import pandas as pd
import pytest

from features.regions import cities_of, normalize_one, normalize_regions, provinces


@pytest.mark.parametrize(
    "text,expected",
    [
        ("广东-深圳", ("广东", "深圳")),
        ("广东省深圳市", ("广东", "深圳")),
        ("广东省-深圳市", ("广东", "深圳")),
        ("粤-深圳", ("广东", "深圳")),
        ("广东 深圳", ("广东", "深圳")),
        ("深圳市南山区", ("广东", "深圳")),
        ("深圳", ("广东", "深圳")),
        ("京", ("北京", "北京")),
        ("北京", ("北京", "北京")),
        ("北京市", ("北京", "北京")),
        ("北京市朝阳区", ("北京", "北京")),
        ("沪", ("上海", "上海")),
        ("内蒙古自治区呼和浩特市", ("内蒙古", "呼和浩特")),
        ("广西壮族自治区南宁市", ("广西", "南宁")),
        ("亳州市", ("安徽", "亳州")),  # 州 is part of the name, not a suffix
        ("台州市", ("浙江", "台州")),
        ("吉林省吉林市", ("吉林", "吉林")),
        ("广东", ("广东", None)),
        ("火星-基地", (None, None)),
        ("", (None, None)),
    ],
)
def test_spellings(text, expected):
    assert normalize_one(text) == expected


def test_every_province_full_and_short_name_resolves():
    for p in provinces():
        assert normalize_one(p)[0] == p
        for c in cities_of(p):
            assert normalize_one(f"{p}-{c}") == (p, c)
    assert len(provinces()) == 34  # 23 provinces, 5 autonomous regions, 4 municipalities, 2 SARs


def test_series_output_format():
    out = normalize_regions(pd.Series(["粤-深圳", "广东", None, "火星"]))
    assert out["region"].tolist()[:2] == ["广东-深圳", "广东"]
    assert out["region"].isna().tolist()[2:] == [True, True]
