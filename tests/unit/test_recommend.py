"""Treatment options: contraindication screening, one scored row shifted by treatment effects, ranking per objective,
support, determinism."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from model_build.costs import load_catalog
from model_build.features import FEATURE_NAMES
from model_build.plans import Plan, candidate_plans
from model_build.precision import complement, rounded
from model_build.recommend import (
    DEFAULT_RULES,
    OBJECTIVES,
    RuleTableError,
    _dominance,
    load_rules,
    parse_rules,
    plan_effect,
    plan_features,
    plan_from_fields,
    support_table,
    treatment_options,
)

EDGES = [7.0 * week for week in range(53)]
CATALOG, RULES = load_catalog(), load_rules()
NO_SUPPORT = {"min_support": 20, "counts": {}}
# Log odds ratios of the weekly healing hazard: the more, the faster the wound heals.
BUMPS = {"compression": 1.0, "offloading": 0.8, "npwt": 0.6, "skin_substitute": 0.4, "hyperbaric_oxygen": 0.2}
TAU = {**BUMPS, "debridement:sharp": 0.3}
EFFECTS = {
    "effects": {name: {"*": tau} for name, tau in TAU.items()},
    "standard_errors": {name: {"*": 0.1} for name in TAU},
    "references": {"interventions": "absent", "debridement": "none", "dressing": "foam"},
    "min_exposed_wounds": 20,
}


def fake_margins(rows):
    """Deterministic scorer: a constant weekly hazard logit per row, raised by the recorded plan's components."""
    out = []
    for row in rows:
        m = -3.0 + sum(w * row[name] for name, w in BUMPS.items()) + 0.3 * (row["debridement"] == "sharp")
        out.append([m] * (len(EDGES) - 1))
    return out


def wound_row(**fields):
    row = dict.fromkeys(FEATURE_NAMES)
    row |= {"wound_type": "venous_leg_ulcer", "location": "lower_leg", "ankle_brachial_index": 1.0,
            "eschar_pct": 0.0, "on_anticoagulants": 0.0, "infection": 0.0, "primary_dressing": "gauze",
            "dressing_changes_per_week": 7.0, "debridement": "none", "compression": 0.0, "offloading": 0.0,
            "npwt": 0.0, "skin_substitute": 0.0, "hyperbaric_oxygen": 0.0}  # fmt: skip
    return row | fields


def options(row, **kwargs):
    support = kwargs.pop("support", NO_SUPPORT)
    return treatment_options(row, fake_margins, EDGES, CATALOG, RULES, support, EFFECTS, **kwargs)


def rule_ids(items):
    return {r["id"] for item in items for r in item.get("reasons", item.get("caveats", []))}


def test_compression_with_abi_below_half_is_excluded_with_reason_and_source():
    # Given a venous leg ulcer with ABI 0.4
    out = options(wound_row(ankle_brachial_index=0.4))
    # Then every compression plan is excluded with the ABI rule, its reason and its source; none is an option
    compressed = [e for e in out["excluded"] if "compression" in e["plan_id"]]
    assert compressed and all(e["reasons"][0]["id"] == "compression-abi-below-0.5" for e in compressed)
    assert all(e["reasons"][0]["reason"] and e["reasons"][0]["source"] for e in compressed)
    assert not any(o["plan"]["compression"] for o in out["options"])


def test_compression_with_abi_between_half_and_0_8_is_kept_with_a_caveat():
    out = options(wound_row(ankle_brachial_index=0.6))
    compressed = [o for o in out["options"] if o["plan"]["compression"]]
    assert compressed and all("compression-abi-0.5-to-0.8" in rule_ids([o]) for o in compressed)
    assert out["recommended"].find("compression") >= 0  # the fake scorer favours compression most


