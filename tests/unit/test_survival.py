"""DiscreteTimeSurvival: recovers known truth under censoring, gives coherent curves, and compiles exactly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tl2cgen
import treelite

from model_build.survival import INTERVAL_COLUMN, MISSING_CATEGORY, DiscreteTimeSurvival

WEEKS = np.arange(7.0, 365.0, 7.0)
MEDIANS = {"fast": 30.0, "slow": 90.0}  # true medians (days) of the two exponential groups


def exponential_cohort(n: int, dropout_mean: float, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two groups with exponential times of known medians, random dropout and a 364-day end of follow-up."""
    rng = np.random.default_rng(seed)
    group = rng.choice(list(MEDIANS), n)
    median = pd.Series(group).map(MEDIANS).to_numpy()
    latent = rng.exponential(median / math.log(2))
    follow_up = np.minimum(rng.exponential(dropout_mean, n), 364.0)
    X = pd.DataFrame({"group": group, "noise": rng.normal(size=n)})
    return X, np.minimum(latent, follow_up), latent <= follow_up


def mixed_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Numeric (with NaN), bool, object (with None) and category columns; the object column drives the risk."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["a", "b", "c"], n).astype(object)
    kind[rng.random(n) < 0.1] = None
    size = rng.lognormal(1.0, 0.5, n)
    size[rng.random(n) < 0.15] = np.nan
    X = pd.DataFrame(
        {
            "size": size,
            "flag": rng.random(n) < 0.3,
            "kind": kind,
            "site": pd.Categorical(rng.choice(["x", "y"], n)),
        }
    )
    scale = 40.0 * np.where(kind == "c", 3.0, 1.0) * np.exp(0.2 * np.nan_to_num(size, nan=2.7) - 0.5)
    latent = rng.exponential(scale)
    follow_up = np.minimum(rng.exponential(150.0, n), 364.0)
    return X, np.minimum(latent, follow_up), latent <= follow_up


@pytest.fixture(scope="module")
def exponential_fit() -> tuple[DiscreteTimeSurvival, pd.DataFrame]:
    X, t, e = exponential_cohort(4000, dropout_mean=150.0)
    return DiscreteTimeSurvival(interval_edges=WEEKS, random_state=0).fit(X, t, e), X


@pytest.fixture(scope="module")
def mixed_fit() -> tuple[DiscreteTimeSurvival, pd.DataFrame]:
    X, t, e = mixed_frame(3000)
    return DiscreteTimeSurvival(interval_edges=WEEKS, random_state=0).fit(X, t, e), X


def group_medians(model: DiscreteTimeSurvival, X: pd.DataFrame) -> pd.Series:
    return pd.Series(model.predict_median(X)).groupby(X["group"].to_numpy()).median()


def test_given_exponential_times_when_fit_then_group_medians_match_truth_within_10_percent(exponential_fit):
    model, X = exponential_fit

    predicted = group_medians(model, X)

    for group, true_median in MEDIANS.items():
        assert predicted[group] == pytest.approx(true_median, rel=0.10)


def test_given_weibull_times_with_a_numeric_effect_when_fit_then_row_medians_track_truth():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 4000)
    scale, shape = 60.0 * np.exp(0.8 * x), 1.5
    latent = scale * rng.weibull(shape, len(x))
    follow_up = np.minimum(rng.exponential(200.0, len(x)), 364.0)
    X = pd.DataFrame({"x": x})

    model = DiscreteTimeSurvival(interval_edges=WEEKS, random_state=0).fit(
        X, np.minimum(latent, follow_up), latent <= follow_up
    )

    true_median = scale * math.log(2) ** (1 / shape)
    relative_error = np.abs(model.predict_median(X) / true_median - 1)
    assert np.median(relative_error) < 0.10
    assert np.corrcoef(model.predict_median(X), true_median)[0, 1] > 0.95


