"""Clinical baselines score hand-made rows by their published rules; the Cox baseline and the oracle behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model_build import baselines
from model_build.evaluate import harrell_c
from model_build.features_table import landmarks
from model_build.plans import TREATMENT_COLUMNS, Plan
from model_build.synth import SynthConfig, generate_cohort, true_survival

NAN = np.nan


def rows(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_sheehan_gives_58_percent_at_or_above_53_percent_area_reduction_and_9_percent_below_or_unknown():
    X = rows(percent_area_reduction=[53.0, 80.0, 52.9, -20.0, NAN])
    p = baselines.sheehan(X)
    assert p.p_event.tolist() == [0.58, 0.58, 0.09, 0.09, 0.09]
    assert p.p_event_days == 84.0
    assert p.risk.tolist() == p.p_event.tolist()


def test_percent_area_reduction_ranks_larger_reduction_as_sooner_healing_and_unknown_as_none():
    p = baselines.percent_area_reduction(rows(percent_area_reduction=[60.0, NAN, -10.0]))
    assert p.risk.tolist() == [60.0, 0.0, -10.0]


def test_margolis_dfu_gives_one_point_per_risk_factor_and_none_for_missing_values():
    X = rows(
        wound_age_days=[30.0, 61.0, 61.0, 200.0, NAN, 60.0],
        area_cm2=[1.0, 1.0, 2.5, 3.0, 3.0, 2.0],
        wagner_grade=[1.0, 1.0, 2.0, 3.0, NAN, 2.0],
    )
    assert baselines.margolis_dfu_points(X).tolist() == [0, 1, 2, 3, 1, 0]
    p = baselines.margolis_dfu(X)
    # P(not healed by week 20) = 0.35 / 0.47 / 0.66 / 0.81 for 0-3 points (Margolis 2003)
    assert p.p_event.tolist() == pytest.approx([0.65, 0.53, 0.34, 0.19, 0.53, 0.65])
    assert p.p_event_days == 140.0
    assert np.argsort(-p.risk, kind="stable").tolist()[:2] == [0, 5]  # fewest points heal soonest


def test_margolis_vlu_gives_a_point_for_area_over_5_cm2_and_for_duration_over_6_months():
    X = rows(area_cm2=[4.0, 6.0, 4.0, 6.0, NAN], wound_age_days=[100.0, 100.0, 200.0, 200.0, NAN])
    assert baselines.margolis_vlu_points(X).tolist() == [0, 1, 1, 2, 0]
    assert baselines.margolis_vlu(X).risk.tolist() == [0.0, -1.0, -1.0, -2.0, 0.0]


def test_push_total_ranks_lower_scores_as_sooner_healing_and_fills_missing_with_the_median():
    p = baselines.push_total(rows(push_total=[3.0, 12.0, NAN, 9.0]))
    assert p.risk.tolist() == [-3.0, -12.0, -9.0, -9.0]


@pytest.fixture(scope="module")
def small_cohort():
    cohort = generate_cohort(SynthConfig(n_patients=60, seed=4))
    t = cohort.tables
    return cohort, landmarks(t["patients"], t["wounds"], t["assessments"])


def test_oracle_at_a_first_visit_is_the_true_survival_under_the_plan_given(small_cohort):
    # Given the first landmark of a wound and its ground truth
    cohort, lm = small_cohort
    times = np.array([0.0, 7.0, 84.0, 200.0])
    first = np.flatnonzero((lm.X["days_since_first_assessment"] == 0).to_numpy())[0]
    wound = lm.ids["wound_key"][first]
    truth = cohort.ground_truth.set_index("wound_key").loc[wound]
    visit = cohort.tables["assessments"].query("wound_key == @wound").iloc[0]
    plan = Plan(**{c: visit[c] for c in TREATMENT_COLUMNS})
    # When the oracle scores it
    oracle = baselines.oracle_survival(lm, cohort.ground_truth, times)[first]
    # Then it is synth's own true survival of that wound under that plan
    assert oracle == pytest.approx(true_survival(times, truth, plan))


def test_oracle_at_a_later_visit_conditions_on_the_wound_still_being_open(small_cohort):
    cohort, lm = small_cohort
    later = np.flatnonzero((lm.X["days_since_first_assessment"] > 20).to_numpy())[0]
    s = float(lm.X["days_since_first_assessment"][later])
    truth = cohort.ground_truth.set_index("wound_key").loc[lm.ids["wound_key"][later]]
    scale, shape = np.exp(truth["log_scale_given"]), truth["weibull_shape"]
    times = np.array([0.0, 30.0, 90.0])
    expected = np.exp(-(((s + times) / scale) ** shape)) / np.exp(-((s / scale) ** shape))
    oracle = baselines.oracle_survival(lm, cohort.ground_truth, times)[later]
    assert oracle == pytest.approx(expected)
    assert oracle[0] == 1.0


def test_cox_baseline_learns_the_direction_of_size_and_type_and_scores_unseen_values():
    # Given exponential healing that is slower for larger wounds and for venous ulcers, with gaps in the data
    rng = np.random.default_rng(0)
    n = 600
    area = rng.lognormal(1.0, 0.8, n)
    wound_type = rng.choice(["pressure_injury", "venous_leg_ulcer"], n)
    rate = np.exp(-0.6 * np.log(area) - 0.8 * (wound_type == "venous_leg_ulcer")) / 30
    time = np.minimum(rng.exponential(1 / rate), 150.0)
    event = time < 150.0
    X = pd.DataFrame({"area_cm2": np.where(rng.random(n) < 0.1, NAN, area), "wound_type": wound_type})
    # When the Cox baseline is fitted and scores new rows, one with an unseen wound type
    cox = baselines.CoxBaseline().fit(X, time, event)
    new = pd.DataFrame({"area_cm2": [1.0, 20.0, NAN, 2.0], "wound_type": ["pressure_injury"] * 3 + ["trauma"]})
    surv = cox.predict_survival(new, [0.0, 30.0, 90.0])
    # Then curves fall over time, bigger wounds stay open longer, and training rows are ranked well
    assert surv.shape == (4, 3) and np.all(np.diff(surv, axis=1) <= 0)
    assert surv[0, 2] < surv[1, 2]
    assert np.isfinite(surv).all()
    risk = 1.0 - cox.predict_survival(X, [60.0])[:, 0]  # P(healed by 60 days)
    assert harrell_c(time, event, risk) > 0.65
    assert "area_cm2:missing" in cox.columns_