def test_starting_compression_without_abi_on_record_for_a_leg_wound_is_excluded():
    out = options(wound_row(ankle_brachial_index=None))
    assert "compression-no-abi-lower-extremity" in rule_ids(out["excluded"])
    assert "compression" not in out["recommended"]
    unknown = options(wound_row(ankle_brachial_index=None, compression=None))
    assert "compression-no-abi-lower-extremity-plan-unknown" in rule_ids(unknown["excluded"])
    assert not any(o["plan"]["compression"] for o in unknown["options"])


def test_compression_in_force_without_abi_on_record_is_kept_with_a_caveat_not_advised_against():
    # Given a leg ulcer already under compression, its ABI not on record
    out = options(wound_row(ankle_brachial_index=None, compression=1.0), max_options=None)
    # Then compression plans stay, each with "record the ABI", and the current plan is not contraindicated
    compressed = [o for o in out["options"] if o["plan"]["compression"]]
    assert compressed and all("compression-no-abi-in-force" in rule_ids([o]) for o in compressed)
    assert not out["excluded"] and out["current"]["contraindications"] == []
    assert "compression" in out["recommended"]  # the fake scorer favours compression most


def test_npwt_is_excluded_with_eschar_and_caveated_with_anticoagulants():
    # Given a Wagner 2 plantar DFU (NPWT is a candidate)
    dfu = wound_row(wound_type="diabetic_foot_ulcer", location="foot_plantar", wagner_grade=2.0)
    with_eschar = options(dfu | {"eschar_pct": 10.0})
    anticoagulated = options(dfu | {"on_anticoagulants": 1.0})
    assert "npwt-eschar" in rule_ids(with_eschar["excluded"])
    assert not any(o["plan"]["npwt"] for o in with_eschar["options"])
    npwt_options = [o for o in anticoagulated["options"] if o["plan"]["npwt"]]
    assert npwt_options and all("npwt-anticoagulants" in rule_ids([o]) for o in npwt_options)


def test_silver_dressings_carry_a_stewardship_caveat_unless_the_wound_shows_infection():
    def silver(out):
        return [o for o in out["options"] if o["plan"]["primary_dressing"] == "silver_antimicrobial"]

    uninfected, infected = options(wound_row(), max_options=None), options(wound_row(infection=1.0), max_options=None)
    assert silver(uninfected) and all("silver-without-infection" in rule_ids([o]) for o in silver(uninfected))
    assert silver(infected) and not any("silver-without-infection" in rule_ids([o]) for o in silver(infected))
    assert not any(
        "silver-without-infection" in rule_ids([o]) for o in uninfected["options"] if o not in silver(uninfected)
    )


def test_hyperbaric_oxygen_is_excluded_outside_diabetic_foot_ulcers():
    plan = next(p for p in candidate_plans("diabetic_foot_ulcer", "foot_plantar", None, 3) if p.hyperbaric_oxygen)
    exclusions, _ = RULES.screen(plan, wound_row(wound_type="pressure_injury", location="heel"))
    assert [r.id for r in exclusions] == ["hbot-outside-dfu"]
    assert RULES.screen(plan, wound_row(wound_type="diabetic_foot_ulcer", location="foot_plantar")) == ((), ())


@pytest.mark.parametrize("objective", ["fastest", "cheapest", "cost_per_healed"])
@pytest.mark.parametrize(
    "fields",
    [
        {"ankle_brachial_index": 0.3},
        {"ankle_brachial_index": None},
        {"wound_type": "diabetic_foot_ulcer", "location": "heel", "wagner_grade": 4.0, "eschar_pct": 30.0},
        {"wound_type": "pressure_injury", "location": "sacrum_coccyx", "pi_stage": "4", "eschar_pct": 5.0},
    ],
)
def test_no_option_and_no_recommendation_violates_a_contraindication(fields, objective):
    # Given a wound with contraindications and a scorer that favours the contraindicated interventions
    row = wound_row(**fields)
    out = options(row, objective=objective)
    # Then no option (and so no recommendation) has an exclusion rule firing, and every excluded plan has one
    for option in out["options"]:
        assert RULES.screen(Plan.from_id(option["plan_id"]), row)[0] == ()
    assert out["excluded"] and all(e["reasons"] for e in out["excluded"])
    assert out["recommended"] in {o["plan_id"] for o in out["options"]}