def test_given_heavier_censoring_of_the_same_times_when_fit_then_medians_are_not_biased_shorter():
    X, t_light, e_light = exponential_cohort(4000, dropout_mean=2000.0, seed=1)
    _, t_heavy, e_heavy = exponential_cohort(4000, dropout_mean=40.0, seed=1)  # same seed: same latent times
    assert e_heavy.mean() < 0.5 < e_light.mean()

    light = group_medians(DiscreteTimeSurvival(interval_edges=WEEKS, random_state=0).fit(X, t_light, e_light), X)
    heavy = group_medians(DiscreteTimeSurvival(interval_edges=WEEKS, random_state=0).fit(X, t_heavy, e_heavy), X)
    ignoring_censoring = group_medians(
        DiscreteTimeSurvival(interval_edges=WEEKS, random_state=0).fit(X, t_heavy, np.ones_like(e_heavy)), X
    )

    for group, true_median in MEDIANS.items():
        assert heavy[group] / light[group] > 0.90
        assert heavy[group] == pytest.approx(true_median, rel=0.15)
        # The check can fail: treating the same censored rows as events biases medians far shorter.
        assert ignoring_censoring[group] / light[group] < 0.70


def test_given_subsampled_person_periods_when_fit_then_hazards_stay_unbiased(exponential_fit):
    full, X = exponential_fit
    _, t, e = exponential_cohort(4000, dropout_mean=150.0)

    small = DiscreteTimeSurvival(interval_edges=WEEKS, max_person_periods=15_000, random_state=0).fit(X, t, e)

    assert small.n_person_periods_ < 0.5 * full.n_person_periods_
    for group, true_median in MEDIANS.items():
        assert group_medians(small, X)[group] == pytest.approx(true_median, rel=0.12)


def test_given_a_fitted_model_when_predicting_survival_then_curves_start_at_one_stay_in_unit_interval_and_never_rise(
    mixed_fit,
):
    model, X = mixed_fit
    times = np.linspace(0.0, 364.0, 200)

    s = model.predict_survival(X.iloc[:500], times)

    assert s.shape == (500, 200)
    np.testing.assert_allclose(s[:, 0], 1.0)
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s, axis=1) <= 1e-12)


def test_given_predicted_quantiles_when_read_back_on_the_curve_then_survival_equals_one_minus_q(mixed_fit):
    model, X = mixed_fit
    rows = X.iloc[:40]
    q = np.array([0.1, 0.25, 0.5])

    quantiles = model.predict_quantiles(rows, q)

    assert np.all(np.diff(quantiles, axis=1) > 0)
    reached = np.isfinite(quantiles)
    at_quantiles = model.predict_survival(rows, quantiles[reached])  # every row at every row's quantiles
    row_of = np.nonzero(reached)[0]
    np.testing.assert_allclose(at_quantiles[row_of, np.arange(len(row_of))], 1 - q[np.nonzero(reached)[1]], atol=1e-9)
    np.testing.assert_array_equal(model.predict_median(rows), quantiles[:, 2])


def test_given_a_quantile_beyond_the_horizon_when_predicted_then_it_is_infinite_and_times_past_it_are_refused(
    mixed_fit,
):
    model, X = mixed_fit
    horizon_survival = model.predict_survival(X.iloc[:50], [364.0])[:, 0]

    beyond = model.predict_quantiles(X.iloc[:50], [0.999])[:, 0]

    assert np.all(np.isinf(beyond) == (horizon_survival > 0.001))
    with pytest.raises(ValueError, match="horizon"):
        model.predict_survival(X.iloc[:5], [365.0])


def test_given_numeric_bool_object_category_and_missing_inputs_when_fit_then_encoding_and_effects_are_learned(
    mixed_fit,
):
    model, X = mixed_fit
    unseen = X.iloc[:3].assign(kind=["zzz", None, np.nan], size=np.nan)

    medians = pd.Series(model.predict_median(X)).groupby(X["kind"].fillna("none").to_numpy()).median()
    encoded = model.design_matrix(unseen, 0)

    assert model.categories_ == {"kind": ["a", "b", "c", MISSING_CATEGORY], "site": ["x", "y"]}
    assert model.design_columns_ == ["size", "flag", "kind", "site", INTERVAL_COLUMN]
    assert medians["c"] > 2 * medians["a"]  # the slow category is learned
    np.testing.assert_array_equal(encoded[:, 2], [3.0, 3.0, 3.0])  # unseen and missing share the missing level
    assert np.isnan(encoded[:, 0]).all()
    assert model.encode_value("kind", "b") == 1.0
    assert model.encode_value("kind", "zzz") == 3.0
    assert math.isnan(model.encode_value("site", "zzz"))  # no missing level: NaN, as HGB treats it
    assert np.isfinite(model.predict_survival(unseen, WEEKS)).all()


