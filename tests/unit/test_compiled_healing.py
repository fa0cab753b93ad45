"""The compiled healing model scores feature rows exactly as the scikit-learn model does."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from conftest import wound_history

from model_build.compile import compile_model
from model_build.features import history_features
from model_build.features_table import landmarks
from model_build.healing import HealingParams, fit_healing_model
from model_build.synth import SynthConfig, generate_cohort, write_cohort
from model_build.validate import validate_extract
from woundcare_scoring.healing import CompiledHealingModel


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    cohort = generate_cohort(SynthConfig(n_patients=500, seed=21))
    write_cohort(cohort, folder)
    extract_date = dt.date.fromisoformat(json.loads((folder / "synth.json").read_text())["extract_date"])
    clean = validate_extract(folder, extract_date=extract_date).clean
    rows = landmarks(clean["patients"], clean["wounds"], clean["assessments"])
    model = fit_healing_model(rows, HealingParams(max_iter=30, min_samples_leaf=20))
    bundle = compile_model(
        model.survival.estimator_,
        tmp_path_factory.mktemp("bundle") / "model",
        model.survival.design_columns_,
        model.serving_meta(),
    )
    return clean, rows, model, CompiledHealingModel.load(bundle)


def test_compiled_margins_equal_sklearn_margins_on_every_visit_including_missing_values(trained):
    _, rows, model, compiled = trained
    sample = rows.X.sample(300, random_state=0)
    as_dicts = [{k: (None if v != v else v) for k, v in r.items()} for r in sample.to_dict("records")]
    assert any(v is None for r in as_dicts for v in r.values())  # missing values are exercised
    expected = np.asarray(model.margins(as_dicts))
    got = np.asarray(compiled.margins(as_dicts))
    assert got.shape == expected.shape == (300, 52)
    assert np.max(np.abs(got - expected)) <= 1e-9


def test_unseen_and_missing_categories_score_like_sklearn(trained):
    _, rows, model, compiled = trained
    row = {k: (None if v != v else v) for k, v in rows.X.iloc[0].to_dict().items()}
    odd = row | {"primary_dressing": "never_seen_before", "periwound": None, "pi_stage": None}
    assert np.max(np.abs(np.asarray(compiled.margins([odd])) - np.asarray(model.margins([odd])))) <= 1e-9


def test_a_served_history_scores_identically_on_both_paths(trained):
    clean, rows, model, compiled = trained
    for wound_key in rows.ids["wound_key"].drop_duplicates().iloc[:20]:
        served = history_features(*wound_history(clean, wound_key))
        assert np.max(np.abs(np.asarray(compiled.margins(served)) - np.asarray(model.margins(served)))) <= 1e-9
