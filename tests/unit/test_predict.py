"""The API's answer for one wound: trajectory, progress and ranked options, identical on both scorers."""

from __future__ import annotations

import pytest
from woundcare_testing import wound_history

from model_build.costs import load_catalog
from model_build.predict import CARE_ENDS, FINAL_ENDS, OptionsRequest, Scorer, predict_history
from model_build.recommend import load_rules
from model_build.schema import END_REASONS
from woundcare_scoring.healing import CompiledHealingModel


@pytest.fixture(scope="module")
def scorers(small_model, small_bundle):
    compiled = CompiledHealingModel.load(small_bundle)
    return (
        Scorer("sklearn", small_model.margins, small_model.serving_meta()),
        Scorer("compiled", compiled.margins, compiled.meta),
        Scorer("native", compiled.margins, compiled.meta, compiled.summarise),
    )


def _open_wound(small_cohort):
    """A training wound's history as the EHR would send it before the wound ended."""
    _, clean, rows = small_cohort
    patient, wound, visits = wound_history(clean, rows.ids["wound_key"].iloc[0])
    return patient, {**wound, "end_date": None, "end_reason": None}, visits


def test_prediction_for_an_open_wound_has_trajectory_progress_and_options(small_cohort, scorers):
    patient, wound, visits = _open_wound(small_cohort)
    answer = predict_history(patient, wound, visits[:2], scorers[0], load_catalog(), load_rules(), OptionsRequest())
    assert answer["status"] == "open"
    prediction = answer["prediction"]
    assert prediction["weekly"]["week"] == list(range(53))
    assert set(prediction["p_healed_by_week"]) == {"4", "8", "12", "24"}
    assert answer["progress"]["push_total"] is not None and len(answer["progress"]["visits"]) == 2
    options = answer["options"]
    assert options["recommended"] == options["options"][0]["plan_id"]
    assert [o["rank"] for o in options["options"]] == list(range(1, len(options["options"]) + 1))


def test_a_new_visit_changes_the_trajectory(small_cohort, scorers):
    patient, wound, visits = _open_wound(small_cohort)
    ask, catalog, rules = OptionsRequest(), load_catalog(), load_rules()
    before = predict_history(patient, wound, visits[:1], scorers[0], catalog, rules, ask)["prediction"]
    after = predict_history(patient, wound, visits[:2], scorers[0], catalog, rules, ask)["prediction"]
    assert before["weekly"] != after["weekly"]


def test_compiled_and_sklearn_scorers_give_the_same_answer(small_cohort, scorers):
    patient, wound, visits = _open_wound(small_cohort)
    ask, catalog, rules = OptionsRequest(objective="cheapest"), load_catalog(), load_rules()
    reference, compiled, _ = (predict_history(patient, wound, visits[:2], s, catalog, rules, ask) for s in scorers)
    assert reference["prediction"]["median_weeks"] == pytest.approx(compiled["prediction"]["median_weeks"], abs=1e-9)
    ranked = [[o["plan_id"] for o in answer["options"]["options"]] for answer in (reference, compiled)]
    assert ranked[0] == ranked[1]


@pytest.mark.parametrize("objective", ["fastest", "cheapest", "cost_per_healed"])
def test_the_native_curve_arithmetic_gives_the_python_answer_end_to_end(small_cohort, scorers, objective):
    # Given open wounds of several kinds, scored by the compiled model with Python and with C curve arithmetic
    _, clean, rows = small_cohort
    ask, catalog, rules = OptionsRequest(objective=objective, max_options=100), load_catalog(), load_rules()
    ranked = 0
    for wound_key in rows.ids["wound_key"].drop_duplicates().iloc[:12]:
        history = wound_history(clean, wound_key)
        python, native = (predict_history(*history, s, catalog, rules, ask) for s in scorers[1:])
        ranked += len(python.get("options", {}).get("options", []))
        # Then every ranked plan, cost, probability and week is the same, to rounding
        assert (python.pop("model_version"), native.pop("model_version")) == ("compiled", "native")
        _assert_same(python, native, "answer")
    assert ranked > 100  # many plans of many wounds were compared


def _assert_same(expected, got, path):
    """Equal structure and values; floats to 1e-9 relative (the C twin rounds differently)."""
    if isinstance(expected, dict):
        assert expected.keys() == got.keys(), path
        for key in expected:
            _assert_same(expected[key], got[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(got), path
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            _assert_same(e, g, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    else:
        assert got == expected, path


def test_the_model_scores_one_row_per_history_and_the_options_reuse_it(small_cohort, scorers):
    calls = []

    def counting(rows):
        calls.append(len(rows))
        return scorers[0].margins(rows)

    patient, wound, visits = _open_wound(small_cohort)
    scorer = Scorer("counting", counting, scorers[0].meta)
    answer = predict_history(patient, wound, visits[:2], scorer, load_catalog(), load_rules(), OptionsRequest())
    assert calls == [1] and len(answer["options"]["options"]) > 1


def test_a_closed_latest_visit_means_healed_and_no_prediction(small_cohort, scorers):
    patient, wound, visits = _open_wound(small_cohort)
    closed = dict(visits[-1], length_cm=0.0, width_cm=0.0, area_cm2=None, depth_cm=0.0)
    answer = predict_history(patient, wound, [*visits[:-1], closed], scorers[0], load_catalog(), load_rules(),
                             OptionsRequest())  # fmt: skip
    assert answer["status"] == "healed" and "prediction" not in answer and "options" not in answer


ENDS = [("died", "died"), ("amputated", "amputated"), ("healed", "healed"), ("discharged", "open"), ("open", "open")]


@pytest.mark.parametrize(("end_reason", "status"), [*ENDS, (None, "open")])
def test_the_wound_record_s_end_decides_whether_an_open_wound_is_predicted(small_cohort, scorers, end_reason, status):
    patient, wound, visits = _open_wound(small_cohort)
    answer = predict_history(patient, {**wound, "end_reason": end_reason}, visits[:2], scorers[0], load_catalog(),
                             load_rules(), OptionsRequest())  # fmt: skip
    assert answer["status"] == status and ("prediction" in answer) == (status == "open")


def test_every_end_reason_either_stops_the_prediction_or_continues_it_with_a_warning():
    assert {"open", *FINAL_ENDS, *CARE_ENDS} == set(END_REASONS) and not set(FINAL_ENDS) & set(CARE_ENDS)