def test_given_the_same_random_state_when_fit_twice_with_subsampling_then_predictions_are_identical():
    X, t, e = exponential_cohort(1000, dropout_mean=150.0, seed=5)

    def fit(seed: int) -> DiscreteTimeSurvival:
        model = DiscreteTimeSurvival(interval_edges=WEEKS, max_person_periods=4000, max_iter=20, random_state=seed)
        return model.fit(X, t, e)

    first, second, other = fit(7), fit(7), fit(8)

    np.testing.assert_array_equal(first.hazard_margins(X), second.hazard_margins(X))
    assert not np.array_equal(first.hazard_margins(X), other.hazard_margins(X))


def test_given_tree_margins_when_survival_is_rebuilt_in_pure_python_then_it_equals_predict_survival(mixed_fit):
    model, X = mixed_fit
    rows = X.iloc[:20]
    times = [0.0, 3.5, 7.0, 45.2, 100.0, 364.0]
    edges = [float(e) for e in model.interval_edges_]

    def softplus(m: float) -> float:
        return max(m, 0.0) + math.log1p(math.exp(-abs(m)))

    def curve(margins: list[float]) -> list[float]:
        out = []
        for t in times:
            k = max(0, min(next(i for i, e in enumerate(edges) if e >= t) - 1, len(margins) - 1))
            log_s = -sum(softplus(m) for m in margins[:k])
            out.append(math.exp(log_s - (t - edges[k]) / (edges[k + 1] - edges[k]) * softplus(margins[k])))
        return out

    margins = [model.estimator_.decision_function(model.design_matrix(rows, k)) for k in range(len(edges) - 1)]
    rebuilt = [curve([float(m[i]) for m in margins]) for i in range(len(rows))]

    np.testing.assert_allclose(rebuilt, model.predict_survival(rows, times), rtol=1e-12)


def test_given_a_fitted_model_when_compiled_with_treelite_and_tl2cgen_then_margins_match_on_nan_and_unseen_rows(
    mixed_fit, tmp_path
):
    model, X = mixed_fit
    rows = X.iloc[:300].assign(size=lambda f: f["size"].where(f.index % 5 != 0))
    rows.loc[rows.index[:30], "kind"] = "unseen"
    rows.loc[rows.index[30:60], "site"] = np.nan
    lib = str(tmp_path / "model.so")
    tl2cgen.export_lib(treelite.sklearn.import_model(model.estimator_), toolchain="gcc", libpath=lib, nthread=2)
    predictor = tl2cgen.Predictor(lib)

    for k in (0, 12, 51):
        compiled = predictor.predict(tl2cgen.DMatrix(model.design_matrix(rows, k), dtype="float64"), pred_margin=True)
        np.testing.assert_allclose(compiled.ravel(), model.hazard_margins(rows)[:, k], rtol=0, atol=1e-9)


def test_given_invalid_training_input_when_fit_then_it_is_refused_with_a_reason():
    X, t, e = exponential_cohort(200, dropout_mean=150.0)

    with pytest.raises(ValueError, match="no events"):
        DiscreteTimeSurvival().fit(X, t, np.zeros_like(e))
    with pytest.raises(ValueError, match="non-negative"):
        DiscreteTimeSurvival().fit(X, -t, e)
    with pytest.raises(ValueError, match="reserved"):
        DiscreteTimeSurvival().fit(X.assign(**{INTERVAL_COLUMN: 1.0}), t, e)
