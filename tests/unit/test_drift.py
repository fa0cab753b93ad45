"""Drift check: same-population draws pass, each synthetic drift is caught where it acts, the retrain rule holds."""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from model_build.drift import (
    NO_RETRAIN_NEEDED,
    DriftThresholds,
    compare,
    matured_outcomes,
    psi,
    reference_profile,
    retrain_reasons,
)
from model_build.features_table import ID_COLUMNS, feature_frame
from model_build.reports import drift_report_html
from model_build.synth import SynthConfig, generate_cohort

N_PATIENTS = 1500


def _draw(seed: int, drift: str = "none") -> tuple[pd.DataFrame, dict]:
    tables = generate_cohort(SynthConfig(n_patients=N_PATIENTS, seed=seed, drift=drift)).tables
    return feature_frame(**tables), matured_outcomes(tables["wounds"], tables["assessments"])


@pytest.fixture(scope="module")
def reference():
    frame, outcomes = _draw(seed=1)
    return frame, reference_profile(frame, outcomes)


@pytest.fixture(scope="module")
def same_population():
    return _draw(seed=2)


@pytest.fixture(scope="module")
def drifted():
    return {drift: _draw(seed=3, drift=drift) for drift in ("case_mix", "care_setting", "measurement")}


# --- drift detection -------------------------------------------------------------------------------------


def test_two_draws_of_the_same_population_are_not_flagged(reference, same_population):
    # Given the reference cohort and another draw of the same configuration with a different seed
    frame, outcomes = same_population
    # When the second is compared with the first
    result = compare(reference[1], frame, current_outcomes=outcomes)
    # Then no feature drifts, no data-set drift is declared, and every PSI stays in the stable band
    assert result.drifted_features == ()
    assert not result.drift_detected
    assert "drift" not in result.retrain_reasons
    assert {f.psi_band for f in result.features} == {"stable"}


@pytest.mark.parametrize(
    ("drift", "changed", "untouched"),
    [
        ("case_mix", {"age_years", "diabetes", "area_cm2"}, {"care_setting", "sex"}),
        ("care_setting", {"care_setting"}, {"age_years", "diabetes", "area_cm2", "length_cm"}),
        ("measurement", {"area_cm2", "first_area_cm2"}, {"age_years", "care_setting", "wound_type"}),
    ],
)
def test_each_synthetic_drift_is_flagged_on_the_features_it_changes(reference, drifted, drift, changed, untouched):
    # Given a cohort drawn with one of the synthetic drifts
    frame, outcomes = drifted[drift]
    # When it is compared with the reference
    result = compare(reference[1], frame, current_outcomes=outcomes)
    # Then the features the drift changes are flagged, features it leaves alone are not, and a retrain is due
    assert changed <= set(result.drifted_features)
    assert not untouched & set(result.drifted_features)
    assert result.drift_detected
    assert "drift" in result.retrain_reasons
    assert result.decision == "Retrain"


def test_method_follows_the_feature_type_and_small_samples_are_not_tested(reference):
    # Given the reference and a current sample of only 20 patients
    frame = reference[0]
    tiny = frame[frame["patient_key"].isin(frame["patient_key"].unique()[:20])]
    # When both the full frame and the tiny one are compared with the reference
    full = {f.name: f for f in compare(reference[1], frame).features}
    small = compare(reference[1], tiny)
    # Then numeric features with many values get KS + Wasserstein, categorical and few-valued ones chi² + JS,
    # and with 20 patients nothing is tested, so nothing drifts
    assert (full["age_years"].kind, full["age_years"].method) == ("continuous", "ks+wasserstein")
    assert (full["diabetes"].kind, full["diabetes"].method) == ("discrete", "chi2+jensen_shannon")
    assert (full["care_setting"].kind, full["care_setting"].method) == ("categorical", "chi2+jensen_shannon")
    assert {f.method for f in small.features} == {"insufficient_data"}
    assert small.drifted_features == () and small.share_drifted == 0.0


def test_comparing_a_frame_with_itself_finds_no_drift_at_all(reference):
    # Given the reference frame itself as the current data
    frame, profile = reference
    # When compared
    result = compare(profile, frame)
    # Then every effect is zero, PSI is zero over levels, and over decile bins it only carries the quantile
    # sketch's resolution (the current side's bin shares are read off its 100-point sketch)
    assert result.drifted_features == ()
    assert all(f.effect == pytest.approx(0.0, abs=1e-12) for f in result.features if f.effect is not None)
    assert all(f.psi == pytest.approx(0.0, abs=1e-12) for f in result.features if f.kind != "continuous")
    assert all(0.0 <= f.psi < 0.01 for f in result.features if f.kind == "continuous")