def test_a_rule_file_change_changes_behaviour_without_code_change(tmp_path):
    # Given the rule table with compression contraindicated below ABI 0.7 instead of 0.5
    doc = json.loads(DEFAULT_RULES.read_text())
    doc["rules"][0]["when"][0]["value"] = 0.7
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    stricter = load_rules(path)
    row = wound_row(ankle_brachial_index=0.6)
    # When the same wound is screened
    out = treatment_options(row, fake_margins, EDGES, CATALOG, stricter, NO_SUPPORT, EFFECTS)
    # Then compression is now excluded, and the rules version names the new table
    assert "compression-abi-below-0.5" in rule_ids(out["excluded"])
    assert out["rules_version"] != RULES.version


def test_a_malformed_rule_is_rejected_at_load():
    bad = {"rules": [{"id": "x", "component": "compression", "action": "exclude", "reason": "r", "source": "s",
                      "when": [{"field": "abi", "op": "lt", "value": 0.5}]}]}  # fmt: skip
    with pytest.raises(RuleTableError, match="not a model feature"):
        parse_rules(json.dumps(bad))
    bad["rules"][0]["when"][0] = {"field": "ankle_brachial_index", "op": "below", "value": 0.5}
    with pytest.raises(RuleTableError, match="unknown op"):
        parse_rules(json.dumps(bad))


def recording(calls):
    def margins(rows):
        calls.append(rows)
        return fake_margins(rows)

    return margins


def test_one_row_is_scored_the_latest_visit_as_recorded_and_the_current_plan_keeps_its_curve():
    # Given a current plan (collagen) that is not a candidate plan
    calls = []
    row = wound_row(primary_dressing="collagen", dressing_changes_per_week=3.0)
    out = treatment_options(row, recording(calls), EDGES, CATALOG, RULES, NO_SUPPORT, EFFECTS)
    # Then the scorer ran once, on the row as recorded, and every option and the current plan are reported
    assert calls == [[row]]
    assert out["current"]["plan_id"] == "collagen.3.none" and not out["current"]["in_candidate_plans"]
    # and the current plan's outcome is the scored curve itself (no shift): constant weekly logit -3
    p_week = 1.0 / (1.0 + math.exp(3.0))
    assert out["current"]["p_healed_12w"] == complement((1.0 - p_week) ** 12)  # at the answer's precision
    same_plan = next(o for o in options(wound_row())["options"] if o["plan_id"] == "gauze.7.none")
    assert same_plan["vs_current"]["restricted_mean_weeks"] == 0.0 and same_plan["vs_current"]["p_healed_12w"] == 0.0


def test_plans_differ_by_the_effect_contrast_so_a_scorer_with_the_same_effects_equals_substitution():
    # Given a scorer whose treatment response is exactly EFFECTS, the shifted curves equal each plan scored alone
    row = wound_row(compression=1.0, debridement="sharp")
    out = options(row)
    for option in out["options"]:
        alone = treatment_options(
            {**row, **plan_features(Plan.from_id(option["plan_id"]))}, fake_margins, EDGES, CATALOG, RULES,
            NO_SUPPORT, EFFECTS,
        )["current"]  # fmt: skip
        assert option["restricted_mean_weeks"] == pytest.approx(alone["restricted_mean_weeks"], rel=1e-12)


