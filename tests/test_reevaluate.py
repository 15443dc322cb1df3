"""The champion/challenger rule of re-evaluation, measure by measure."""

from __future__ import annotations

import pytest

from monitoring.reevaluate import decide

CHAMPION = {"separation": 0.30, "stability": 0.80, "business_signal": 0.20}


@pytest.mark.parametrize(
    ("challenger", "promoted", "why"),
    [
        (dict(CHAMPION), False, "not better by more than"),  # refitted fixed rules
        ({**CHAMPION, "separation": 0.305}, False, "not better by more than"),  # within margin
        ({**CHAMPION, "separation": 0.40}, True, "better on separation"),
        ({**CHAMPION, "separation": 0.40, "stability": 0.60}, False, "worse on 1"),  # one each
        ({"separation": 0.40, "stability": 0.90, "business_signal": 0.10}, True, "separation"),
        ({"separation": 0.20, "stability": 0.70, "business_signal": 0.30}, False, "worse on 2"),
        ({**CHAMPION, "business_signal": None, "separation": 0.35}, True, "business_signal n/a"),
    ],
)
def test_a_challenger_needs_more_wins_than_losses(challenger, promoted, why):
    won, reason = decide(CHAMPION, challenger)
    assert won is promoted
    assert why in reason


def test_missing_measures_do_not_vote():
    won, reason = decide({"separation": None}, {"separation": 0.9})
    assert not won and "separation n/a" in reason


def test_omega_squared_does_not_reward_more_segments_for_nothing():
    import numpy as np

    from monitoring.reevaluate import omega_squared

    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.3).astype(float)
    two = np.where(np.arange(4000) % 2 == 0, "a", "b")
    many = (np.arange(4000) % 40).astype(str)  # 40 segments that know nothing about y
    assert abs(omega_squared(y, two)) < 0.005 and abs(omega_squared(y, many)) < 0.005
    informative = np.where(y == 1, "buyers", "others")
    assert omega_squared(y, informative) > 0.99


def test_the_reason_says_which_number_is_the_challengers():
    _, reason = decide(CHAMPION, {**CHAMPION, "separation": 0.40})
    assert "separation challenger 0.400 vs champion 0.300 (+)" in reason


def test_the_command_says_each_verdict_once_and_speaks_on_healthy_data():
    from custseg.cli.display import reevaluation_lines

    healthy = {"trigger": {"needed": False}, "reevaluation": None}
    assert reevaluation_lines(healthy, asked=True) == ["[green]healthy:[/] no re-evaluation needed"]
    needed = {"trigger": {"needed": True}, "reevaluation": None}
    assert "--reevaluate" in reevaluation_lines(needed, asked=False)[0]
    _, reason = decide(CHAMPION, {**CHAMPION, "separation": 0.40})
    done = {
        "trigger": {"needed": True},
        "reevaluation": {
            "rfm_rules": {"promoted": False, "version": None, "reason": "not better"},
            "clusters": {"promoted": True, "version": "4", "reason": reason},
        },
    }
    lines = reevaluation_lines(done, asked=True)
    assert lines == [
        "rfm_rules: champion kept: not better",
        f"clusters: [green]challenger promoted[/] as v4: {reason}",
    ]
