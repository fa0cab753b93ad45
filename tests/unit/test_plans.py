"""The treatment-plan space: stable ids, contract-valid fields, and which interventions a wound is offered."""

from __future__ import annotations

import subprocess
import sys

import pytest

from model_build.plans import INTERVENTIONS, TREATMENT_COLUMNS, Plan, candidate_plans
from model_build.schema import (
    ASSESSMENTS,
    DEBRIDEMENTS,
    DRESSINGS,
    LOCATIONS,
    PI_STAGES,
    WOUND_TYPES,
)


def all_wounds():
    """Every (wound_type, location, pi_stage, wagner_grade) the contract allows."""
    for wound_type in WOUND_TYPES:
        stages = PI_STAGES if wound_type == "pressure_injury" else (None,)
        grades = range(6) if wound_type == "diabetic_foot_ulcer" else (None,)
        for location in LOCATIONS:
            for stage in stages:
                for grade in grades:
                    yield wound_type, location, stage, grade


def offered(wound, name):
    return any(getattr(plan, name) for plan in candidate_plans(*wound))


def test_plan_id_is_readable_and_reversible():
    # Given a plan with debridement and two interventions
    plan = Plan("foam", 3, "sharp", offloading=True, npwt=True)
    # When its id is taken and parsed back
    plan_id = plan.plan_id
    # Then the id is stable text and parses to the same plan
    assert plan_id == "foam.3.sharp+offloading+npwt"
    assert Plan.from_id(plan_id) == plan


def test_plan_id_with_unknown_intervention_is_rejected():
    with pytest.raises(ValueError, match="unknown intervention"):
        Plan.from_id("foam.3.none+leeches")


def test_assessment_fields_are_exactly_the_contract_treatment_columns_with_valid_values():
    # Given every candidate plan of every wound the contract allows
    plans = {plan for wound in all_wounds() for plan in candidate_plans(*wound)}
    # Then each plan maps onto the assessment's treatment columns with values the contract accepts
    assert set(TREATMENT_COLUMNS) <= set(ASSESSMENTS.column_names)
    for plan in plans:
        fields = plan.as_assessment_fields()
        assert tuple(fields) == TREATMENT_COLUMNS
        assert fields["primary_dressing"] in DRESSINGS
        assert fields["debridement"] in DEBRIDEMENTS
        assert 0 <= fields["dressing_changes_per_week"] <= 21
        assert all(isinstance(fields[name], bool) for name in INTERVENTIONS)


def test_every_wound_gets_a_compact_set_of_distinct_plans():
    # When the candidates of every allowed wound are listed
    for wound in all_wounds():
        plans = candidate_plans(*wound)
        ids = [plan.plan_id for plan in plans]
        # Then there are some, tens at most, with no duplicates, round-tripping through their ids
        assert 1 <= len(plans) <= 60, wound
        assert len(set(ids)) == len(ids), wound
        assert [Plan.from_id(i) for i in ids] == plans


@pytest.mark.parametrize(
    ("wound", "intervention", "expected"),
    [
        (("venous_leg_ulcer", "lower_leg", None, None), "compression", True),
        (("venous_leg_ulcer", "malleolus", None, None), "compression", True),
        (("venous_leg_ulcer", "foot_dorsal", None, None), "compression", False),
        (("arterial_ulcer", "lower_leg", None, None), "compression", False),
        (("diabetic_foot_ulcer", "foot_plantar", None, 1), "offloading", True),
        (("diabetic_foot_ulcer", "toe", None, 1), "offloading", True),
        (("diabetic_foot_ulcer", "foot_dorsal", None, 1), "offloading", False),
        (("pressure_injury", "heel", "2", None), "offloading", True),
        (("pressure_injury", "sacrum_coccyx", "2", None), "offloading", False),
        (("pressure_injury", "sacrum_coccyx", "4", None), "npwt", True),
        (("pressure_injury", "sacrum_coccyx", "2", None), "npwt", False),
        (("diabetic_foot_ulcer", "foot_plantar", None, 2), "npwt", True),
        (("diabetic_foot_ulcer", "foot_plantar", None, 1), "npwt", False),
        (("surgical_dehiscence", "abdomen", None, None), "npwt", True),
        (("skin_tear", "upper_extremity", None, None), "npwt", False),
        (("diabetic_foot_ulcer", "toe", None, 1), "skin_substitute", True),
        (("venous_leg_ulcer", "lower_leg", None, None), "skin_substitute", True),
        (("pressure_injury", "sacrum_coccyx", "3", None), "skin_substitute", False),
        (("diabetic_foot_ulcer", "heel", None, 3), "hyperbaric_oxygen", True),
        (("diabetic_foot_ulcer", "heel", None, 2), "hyperbaric_oxygen", False),
        (("arterial_ulcer", "toe", None, None), "hyperbaric_oxygen", False),
    ],
)
def test_interventions_are_offered_only_where_they_apply(wound, intervention, expected):
    assert offered(wound, intervention) is expected


def test_interventions_outside_their_indication_are_never_offered_anywhere():
    # Given every allowed wound
    for wound in all_wounds():
        wound_type, location, _, grade = wound
        # Then compression, HBOT and skin substitutes stay within their indications
        if offered(wound, "compression"):
            assert wound_type == "venous_leg_ulcer" and location in ("lower_leg", "malleolus")
        if offered(wound, "hyperbaric_oxygen"):
            assert wound_type == "diabetic_foot_ulcer" and grade >= 3
        if offered(wound, "skin_substitute"):
            assert wound_type in ("diabetic_foot_ulcer", "venous_leg_ulcer")
        if offered(wound, "offloading"):
            assert location in ("foot_plantar", "heel", "toe")


def test_standard_device_is_offered_with_and_without_and_advanced_therapies_come_one_at_a_time():
    # Given a Wagner-3 plantar DFU: offloading plus three possible advanced therapies
    plans = candidate_plans("diabetic_foot_ulcer", "foot_plantar", None, 3)
    # Then plans with and without offloading exist, every advanced plan keeps offloading,
    # and no plan combines two advanced therapies
    assert {plan.offloading for plan in plans} == {True, False}
    advanced = [p for p in plans if p.npwt or p.skin_substitute or p.hyperbaric_oxygen]
    assert advanced and all(p.offloading for p in advanced)
    assert all(p.npwt + p.skin_substitute + p.hyperbaric_oxygen <= 1 for p in plans)
    # and NPWT replaces the primary dressing with its own foam
    assert {(p.primary_dressing, p.dressing_changes_per_week) for p in plans if p.npwt} == {("foam", 3)}


def test_dressings_keep_their_typical_change_frequency():
    plans = candidate_plans("pressure_injury", "sacrum_coccyx", "2", None)
    assert {(p.primary_dressing, p.dressing_changes_per_week) for p in plans} == {
        ("foam", 3),
        ("hydrocolloid", 3),
        ("gauze", 7),
    }


def test_plans_module_imports_without_numpy_or_pandas():
    # Given a fresh interpreter (the inference Lambda imports plans.py without the scientific stack)
    code = "import sys, model_build.plans; print(sorted({'numpy', 'pandas'} & set(sys.modules)))"
    # When only the plans module is imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Then neither numpy nor pandas was loaded
    assert out.strip() == "[]"