def test_a_beneficial_component_lowers_the_predicted_healing_time():
    # Given a Wagner 2 plantar DFU: offloading + NPWT against offloading alone, same dressing and debridement
    dfu = wound_row(wound_type="diabetic_foot_ulcer", location="foot_plantar", wagner_grade=2.0)
    by_id = {o["plan_id"]: o for o in options(dfu)["options"]}
    with_npwt, without = by_id["foam.3.none+offloading+npwt"], by_id["foam.3.none+offloading"]
    assert with_npwt["restricted_mean_weeks"] < without["restricted_mean_weeks"]
    assert with_npwt["median_weeks"] < without["median_weeks"]
    assert with_npwt["p_healed_12w"] > without["p_healed_12w"]
    plan = Plan.from_id("foam.3.none+offloading+npwt")
    assert plan_effect(EFFECTS, plan, "diabetic_foot_ulcer") == pytest.approx(0.8 + 0.6)
    assert (
        plan_effect({"effects": {"npwt": {"*": 0.6, "diabetic_foot_ulcer": 0.5}}}, plan, "diabetic_foot_ulcer") == 0.5
    )


def test_options_resting_on_an_uncertain_or_unestimated_effect_say_so():
    # Given NPWT's effect with an interval that includes no effect, and HBOT with no estimate (too few wounds)
    effects = {**EFFECTS, "effects": {k: v for k, v in EFFECTS["effects"].items() if k != "hyperbaric_oxygen"}}
    effects["standard_errors"] = {**EFFECTS["standard_errors"], "npwt": {"*": 0.4}}
    dfu = wound_row(wound_type="diabetic_foot_ulcer", location="heel", wagner_grade=3.0, offloading=1.0)
    out = treatment_options(dfu, fake_margins, EDGES, CATALOG, RULES, NO_SUPPORT, effects)
    by_id = {o["plan_id"]: o for o in out["options"]}
    # Then options adding NPWT or HBOT carry the caveat, with the interval or the reason; others do not
    npwt = by_id["foam.3.none+offloading+npwt"]["caveats"]
    assert [c["id"] for c in npwt if c["id"] == "uncertain_effect"] == ["uncertain_effect"]
    assert "0.83–3.99" in next(c["reason"] for c in npwt if c["id"] == "uncertain_effect")
    hbot = rule_ids([by_id["foam.3.none+offloading+hyperbaric_oxygen"]])
    assert "effect_not_estimated" in hbot and "uncertain_effect" not in hbot
    plain = rule_ids([by_id["foam.3.sharp+offloading+skin_substitute"]])
    assert not plain & {"uncertain_effect", "effect_not_estimated"}


def test_a_wound_with_an_incomplete_plan_is_scored_once_with_the_first_admissible_plan():
    calls = []
    row = wound_row(debridement=None)
    out = treatment_options(row, recording(calls), EDGES, CATALOG, RULES, NO_SUPPORT, EFFECTS)
    assert out["current"] is None and len(calls) == 1 and len(calls[0]) == 1
    first_admissible = plan_from_fields(calls[0][0])
    assert first_admissible is not None and first_admissible.plan_id in {o["plan_id"] for o in out["options"]}
    assert out["recommended"] == options(wound_row())["recommended"]


def test_fastest_ranks_by_expected_time_open_and_reports_the_change_vs_current():
    out = options(wound_row(), objective="fastest")
    weeks = [o["restricted_mean_weeks"] for o in out["options"]]
    assert weeks == sorted(weeks)
    best = out["options"][0]
    # the fake scorer's best: compression + skin substitute + sharp debridement
    assert best["plan"]["compression"] and best["plan"]["skin_substitute"] and best["plan"]["debridement"] == "sharp"
    assert out["recommended"] == best["plan_id"] and best["rank"] == 1
    versus = best["vs_current"]
    assert versus["restricted_mean_weeks"] < 0 < versus["p_healed_12w"]
    assert versus["healed_weeks_gained"] == pytest.approx(-versus["restricted_mean_weeks"])


