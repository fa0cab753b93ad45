"""Trajectory arithmetic (pure Python) against hand computation and against the learner's numpy path."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from model_build.survival import DiscreteTimeSurvival
from model_build.trajectory import Curve, CurveQuery, area_series, locate, summarise_curves, trajectory

WEEKLY = tuple(7.0 * k for k in range(53))


def test_constant_weekly_hazard_gives_geometric_survival_by_hand():
    # Given a 10 % hazard every week
    m = math.log(0.1 / 0.9)
    curve = Curve(WEEKLY, (m,) * 52)
    # Then S(k weeks) = 0.9^k and the median is where 0.9^t = 0.5
    assert curve.survival(7.0 * 12) == pytest.approx(0.9**12, rel=1e-12)
    median_weeks = math.log(0.5) / math.log(0.9)
    assert curve.quantile(0.5) / 7.0 == pytest.approx(median_weeks, rel=1e-12)


def test_restricted_mean_and_located_survival_match_a_hand_computation():
    # Given a 10 % hazard every week on uneven edges (weekly, then fortnightly: 20.1 % a fortnight)
    edges = (0.0, 7.0, 14.0, 28.0, 42.0)
    m_week, m_fortnight = math.log(0.1 / 0.9), math.log(0.19 / 0.81)
    curve = Curve(edges, (m_week, m_week, m_fortnight, m_fortnight))
    rate = -math.log(0.9) / 7.0  # per day, the same throughout
    # Then the area under S on [0, 35] is (1 - e^(-35 rate)) / rate, and S at located days is the same as one by one
    assert curve.restricted_mean(35.0) == pytest.approx(-math.expm1(-35.0 * rate) / rate, rel=1e-12)
    days = [0.0, 7.0, 21.0, 35.0, 42.0]
    assert curve.survival_at(locate(edges, days)) == [curve.survival(d) for d in days]
    assert curve.survival(21.0) == pytest.approx(math.exp(-21.0 * rate), rel=1e-12)
    assert curve.quantiles((0.1, 0.5, 0.9)) == [curve.quantile(q) for q in (0.1, 0.5, 0.9)]


def test_a_shift_raises_every_interval_logit_and_zero_keeps_the_curve():
    curve = Curve(WEEKLY, tuple(-3.0 + 0.01 * k for k in range(52)))
    assert curve.shifted(0.0) == curve
    faster = curve.shifted(0.5)
    assert faster.margins == tuple(m + 0.5 for m in curve.margins)
    assert faster.restricted_mean(364.0) < curve.restricted_mean(364.0)


def test_quantile_beyond_the_horizon_is_none_not_a_guess():
    curve = Curve(WEEKLY, (-8.0,) * 52)  # hazard ~0.03 % a week
    assert curve.quantile(0.5) is None
    assert trajectory(WEEKLY, curve.margins, current_area=4.0)["median_weeks"] is None


def test_curve_matches_the_learners_numpy_survival_and_quantiles():
    # Given a learner fitted on exponential times with a covariate
    rng = np.random.default_rng(0)
    x = rng.normal(size=3000)
    t = rng.exponential(60 * np.exp(0.5 * x))
    c = rng.uniform(0, 250, size=3000)
    X = pd.DataFrame({"x": x})
    model = DiscreteTimeSurvival(interval_edges=WEEKLY[1:], max_iter=30, random_state=0)
    model.fit(X, np.minimum(t, c), t <= c)
    rows = X.iloc[:25]
    margins = model.hazard_margins(rows)
    days = np.array([0.0, 3.5, 7.0, 30.0, 84.0, 200.0, 364.0])
    expected_s = model.predict_survival(rows, days)
    expected_q = model.predict_quantiles(rows, [0.1, 0.5, 0.9])
    for i in range(len(rows)):
        curve = Curve(tuple(model.interval_edges_), tuple(margins[i]))
        assert [curve.survival(d) for d in days] == pytest.approx(list(expected_s[i]), abs=1e-12)
        got_q = [curve.quantile(q) for q in (0.1, 0.5, 0.9)]
        assert [math.inf if g is None else g for g in got_q] == pytest.approx(list(expected_q[i]), abs=1e-9)


def test_trajectory_is_monotone_banded_and_starts_at_the_current_area():
    margins = tuple(-3.0 + 0.05 * k for k in range(52))
    result = trajectory(WEEKLY, margins, current_area=10.0, shape=1.0)
    weekly = result["weekly"]
    assert weekly["area_cm2"][0] == pytest.approx(10.0) and weekly["p_healed"][0] == 0.0
    assert weekly["week"] == list(range(53)) and result["horizon_weeks"] == 52
    assert all(len(column) == 53 for column in weekly.values())
    assert all(a <= b for a, b in itertools.pairwise(weekly["p_healed"]))
    for low, mid, high in zip(weekly["area_low_cm2"], weekly["area_cm2"], weekly["area_high_cm2"], strict=True):
        assert low <= mid <= high
    low, high = result["median_interval_weeks"]
    assert low < result["median_weeks"] < high
    assert result["p_healed_by_week"]["12"] == pytest.approx(weekly["p_healed"][12])


def test_area_closes_along_the_assumed_shape():
    assert area_series([0.0, 14.0, 28.0, 30.0], 8.0, 28.0, 1.0) == pytest.approx([8.0, 4.0, 0.0, 0.0])
    assert area_series([14.0], 8.0, 28.0, 2.0) == pytest.approx([2.0])
    assert area_series([0.0, 30.0], 8.0, None, 1.0) == [8.0, 8.0]


def test_extreme_margins_keep_every_rate_positive_and_finite():
    # Given hazard logits so low the hazard underflows, and so high it is certain
    never, certain = Curve(WEEKLY, (-800.0,) * 52), Curve(WEEKLY, (40.0,) * 52)
    # Then a wound that never heals stays open for the whole horizon, and one that must heals at once
    assert never.restricted_mean(364.0) == pytest.approx(364.0) and never.quantile(0.5) is None
    assert certain.survival(7.0) == pytest.approx(math.exp(-40.0)) and certain.quantile(0.5) < 1.0


def test_summaries_are_the_shifted_curves_queried_one_by_one():
    edges, margins = (0.0, 7.0, 14.0, 28.0, 42.0), (-2.0, -1.5, -1.0, -2.5)
    days = [0.0, 3.5, 14.0, 35.0, 42.0]
    summaries = summarise_curves(edges, margins, [0.0, 0.7], CurveQuery(days, (0.1, 0.5), 30.0))
    curves = [Curve(edges, margins).shifted(shift) for shift in (0.0, 0.7)]
    assert summaries.survival == [curve.survival(d) for curve in curves for d in days]  # curve by curve
    assert summaries.quantile_days == [q for curve in curves for q in curve.quantiles((0.1, 0.5))]
    assert summaries.restricted_means == [curve.restricted_mean(30.0) for curve in curves]
