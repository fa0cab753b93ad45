"""Evaluation metrics: hand-worked cases, known properties, lifelines cross-checks, subgroup robustness, the split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index

from model_build.evaluate import (
    Predictions,
    age_band,
    brier_scores,
    calibration_by_decile,
    censoring_survival,
    evaluate_predictions,
    first_visits,
    harrell_c,
    integrated_brier,
    mae_weeks_on_closures,
    median_from_survival,
    split_by_patient,
    time_dependent_auc,
    uno_c,
)
from model_build.features_table import Landmarks


def exponential_times(n: int, seed: int = 0, dropout_mean: float | None = None):
    """Exponential healing times with known per-row rates; optional independent exponential dropout."""
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.normal(np.log(1 / 60), 0.7, n))
    latent = rng.exponential(1 / rate)
    if dropout_mean is None:
        return latent, np.ones(n, bool), rate
    dropout = rng.exponential(dropout_mean, n)
    return np.minimum(latent, dropout), latent <= dropout, rate


def landmark_rows(n_patients: int, seed: int = 0) -> Landmarks:
    """Landmarks of several patients, wounds and visits; features hold the subgroup columns only."""
    rng = np.random.default_rng(seed)
    visits = rng.integers(1, 6, n_patients)
    patient = np.repeat([f"P{i:04d}" for i in range(n_patients)], visits)
    day = np.concatenate([7 * np.arange(v) for v in visits])
    n = len(patient)
    X = pd.DataFrame(
        {
            "wound_type": np.where(
                np.arange(n) < 10, "skin_tear", rng.choice(["pressure_injury", "venous_leg_ulcer"], n)
            ),
            "care_setting": rng.choice(["snf", "home_health"], n),
            "sex": rng.choice(["female", "male"], n),
            "age_years": rng.integers(50, 91, n).astype(float),
            "days_since_first_assessment": day.astype(float),
        }
    )
    ids = pd.DataFrame({"patient_key": patient, "wound_key": np.char.add("W", patient.astype(str))})
    time = rng.exponential(60, n).round() + 1
    return Landmarks(ids=ids, X=X, time_days=time, event=rng.random(n) < 0.6)


# ---- split ----------------------------------------------------------------------------------------------


def test_split_by_patient_puts_each_patient_on_one_side_and_keeps_every_row():
    # Given landmarks of 200 patients with up to five visits each
    rows = landmark_rows(200)
    # When they are split with a quarter of patients held out
    train, test = split_by_patient(rows, test_share=0.25, seed=3)
    # Then no patient is on both sides, every row lands once, and a quarter of the patients are in test
    assert not set(train.ids["patient_key"]) & set(test.ids["patient_key"])
    assert len(train.event) + len(test.event) == len(rows.event)
    assert test.ids["patient_key"].nunique() == 50
    assert np.array_equal(test.X.index, np.arange(len(test.event)))


def test_split_by_patient_is_reproducible_for_a_seed_and_varies_across_seeds():
    rows = landmark_rows(100)
    same = [set(split_by_patient(rows, seed=1)[1].ids["patient_key"]) for _ in range(2)]
    other = set(split_by_patient(rows, seed=2)[1].ids["patient_key"])
    assert same[0] == same[1] != other


def test_first_visits_selects_the_first_assessment_of_each_wound():
    rows = landmark_rows(30)
    mask = first_visits(rows)
    assert mask.sum() == rows.ids["wound_key"].nunique()
    assert (rows.X["days_since_first_assessment"][mask] == 0).all()


def test_age_band_edges_are_closed_on_the_left():
    bands = age_band(pd.Series([18.0, 64.0, 65.0, 74.0, 75.0, 84.0, 85.0, 90.0]))
    assert bands.tolist() == ["<65", "<65", "65-74", "65-74", "75-84", "75-84", "85+", "85+"]


# ---- concordance ----------------------------------------------------------------------------------------


def test_harrell_c_counts_comparable_pairs_by_hand():
    # Given: A heals at 2, B censored at 3, C heals at 4, D censored at 1 (no pair starts at D)
    time = np.array([2.0, 3.0, 4.0, 1.0])
    event = np.array([True, False, True, False])
    risk = np.array([0.9, 0.5, 0.7, 0.0])
    # Comparable: (A,B) (A,C) concordant as A's risk is highest; C has no one open after 4.
    assert harrell_c(time, event, risk) == 1.0
    # When C outranks A, (A,C) is discordant: 1 of 2; a tie on (A,B) counts a half
    assert harrell_c(time, event, np.array([0.5, 0.5, 0.9, 0.0])) == pytest.approx(0.25)


def test_harrell_c_treats_a_censored_row_tied_in_time_with_an_event_as_comparable():
    time = np.array([5.0, 5.0, 5.0])
    event = np.array([True, False, True])
    # Two events tied at 5 are not comparable; each is comparable with the censored row
    assert harrell_c(time, event, np.array([1.0, 0.0, 1.0])) == 1.0
    assert harrell_c(time, event, np.array([0.0, 1.0, 0.0])) == 0.0


def test_harrell_c_is_one_for_perfect_risk_zero_reversed_and_half_for_noise():
    time, event, _ = exponential_times(2000, dropout_mean=80)
    assert harrell_c(time, event, -time) == 1.0
    assert harrell_c(time, event, time) == 0.0
    noise = np.random.default_rng(5).normal(size=len(time))
    assert harrell_c(time, event, noise) == pytest.approx(0.5, abs=0.03)


def test_harrell_c_equals_lifelines_concordance_with_ties_in_time_and_risk():
    rng = np.random.default_rng(7)
    time = rng.integers(1, 30, 1500).astype(float)
    event = rng.random(1500) < 0.55
    risk = rng.integers(0, 12, 1500).astype(float) - 0.2 * time
    assert harrell_c(time, event, risk) == pytest.approx(concordance_index(time, -risk, event), abs=1e-12)


def test_harrell_c_without_any_event_is_none_and_missing_risk_is_refused():
    assert harrell_c([1.0, 2.0], [False, False], [0.1, 0.2]) is None
    with pytest.raises(ValueError, match="missing"):
        harrell_c([1.0, 2.0], [True, True], [np.nan, 0.2])


def test_uno_c_equals_harrell_c_without_censoring():
    # Given no censoring in training (G = 1) and tau beyond every time
    time, event, rate = exponential_times(1500)
    risk = rate + np.random.default_rng(1).normal(0, 0.01, len(rate))
    # Then Uno's weights are all 1 and the two indices agree
    assert uno_c(time, event, risk, np.inf, time, event) == pytest.approx(harrell_c(time, event, risk), abs=1e-12)


def test_uno_c_under_heavy_censoring_recovers_the_uncensored_concordance():
    # Given the true rates as risk, the full-data C restricted to tau, and the same data censored heavily
    time, _, rate = exponential_times(6000, seed=2)
    tau = 60.0
    full = uno_c(time, np.ones(len(time), bool), rate, tau, time, np.ones(len(time), bool))
    rng = np.random.default_rng(3)
    censor = rng.exponential(40, len(time))
    observed, event = np.minimum(time, censor), time <= censor
    # When Uno's C is computed with G from independent training data of the same censoring
    train_censor = rng.exponential(40, 6000)
    train_time, _, _ = exponential_times(6000, seed=4)
    estimate = uno_c(observed, event, rate, tau, np.minimum(train_time, train_censor), train_time <= train_censor)
    # Then it lands near the uncensored value
    assert estimate == pytest.approx(full, abs=0.015)


def test_censoring_survival_steps_at_censoring_times_with_left_and_right_limits():
    # Given rows censored at 2 and 4 among events at 1 and 3: at risk 4, 3, 2, 1
    g = censoring_survival([1.0, 2.0, 3.0, 4.0], [True, False, True, False])
    # Then G drops by 1/3 at 2 (3 at risk) and to 0 at 4 (1 at risk); G(t-) excludes the drop at t
    assert g(np.array([1.0, 2.0, 3.0, 4.0])).tolist() == pytest.approx([1.0, 2 / 3, 2 / 3, 0.0])
    assert g(np.array([2.0, 4.0]), before=True).tolist() == pytest.approx([1.0, 2 / 3])


# ---- time-dependent AUC ---------------------------------------------------------------------------------


def test_time_dependent_auc_by_hand_without_censoring():
    # Given cases healed by t = 10 (risks 0.9, 0.4) and controls open after 10 (risks 0.5, 0.1)
    time = np.array([3.0, 8.0, 20.0, 30.0])
    event = np.ones(4, bool)
    risk = np.array([0.9, 0.4, 0.5, 0.1])
    # Then 3 of the 4 case-control pairs are ordered right
    assert time_dependent_auc(time, event, risk, 10.0, time, event) == 0.75
    assert time_dependent_auc(time, event, -time, 10.0, time, event) == 1.0


def test_time_dependent_auc_weights_cases_by_inverse_censoring_probability():
    # Given G(5-) = 1 and G(8-) = 1/2 (training: one of two rows censored at 6)
    train_time, train_event = np.array([6.0, 9.0]), np.array([False, True])
    time, event = np.array([5.0, 8.0, 20.0]), np.array([True, True, False])
    risk = np.array([0.9, 0.1, 0.5])  # the case at 5 beats the control, the case at 8 does not
    # Then the late case weighs 2, the early one 1: AUC = 1 / 3
    assert time_dependent_auc(time, event, risk, 10.0, train_time, train_event) == pytest.approx(1 / 3)


def test_time_dependent_auc_is_none_without_cases_or_controls():
    assert time_dependent_auc([20.0, 30.0], [True, True], [0.1, 0.2], 10.0, [1.0], [True]) is None
    assert time_dependent_auc([2.0, 3.0], [True, True], [0.1, 0.2], 10.0, [1.0], [True]) is None


# ---- Brier, calibration, medians ------------------------------------------------------------------------


def test_brier_score_of_the_km_curve_is_its_binomial_variance_and_a_perfect_curve_scores_zero():
    # Given uncensored times and the grid of weekly checkpoints
    time, event, _ = exponential_times(3000, seed=6)
    grid = np.arange(0.0, 85.0, 7.0)
    share_open = (time[:, None] > grid[None, :]).mean(axis=0)
    km = np.tile(share_open, (len(time), 1))
    perfect = (time[:, None] > grid[None, :]).astype(float)
    # Then the population curve scores p(1 - p) at every t and the oracle step curve scores 0
    assert brier_scores(time, event, km, grid, time, event) == pytest.approx(share_open * (1 - share_open))
    assert integrated_brier(time, event, perfect, grid, time, event) == 0.0
    assert integrated_brier(time, event, km, grid, time, event) > 0.1


def test_integrated_brier_with_ipcw_matches_the_uncensored_score_of_the_true_curves():
    # Given the true exponential curves, scored once on full data and once on censored data with IPCW
    time, _, rate = exponential_times(20000, seed=8)
    grid = np.arange(0.0, 85.0, 7.0)
    truth = np.exp(-rate[:, None] * grid[None, :])
    everyone = np.ones(len(time), bool)
    full = integrated_brier(time, everyone, truth, grid, time, everyone)
    censor = np.random.default_rng(9).exponential(100, len(time))
    observed, event = np.minimum(time, censor), time <= censor
    censored = integrated_brier(observed, event, truth, grid, observed, event)
    # Then the weights undo the censoring
    assert censored == pytest.approx(full, rel=0.03)


def test_calibration_of_a_calibrated_predictor_is_near_zero_and_of_a_shifted_one_is_the_shift():
    # Given P(healed by 84) from the true rates, under random censoring
    time, _, rate = exponential_times(20000, seed=10)
    censor = np.random.default_rng(11).exponential(150, len(time))
    observed, event = np.minimum(time, censor), time <= censor
    p = 1 - np.exp(-rate * 84)
    table, error = calibration_by_decile(p, observed, event, 84.0)
    # Then ten equal deciles, ordered predictions, and a small error; shifting by 0.1 shows a 0.1 error
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["n"].tolist() == [2000] * 10
    assert table["predicted"].is_monotonic_increasing
    assert error < 0.02
    assert calibration_by_decile(np.clip(p + 0.1, 0, 1), observed, event, 84.0)[1] == pytest.approx(0.1, abs=0.02)


def test_median_from_survival_interpolates_the_crossing_and_caps_at_the_last_time():
    times = np.array([0.0, 10.0, 20.0])
    surv = np.array([[1.0, 0.6, 0.4], [1.0, 0.5, 0.2], [1.0, 0.9, 0.8]])
    assert median_from_survival(surv, times).tolist() == pytest.approx([15.0, 10.0, 20.0])


def test_mae_weeks_uses_healed_rows_only():
    pred = np.array([14.0, 70.0, 1000.0])
    assert mae_weeks_on_closures(pred, [7.0, 84.0, 10.0], [True, True, False]) == pytest.approx(1.5)
    assert mae_weeks_on_closures(pred, [7.0, 84.0, 10.0], [False, False, False]) is None


# ---- the report -----------------------------------------------------------------------------------------


def test_predictions_from_survival_rank_by_restricted_mean_and_give_p_healed_by_12_weeks():
    times = np.array([0.0, 42.0, 84.0, 126.0])
    surv = np.array([[1.0, 0.5, 0.2, 0.1], [1.0, 0.9, 0.8, 0.7]])
    p = Predictions.from_survival(surv, times)
    assert p.risk[0] > p.risk[1]
    assert p.p_event.tolist() == pytest.approx([0.8, 0.2])
    with pytest.raises(ValueError, match="grid"):
        Predictions.from_survival(surv[:, 1:], times[1:])


def test_evaluate_predictions_reports_every_subgroup_and_none_for_tiny_ones_as_json():
    # Given landmarks with a rare wound type (10 rows) and a risk that knows the truth
    rows = landmark_rows(400, seed=1)
    times = np.arange(0.0, 365.0, 7.0)
    surv = np.exp(-times[None, :] / rows.time_days[:, None])
    report = evaluate_predictions(rows, Predictions.from_survival(surv, times), rows.time_days, rows.event)
    # Then overall metrics and deciles exist, every subgroup level is reported, small ones with n and None
    overall = report["overall"]
    assert overall["n"] == len(rows.event) and overall["harrell_c"] > 0.9
    assert len(overall["calibration"]) == 10
    assert set(report["by"]) == {"wound_type", "care_setting", "sex", "age_band", "visit"}
    first = int(first_visits(rows).sum())
    assert 0 < first < len(rows.event)
    assert (report["by"]["visit"]["first"]["n"], report["by"]["visit"]["later"]["n"]) == (
        first,
        len(rows.event) - first,
    )
    rare = report["by"]["wound_type"]["skin_tear"]
    assert rare["n"] == 10 and rare["harrell_c"] is None and rare["ibs"] is None
    assert report["by"]["age_band"]["<65"]["uno_c"] is not None
    json.dumps(report)


def test_evaluate_predictions_of_a_ranking_only_rule_leaves_curve_metrics_empty():
    rows = landmark_rows(200, seed=2)
    risk = -rows.time_days + 0.5 * rows.event  # a heal outranks a censoring on the same day
    report = evaluate_predictions(rows, Predictions(risk=risk), rows.time_days, rows.event)
    assert report["overall"]["harrell_c"] == 1.0
    assert report["overall"]["ibs"] is None and report["overall"]["calibration_mace"] is None