def test_the_current_plan_neither_dominates_itself_and_an_icer_is_stated_only_for_a_trade_off():
    out = options(wound_row(primary_dressing="foam", dressing_changes_per_week=3.0), max_options=None)
    by_dominance: dict[object, list] = {}
    for option in out["options"]:
        by_dominance.setdefault(option["vs_current"]["dominance"], []).append(option)
    itself = next(o for o in out["options"] if o["plan_id"] == out["current"]["plan_id"])
    assert itself["vs_current"]["dominance"] is None and itself["vs_current"]["icer_usd_per_healed_week"] is None
    assert by_dominance.get("dominates") and len(by_dominance[None]) > 1
    for option in by_dominance["dominates"] + by_dominance.get("dominated", []):
        assert option["vs_current"]["icer_usd_per_healed_week"] is None
    trade_offs = [
        o for o in by_dominance[None] if o["vs_current"]["expected_cost_usd"] and o["vs_current"]["healed_weeks_gained"]
    ]
    assert trade_offs and all(o["vs_current"]["icer_usd_per_healed_week"] is not None for o in trade_offs)


def test_the_change_vs_current_is_between_the_figures_shown_and_so_is_the_floor():
    out = options(wound_row(primary_dressing="foam", dressing_changes_per_week=3.0), max_options=None)
    current = out["current"]
    for option in out["options"]:
        versus = option["vs_current"]
        for name in ("restricted_mean_weeks", "p_healed_12w", "expected_cost_usd"):
            assert versus[name] == rounded(option[name] - current[name], 3), name
        same_weeks = option["restricted_mean_weeks"] == current["restricted_mean_weeks"]
        if same_weeks and option["expected_cost_usd"] != current["expected_cost_usd"]:
            assert versus["dominance"] in ("dominates", "dominated") and versus["icer_usd_per_healed_week"] is None
    # And a plan whose shown P(healed by 12 weeks) equals the floor meets it
    floor = out["options"][-1]["p_healed_12w"]
    floored = options(wound_row(primary_dressing="foam", dressing_changes_per_week=3.0), max_options=None,
                      min_p_healed_12w=floor)  # fmt: skip
    at_floor = [o for o in floored["options"] if o["p_healed_12w"] == floor]
    assert at_floor and all(o["meets_min_p_healed_12w"] for o in at_floor)


TINY = {
    f"dressing:{d}": {"*": 1e-4 * i}
    for i, d in enumerate(("gauze", "alginate", "hydrocolloid", "silver_antimicrobial"), 1)
}
# What each objective ranks by, in order, as the answer shows it.
SHOWN_TERMS = {
    "fastest": lambda o: (o["restricted_mean_weeks"], -o["p_healed_12w"], o["expected_cost_usd"]),
    "cheapest": lambda o: (o["expected_cost_usd"], o["restricted_mean_weeks"], -o["p_healed_12w"]),
    "cost_per_healed": lambda o: (o["cost_per_healed_usd"], o["restricted_mean_weeks"], -o["p_healed_12w"]),
}


def _shown_order(objective):
    # Dressings with effects too small to show in weeks (0.1) or P(healed by 12 weeks) (0.001)
    effects = {**EFFECTS, "effects": {**EFFECTS["effects"], **TINY}}
    out = treatment_options(wound_row(), fake_margins, EDGES, CATALOG, RULES, NO_SUPPORT, effects,
                            objective=objective, max_options=None)  # fmt: skip
    return [SHOWN_TERMS[objective](o) for o in out["options"]]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_options_are_in_the_order_of_the_figures_shown(objective):
    shown = _shown_order(objective)
    assert shown == sorted(shown)


def test_plans_that_look_the_same_on_the_objective_are_ranked_by_the_next_figure_shown():
    shown = _shown_order("fastest")
    assert shown == sorted(shown) and any(a[0] == b[0] and a[1:] < b[1:] for a, b in itertools.pairwise(shown))


