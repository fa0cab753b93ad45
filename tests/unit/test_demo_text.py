"""The demo's terminal text: probabilities never read as certain."""

from __future__ import annotations

from woundcare_shared.demo import format_calls

PLAN = {"primary_dressing": "foam", "dressing_changes_per_week": 3, "debridement": "none", "compression": False,
        "offloading": True, "npwt": False, "skin_substitute": False, "hyperbaric_oxygen": False}  # fmt: skip


def calls(p_now: float, p_option: float) -> dict:
    derive = {"wound_key": "W1", "visits": 2, "area_cm2": 3.0, "volume_cm3": 1.0, "push_total": 9,
              "percent_area_reduction": 10.0, "warnings": 0}  # fmt: skip
    option = {"rank": 1, "plan_id": "foam.3.none+offloading", "plan": PLAN, "restricted_mean_weeks": 2.0,
              "p_healed_12w": p_option, "expected_cost_usd": 1234.5}  # fmt: skip
    prediction = {"wound_key": "W1", "wound_type": "pressure_injury", "area_cm2": 3.0, "visits": 2,
                  "median_weeks": 2.0, "median_interval_weeks": [1.0, None], "horizon_weeks": 52,
                  "p_healed_12w": p_now, "progress_score": 0.1, "objective": "fastest",
                  "options": [option]}  # fmt: skip
    return {"model": {"production": "mv-1", "shadow": None}, "derive": derive, "predictions": [prediction]}


def test_probabilities_near_0_or_1_print_as_under_1_or_over_99_percent_never_0_or_100():
    text = "\n".join(format_calls(calls(0.999, 0.001)))
    assert "P(healed by 12 weeks) >99%" in text and "<1%" in text and "100%" not in text
    assert "2.0 weeks" in text and "(10-90%: 1.0->52)" in text and "$1,234" in text
    exact = "\n".join(format_calls(calls(1.0, 0.0)))
    assert "P(healed by 12 weeks) 100%" in exact and " 0% " in exact
    edges = "\n".join(format_calls(calls(0.995, 0.005)))
    assert "P(healed by 12 weeks) >99%" in edges and "<1%" in edges and "100%" not in edges and " 0% " not in edges
