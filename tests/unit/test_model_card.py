"""The model card renders from a real evaluation and shows what a clinical lead needs to approve a model."""

from __future__ import annotations

import numpy as np

from model_build.evaluate import Predictions, evaluate_predictions, split_by_patient
from model_build.healing import as_model_frame
from model_build.model_card import permutation_importance, render_model_card


def test_model_card_has_metrics_plots_subgroups_importance_and_weights(small_cohort, small_model):
    _, _, landmarks = small_cohort
    train, test = split_by_patient(landmarks, test_share=0.3, seed=1)
    grid = np.arange(0.0, 365.0, 7.0)
    surv = small_model.survival.predict_survival(as_model_frame(test.X), grid)
    evaluation = evaluate_predictions(test, Predictions.from_survival(surv, grid), train.time_days, train.event)
    card = {"model_version": "mv-test", "dataset_version": "ds-1", "rows": {"test": len(test.time_days)},
            "evaluation": evaluation}  # fmt: skip

    page = render_model_card(card, small_model, test)

    assert page.startswith("<!doctype html>") and "mv-test" in page
    assert page.count("data:image/png;base64,") == 2  # calibration and trajectories
    for heading in (
        "Headline metrics",
        "Subgroups",
        "C-index",
        "Progress score weights",
        "wound_type",
        "Treatment effects",
    ):
        assert heading in page
    assert f"{evaluation['overall']['harrell_c']:.3f}" in page


def test_importance_ranks_features_by_the_c_index_they_carry(small_cohort, small_model):
    _, _, landmarks = small_cohort
    _, test = split_by_patient(landmarks, test_share=0.3, seed=1)
    drops = permutation_importance(small_model, test, top=10)
    assert len(drops) == 10
    assert [d for _, d in drops] == sorted((d for _, d in drops), reverse=True)
    assert drops[0][1] > 0.01  # the model leans on something measurable