def test_a_plan_that_cannot_heal_within_the_horizon_ranks_last_on_cost_per_healed_with_no_figure():
    # Given a scorer under which the current plan never heals (hazard 0) and every other plan does
    def never_unless_shifted(rows):
        return [[-800.0] * (len(EDGES) - 1) for _ in rows]

    effects = {**EFFECTS, "effects": {name: {"*": 800.0} for name in TAU}}
    out = treatment_options(wound_row(), never_unless_shifted, EDGES, CATALOG, RULES, NO_SUPPORT, effects,
                            objective="cost_per_healed", max_options=None)  # fmt: skip
    # Then the plan with no chance of healing has no cost per healed wound and ranks after every plan that has one
    per_healed = [o["cost_per_healed_usd"] for o in out["options"]]
    assert None in per_healed and per_healed.index(None) > 0
    assert all(value is None for value in per_healed[per_healed.index(None) :])


@pytest.mark.parametrize(
    ("d_cost", "d_effect", "dominance"),
    [(0.0, 0.0, None), (-1.0, 0.0, "dominates"), (0.0, 0.5, "dominates"), (1.0, 0.0, "dominated"),
     (0.0, -0.5, "dominated"), (1.0, 0.5, None), (-1.0, -0.5, None)],
)  # fmt: skip
def test_dominance_needs_a_strict_gain_or_loss(d_cost, d_effect, dominance):
    assert _dominance(d_cost, d_effect) == dominance


def test_cheapest_ranks_by_expected_cost():
    out = options(wound_row(), objective="cheapest")
    costs = [o["expected_cost_usd"] for o in out["options"]]
    assert costs == sorted(costs)
    assert out["options"][0]["expected_cost_usd"] < out["current"]["expected_cost_usd"]


@pytest.mark.parametrize("horizon", [12, 20])
def test_expected_cost_and_p12_match_a_hand_computation_for_a_constant_hazard(horizon):
    # Given margin 0 every week (hazard 1/2: P(open at week w) = 2^-w)
    def half(rows):
        return [[0.0] * 52 for _ in rows]

    out = treatment_options(wound_row(), half, EDGES, CATALOG, RULES, NO_SUPPORT, EFFECTS, horizon_weeks=horizon)
    current = out["current"]  # gauze 7 changes: 2×7 + 7 visits × 120 = 854 a week; shown at the answer's precision
    assert current["weekly_cost_usd"] == 854.0
    assert current["p_healed_12w"] == 0.999  # 1 - 2^-12 = 0.99976: never shown as certain
    assert current["p_healed_by_horizon"] == 0.999
    assert current["median_weeks"] == 1.0
    weeks_open = (1 - 0.5**horizon) / math.log(2)  # the area under 2^-t up to the horizon
    assert current["restricted_mean_weeks"] == rounded(weeks_open, 1) == 1.4
    assert current["expected_cost_usd"] == rounded(854.0 * weeks_open, 2)
    assert current["cost_per_healed_usd"] == rounded(current["expected_cost_usd"] / 0.999, 2)  # of the figures shown


def test_cost_per_healed_objective_respects_the_minimum_p_healed_at_12_weeks():
    # Given a floor that only plans with compression reach under the fake scorer
    unconstrained = options(wound_row(), objective="cost_per_healed")
    p12 = {o["plan_id"]: o["p_healed_12w"] for o in unconstrained["options"]}
    floor = min(v for k, v in p12.items() if "compression" in k)
    out = options(wound_row(), objective="cost_per_healed", min_p_healed_12w=floor)
    # Then the recommendation meets the floor, those below it rank after and carry a caveat
    meets = [o["meets_min_p_healed_12w"] for o in out["options"]]
    assert meets == sorted(meets, reverse=True) and p12[out["recommended"]] >= floor
    assert all("below_min_p_healed_12w" in rule_ids([o]) for o in out["options"] if not o["meets_min_p_healed_12w"])
    eligible = [o["cost_per_healed_usd"] for o in out["options"] if o["meets_min_p_healed_12w"]]
    assert eligible == sorted(eligible)
    assert options(wound_row(), objective="cost_per_healed", min_p_healed_12w=1.0)["recommended"] is None


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_a_floor_that_is_not_a_number_is_met_by_no_plan(objective):
    # Given a floor on P(healed by 12 weeks) of NaN (the API refuses one; a Python caller may pass it)
    out = options(wound_row(), objective=objective, min_p_healed_12w=math.nan)
    # Then no plan meets it and none is recommended, as with an unreachable floor
    assert out["recommended"] is None
    assert not any(o["meets_min_p_healed_12w"] for o in out["options"])


