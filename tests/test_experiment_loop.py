"""The experiment loop: try a scheme edit, see what changed and whether it is better, then
promote it. Fits are compared, not served, until --promote; unchanged schemes are reused."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli

EDIT = ("recency_days = { min = 90 }", "recency_days = { min = 180 }")  # rfm_rules' churn risk


def _aliases(client) -> dict[str, str]:
    from core.registry import served

    return served(client)


def _fits_80_columns(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide


@pytest.mark.slow
def test_try_diff_then_promote(snapshot, tmp_path, capsys):
    import mlflow

    from core import paths

    schemes = tmp_path / "schemes.toml"
    assert run_cli(["segment", "init", str(schemes)], capsys)[0] == 0
    fit = ["segment", "fit", "-f", str(snapshot), "--schemes", str(schemes), "--trials", "2"]
    fit += ["-o", str(tmp_path / "seg")]
    code, _, err = run_cli([*fit, "--promote"], capsys)
    assert code == 0, err
    client = mlflow.MlflowClient(paths.tracking_uri())
    first = _aliases(client)
    assert first["custseg-segmenter-rfm_rules"] == "1" and len(first) == 5  # demographic unserved

    # try: one threshold edited; nothing served moves, only the edited scheme is refitted
    text = schemes.read_text("utf-8")
    assert text.count(EDIT[0]) == 1
    schemes.write_text(text.replace(*EDIT), "utf-8")
    code, _, err = run_cli(fit, capsys)
    assert code == 0, err
    assert _aliases(client) == first
    rules = client.get_model_version_by_alias("custseg-segmenter-rfm_rules", "champion")
    assert str(rules.version) == "1"
    assert re.search(r"rfm_rules: refitted, registered v2; vs champion v1: better on", err)
    for s in ("rfm_scores", "value_activity", "abc", "demographic", "behaviour_clusters"):
        assert f"{s}: unchanged, reused v1" in err, s
        versions = client.search_model_versions(f"name = 'custseg-segmenter-{s}'")
        assert [str(v.version) for v in versions] == ["1"], s
    hint = " ".join(err.split())
    assert "not promoted: rfm_rules. To serve these fits: custseg segment fit" in hint
    assert "--trials 2 --promote" in hint
    runs = mlflow.search_runs(experiment_names=["custseg"], output_format="list")
    names = {r.info.run_name for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert "segment fit rfm_rules (2026-06-30)" in names, names

    # diff: the changed threshold, each measure's better side and winner, sizes, migration
    page = tmp_path / "diff.html"
    code, out, err = run_cli(["segment", "diff", "--last", "2", "--html", str(page)], capsys)
    assert code == 0, err
    assert "rfm_rules.segments[churn_risk].recency_days.min: 90 -> 180" in out
    rules_part = out.split("== rfm_rules")[1].split("== ")[0]
    assert re.search(r"largest\s+lower\s+\S+\s+\S+\s+(A|B|tie)\b", rules_part), rules_part
    assert re.search(r"RFM silh\s+higher\s+\S+\s+\S+\s+(A|B|tie)\b", rules_part)
    assert "churn_risk" in rules_part and "customers moved:" in rules_part
    assert "the same fit in both (reused)" in out.split("== abc")[1]
    _fits_80_columns(out)
    html = page.read_text("utf-8")
    assert "recency_days.min" in html and "<script" not in html

    # compare one scheme across fits, better sides marked, in 80 columns
    code, out, _ = run_cli(["segment", "compare", "--all", "--scheme", "rfm_rules"], capsys)
    assert code == 0
    assert "↑" in out and "↓" in out and "abc" not in out
    assert out.count("rfm_rules ") >= 2
    _fits_80_columns(out)

    # promote: nothing refitted, exactly the edited scheme's alias moves
    code, _, err = run_cli([*fit, "--promote"], capsys)
    assert code == 0, err
    assert "rfm_rules: unchanged, reused v2" in err
    now = _aliases(client)
    assert {k for k in now if now[k] != first[k]} == {"custseg-segmenter-rfm_rules"}
    assert now["custseg-segmenter-rfm_rules"] == "2"
    rules = client.get_model_version_by_alias("custseg-segmenter-rfm_rules", "champion")
    assert str(rules.version) == "2"


def test_diff_needs_two_fits(capsys):
    code, _, err = run_cli(["segment", "diff", "abc"], capsys)
    assert code == 2 and "--last 2" in err


def test_diff_page_escapes_what_the_scheme_file_holds(tmp_path):
    import pandas as pd

    from core.html import scan
    from training.segmentation.diff import Fit, FitDiff, SchemeDiff, write_html
    from training.segmentation.measures import MEASURES

    bad = "<script>alert(1)</script>"
    scheme = SchemeDiff(
        "rfm_rules",
        ("v1", "v2"),
        changes=[(f"rfm_rules.segments[{bad}].recency_days.min", 90, bad)],
        measures=[(MEASURES[1], 0.5, 0.4, "b")],
        sizes=pd.DataFrame({"segment": [bad], "a": [3], "b": [2]}),
        migration=pd.crosstab(pd.Series([bad], name="a"), pd.Series(["x"], name="b")),
    )
    fit = Fit("0" * 32, bad, "2026-06-30", "2026-07-01 10:00")
    page = write_html(FitDiff(fit, fit, [scheme]), tmp_path / "diff.html").read_text("utf-8")
    assert scan(page).problems() == [] and "&lt;script&gt;" in page
