"""The compiled healing model scores feature rows exactly as the scikit-learn model does."""

from __future__ import annotations

import numpy as np
import pytest
from woundcare_testing import wound_history

from model_build.features import history_features
from woundcare_scoring.healing import CompiledHealingModel


@pytest.fixture(scope="module")
def trained(small_cohort, small_model, small_bundle):
    _, clean, rows = small_cohort
    return clean, rows, small_model, CompiledHealingModel.load(small_bundle)


def test_compiled_margins_equal_sklearn_margins_on_every_visit_including_missing_values(trained):
    _, rows, model, compiled = trained
    sample = rows.X.sample(300, random_state=0)
    as_dicts = [{k: (None if v != v else v) for k, v in r.items()} for r in sample.to_dict("records")]
    assert any(v is None for r in as_dicts for v in r.values())  # missing values are exercised
    expected = np.asarray(model.margins(as_dicts))
    got = np.asarray(compiled.margins(as_dicts))
    assert got.shape == expected.shape == (300, len(model.survival.interval_edges_) - 1)
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


def test_many_rows_in_one_call_equal_each_row_scored_alone(trained):
    # Given 40 feature rows, some with missing values and unseen categories
    _, rows, _, compiled = trained
    sample = [{k: (None if v != v else v) for k, v in r.items()} for r in rows.X.iloc[:40].to_dict("records")]
    sample[3] = sample[3] | {"primary_dressing": "never_seen_before", "periwound": None}
    # When they are scored together (one native call) and one by one
    together = compiled.margins(sample)
    alone = [compiled.margins([row])[0] for row in sample]
    # Then every row's interval margins are the same either way, and no rows means no margins
    assert together == alone and len(together) == 40 and {len(m) for m in together} == {len(compiled.edges) - 1}
    assert compiled.margins([]) == []