def test_a_measurement_no_longer_taken_is_flagged_by_its_missing_share(reference):
    # Given current data in which albumin is never recorded any more
    frame = reference[0].assign(albumin_g_dl=np.nan)
    # When compared with the reference
    albumin = {f.name: f for f in compare(reference[1], frame).features}["albumin_g_dl"]
    # Then only the missing share could be tested, and it drifted
    assert albumin.method == "missing_share"
    assert albumin.missing_current == 1.0
    assert albumin.drifted


def test_a_few_valued_feature_that_turns_continuous_is_compared_level_by_level_and_flagged(reference):
    # Given dressing changes per week, a handful of whole numbers in the reference, now recorded with fractions
    frame, profile = reference
    noisy = frame["dressing_changes_per_week"] + np.random.default_rng(0).uniform(0.0, 3.0, len(frame))
    # When the current data is compared with the reference
    result = compare(profile, frame.assign(dressing_changes_per_week=noisy))
    changes = {f.name: f for f in result.features}["dressing_changes_per_week"]
    # Then it is still compared as levels (read off the current quantile sketch), and it drifted
    assert profile["features"]["dressing_changes_per_week"]["kind"] == "discrete"
    assert changes.method == "chi2+jensen_shannon"
    assert changes.drifted and changes.effect > 0.9


@pytest.mark.parametrize(("n_patients", "flagged"), [(40, False), (100, True)])
def test_the_same_shift_is_flagged_only_once_enough_patients_show_it(reference, n_patients, flagged):
    # Given current data from a few patients of the reference whose wound areas are all doubled
    frame = reference[0]
    few = frame[frame["patient_key"].isin(frame["patient_key"].unique()[:n_patients])]
    few = few.assign(area_cm2=few["area_cm2"] * 2.0)
    # When compared with the reference
    area = {f.name: f for f in compare(reference[1], few).features}["area_cm2"]
    # Then the effect passes its floor either way, but only with enough patients is the test significant
    assert area.effect > DriftThresholds().wasserstein_min
    assert area.drifted == flagged
    assert (area.p_value < DriftThresholds().alpha) == flagged


def test_comparing_a_profile_equals_comparing_its_frame(reference, drifted):
    # Given a drifted frame and its profile
    frame, outcomes = drifted["care_setting"]
    # When each is compared with the reference
    from_frame = compare(reference[1], frame, current_outcomes=outcomes)
    from_profile = compare(reference[1], reference_profile(frame, outcomes))
    # Then the results are identical
    assert from_frame.as_dict() == from_profile.as_dict()


# --- PSI -------------------------------------------------------------------------------------------------


def test_psi_matches_a_hand_computation():
    # Given reference shares 0.5 / 0.3 / 0.2 and current shares 0.3 / 0.3 / 0.4 (as counts)
    # When PSI is computed
    value = psi([50, 30, 20], [30, 30, 40])
    # Then it is (0.3 - 0.5) ln(0.3/0.5) + 0 + (0.4 - 0.2) ln(0.4/0.2)
    assert value == pytest.approx(-0.2 * math.log(0.6) + 0.2 * math.log(2.0), rel=1e-12)
    assert value == pytest.approx(0.24079, abs=1e-5)


def test_psi_stays_finite_when_a_bin_is_empty_on_one_side():
    # Given a bin that the reference never saw
    # When PSI is computed
    value = psi([10, 0], [5, 5])
    # Then the empty bin counts with a share of 0.0001, not zero
    expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert value == pytest.approx(expected, rel=1e-12)


# --- profile ---------------------------------------------------------------------------------------------


def test_profile_is_small_json_and_holds_no_keys(reference):
    # Given the reference frame and its profile
    frame, profile = reference
    # When the profile is serialised
    text = json.dumps(profile, allow_nan=False)
    # Then it is tens of kilobytes, and no patient, wound or assessment key appears anywhere in it
    assert len(text.encode()) < 80_000
    keys = set(frame[["patient_key", "wound_key", "assessment_key"]].to_numpy().ravel())
    assert not keys & _strings(profile)
    assert not re.search(r"\b[PWA]\d{7}\b", text)
    assert set(profile["features"]) == set(frame.columns) - set(ID_COLUMNS)


def test_profile_counts_patients_once_and_wounds_equally(reference):
    # Given the reference frame, in which long-followed wounds have many visits
    frame, profile = reference
    # When its profile is taken
    age, area = profile["features"]["age_years"], profile["features"]["area_cm2"]
    # Then each feature's mass is the number of patients, and a patient feature has one count per patient
    assert age["units"] == pytest.approx(frame["patient_key"].nunique())
    assert sum(area["counts"]) + area["missing"] == pytest.approx(frame["patient_key"].nunique(), rel=1e-5)
    per_patient = frame.drop_duplicates("patient_key")["diabetes"].value_counts()
    assert profile["features"]["diabetes"]["levels"]["1"] == pytest.approx(per_patient[1.0])