def test_low_support_is_flagged_not_hidden():
    # Given training support of 25 wounds for one plan and 3 for another (threshold 20)
    support = {"min_support": 20, "counts": {"venous_leg_ulcer": {"foam.3.none+compression": 25, "foam.3.none": 3}}}
    out = options(wound_row(), support=support)
    by_id = {o["plan_id"]: o for o in out["options"]}
    assert by_id["foam.3.none+compression"]["support"] == 25 and not by_id["foam.3.none+compression"]["low_support"]
    assert by_id["foam.3.none"]["support"] == 3 and "low_support" in rule_ids([by_id["foam.3.none"]])
    assert len(out["options"]) == len(by_id)  # every admissible plan is listed, supported or not


def test_support_table_counts_distinct_wounds_per_comparable_group_and_plan():
    plan = {"primary_dressing": "foam", "dressing_changes_per_week": 3, "debridement": "none", "compression": True,
            "offloading": False, "npwt": False, "skin_substitute": False, "hyperbaric_oxygen": False}  # fmt: skip
    records = [
        {"wound_key": "w1", "wound_type": "venous_leg_ulcer", "pi_stage": None, **plan},
        {"wound_key": "w1", "wound_type": "venous_leg_ulcer", "pi_stage": None, **plan},
        {"wound_key": "w2", "wound_type": "venous_leg_ulcer", "pi_stage": None, **plan},
        {"wound_key": "w3", "wound_type": "pressure_injury", "pi_stage": "3", **plan, "compression": False},
    ]
    table = support_table(records, min_support=5)
    assert table["min_support"] == 5
    assert table["counts"] == {
        "pressure_injury:3": {"foam.3.none": 1},
        "venous_leg_ulcer": {"foam.3.none+compression": 2},
    }
    assert json.loads(json.dumps(table)) == table


def test_equal_inputs_give_identical_options():
    first = json.dumps(options(wound_row(ankle_brachial_index=0.7), objective="cost_per_healed"))
    assert json.dumps(options(wound_row(ankle_brachial_index=0.7), objective="cost_per_healed")) == first


def test_an_unknown_objective_is_rejected():
    with pytest.raises(ValueError, match="objective"):
        options(wound_row(), objective="best")


@pytest.mark.parametrize("objective", ["fastest", "cheapest", "cost_per_healed"])
def test_max_options_describes_the_head_of_the_full_ranking(objective):
    # Given one wound ranked in full and with only the first three described
    row = wound_row(ankle_brachial_index=0.6)
    full = options(row, objective=objective, min_p_healed_12w=0.3)
    head = options(row, objective=objective, min_p_healed_12w=0.3, max_options=3)
    # Then the head is the full ranking's first three, and what the answer says of the rest is unchanged
    assert len(full["options"]) == full["ranked_plans"] == head["ranked_plans"] > 3
    assert head["options"] == full["options"][:3]
    assert [o["rank"] for o in head["options"]] == [1, 2, 3]
    assert (head["recommended"], head["current"], head["excluded"]) == (
        full["recommended"],
        full["current"],
        full["excluded"],
    )


def test_screening_many_plans_at_once_equals_screening_each():
    # Given a wound where rules exclude some plans and caveat others
    row = wound_row(ankle_brachial_index=0.6, on_anticoagulants=1.0)
    plans = candidate_plans("venous_leg_ulcer", "lower_leg")
    together = RULES.screen_all(plans, row)
    # Then each plan gets the same exclusions and caveats as when screened alone
    assert [(plan, *RULES.screen(plan, row)) for plan in plans] == together
    assert any(caveats for _, _, caveats in together)
