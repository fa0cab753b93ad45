"""The healing model: fits on landmarks, exposes margins for serving, learns progress weights and area shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from woundcare_testing import wound_history

from model_build.features import FEATURE_NAMES, history_features
from model_build.healing import as_model_frame


@pytest.fixture(scope="module")
def cohort_and_model(small_cohort, small_model):
    _, clean, rows = small_cohort
    return clean, rows, small_model


def test_margins_from_dict_rows_equal_the_learners_margins(cohort_and_model):
    _, rows, model = cohort_and_model
    X = rows.X.iloc[:50]
    as_dicts = [{k: (None if v != v else v) for k, v in r.items()} for r in X.to_dict("records")]
    expected = model.survival.hazard_margins(as_model_frame(X))
    assert np.array_equal(np.asarray(model.margins(as_dicts)), expected)


def test_serving_rows_score_like_training_rows(cohort_and_model):
    # Given one wound's history as the API gets it, the margins of its latest visit equal the training row's
    clean, rows, model = cohort_and_model
    wound_key = rows.ids["wound_key"].iloc[0]
    served = history_features(*wound_history(clean, wound_key))
    trained = rows.X[rows.ids["wound_key"] == wound_key]
    assert model.margins(served[: len(trained)]) == model.margins(
        [{k: (None if v != v else v) for k, v in r.items()} for r in trained.to_dict("records")]
    )


def test_serving_meta_is_json_and_complete(cohort_and_model):
    _, _, model = cohort_and_model
    meta = json.loads(json.dumps(model.serving_meta()))
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert meta["design_columns"][-1] == "interval_start"
    assert meta["interval_edges_days"][:3] == [0.0, 7.0, 14.0] and meta["interval_edges_days"][-1] == 364.0
    assert set(meta["progress"]["weights"]) == set(meta["progress"]["scales"])
    assert 0.2 <= meta["area_shape"] <= 5.0
    effects = meta["treatment_effects"]
    assert effects["n_wounds"] > 0 and effects["references"]["debridement"] == "none"
    assert set(effects["effects"]) == set(effects["standard_errors"])


def test_progress_weights_reward_shrinking_wounds(cohort_and_model):
    # a falling log area goes with healing, so its change carries a negative weight
    _, _, model = cohort_and_model
    assert model.progress.weights["log_area"] < 0
    shrinking = {name: 0.0 for name in model.progress.weights} | {"log_area": -0.7}
    growing = shrinking | {"log_area": 0.7}
    assert model.progress.score(shrinking) > 0 > model.progress.score(growing)