def _strings(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*map(_strings, value.values()))
    if isinstance(value, list):
        return set().union(*map(_strings, value))
    return {value} if isinstance(value, str) else set()


# --- outcomes and the retrain rule -----------------------------------------------------------------------


def test_matured_outcomes_count_events_and_long_censored_wounds():
    # Given four wounds: healed at day 30; discharged at day 100; open, seen to day 50; open, seen to day 90
    day = pd.Timestamp("2025-01-01")
    wounds = pd.DataFrame(
        {
            "wound_key": ["a", "b", "c", "d"],
            "end_date": [day + pd.Timedelta(days=30), day + pd.Timedelta(days=100), pd.NaT, pd.NaT],
            "end_reason": ["healed", "discharged", None, "open"],
        }
    )
    assessments = pd.DataFrame(
        {
            "wound_key": ["a", "a", "b", "c", "c", "d", "d"],
            "assessed_on": [day + pd.Timedelta(days=d) for d in (0, 21, 0, 0, 50, 0, 90)],
        }
    )
    # When matured outcomes are counted at the 12-week horizon
    counts = matured_outcomes(wounds, assessments)
    # Then the healed wound and the two followed beyond 84 days count; the one seen for 50 days does not
    assert counts == {"horizon_days": 84, "events": 1, "censored_beyond_horizon": 2, "matured": 3}


@pytest.mark.parametrize(("current_matured", "decision"), [(299, NO_RETRAIN_NEEDED), (300, "Retrain")])
def test_enough_new_matured_outcomes_trigger_a_retrain_without_drift(reference, current_matured, decision):
    # Given a reference with 100 matured outcomes and undrifted current data with more
    frame, profile = reference
    # When compared
    result = compare(profile | {"outcomes": {"matured": 100}}, frame, current_outcomes={"matured": current_matured})
    # Then 200 new matured outcomes (the default) are enough to retrain, 199 are not
    assert result.new_matured_outcomes == current_matured - 100
    assert result.decision == decision
    assert result.retrain_reasons == (("new_outcomes",) if decision == "Retrain" else ())


@pytest.mark.parametrize(
    ("has_production_model", "drift_detected", "new_outcomes", "force"),
    list(itertools.product([True, False], [True, False], [0, 200, None], [True, False])),
)
def test_retrain_rule_truth_table(has_production_model, drift_detected, new_outcomes, force):
    # Given one combination of the rule's inputs (200 new outcomes is exactly enough; None means unknown)
    # When the reasons to retrain are derived
    reasons = retrain_reasons(
        has_production_model=has_production_model,
        drift_detected=drift_detected,
        new_matured_outcomes=new_outcomes,
        force=force,
        min_new_matured_outcomes=200,
    )
    # Then only a production model with no drift, too few new outcomes and no force ends without a retrain,
    # and each reason that holds is named
    idle = has_production_model and not drift_detected and new_outcomes != 200 and not force
    assert (reasons == ()) == idle
    assert ("forced" in reasons) == force
    assert ("no_production_model" in reasons) == (not has_production_model)
    assert ("drift" in reasons) == drift_detected
    assert ("new_outcomes" in reasons) == (new_outcomes == 200)


# --- report ----------------------------------------------------------------------------------------------


def test_result_is_plain_json(reference, drifted):
    # Given a drift result
    frame, outcomes = drifted["measurement"]
    result = compare(reference[1], frame, current_outcomes=outcomes)
    # When it is serialised strictly (no NaN)
    data = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    # Then the verdict, the drifted features and every feature's test travel with it
    assert data["decision"] == "Retrain" and data["drift_detected"] is True
    assert data["drifted_features"] == list(result.drifted_features)
    assert len(data["features"]) == len(result.features)
    assert data["thresholds"]["key_features"] == list(DriftThresholds().key_features)


def test_report_html_is_self_contained_and_plots_every_drifted_feature(reference, drifted):
    # Given a result with drifted features
    frame, outcomes = drifted["measurement"]
    result = compare(reference[1], frame, current_outcomes=outcomes)
    # When the report is rendered
    page = drift_report_html(result, reference[1], frame)
    # Then it is one HTML page with an inline PNG per drifted feature, the verdict, and no key or external link
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    plotted = re.findall(r'<img alt="([^:"]+): reference vs current" src="data:image/png;base64,', page)
    assert plotted == list(result.drifted_features)
    assert "Retrain" in page
    assert page.count('<tr class="drifted">') == len(result.drifted_features)
    assert not re.search(r"\b[PWA]\d{7}\b", page)
    assert "http" not in page


def test_report_html_says_when_nothing_drifted(reference, same_population):
    # Given a result without drift
    frame, _ = same_population
    result = compare(reference[1], frame)
    # When the report is rendered
    page = drift_report_html(result, reference[1], reference_profile(frame))
    # Then it has no plot and says so
    assert "<img" not in page
    assert "No feature drifted." in page
