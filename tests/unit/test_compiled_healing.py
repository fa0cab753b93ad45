"""The compiled healing model scores feature rows exactly as the scikit-learn model does."""

from __future__ import annotations

import numpy as np
import pytest
from woundcare_testing import wound_history

from model_build.features import history_features
from model_build.trajectory import CurveQuery, summarise_curves
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


def test_native_curve_summaries_equal_the_python_reference(trained):
    # Given real margins of many visits, shifts of both signs and extreme ones, uneven days and every query kind
    _, rows, _, compiled = trained
    sample = rows.X.sample(40, random_state=1)
    margins = compiled.margins([{k: (None if v != v else v) for k, v in r.items()} for r in sample.to_dict("records")])
    edges = compiled.edges
    days = [0.0, 3.5, 7.0, 30.0, 84.0, 91.0, 200.0, edges[-1]]
    shifts = [0.0, -1.3, 0.25, 2.0, -40.0, 60.0, -900.0]
    for row_margins in margins:
        for until in (84.0, 91.0, edges[-1]):
            query = CurveQuery(days, (0.1, 0.5, 0.9), until)
            expected = summarise_curves(edges, row_margins, shifts, query)
            got = compiled.summarise(edges, row_margins, shifts, query)
            # Then the C twin agrees with Curve to rounding (None where a quantile lies beyond the horizon)
            assert len(got.survival) == len(shifts) * len(days)
            assert got.survival == pytest.approx(expected.survival, rel=1e-12, abs=1e-300)
            assert [q is None for q in got.quantile_days] == [q is None for q in expected.quantile_days]
            assert [q for q in got.quantile_days if q is not None] == pytest.approx(
                [q for q in expected.quantile_days if q is not None], rel=1e-12
            )
            assert got.restricted_means == pytest.approx(expected.restricted_means, rel=1e-12)


def test_native_curve_summaries_refuse_days_beyond_the_edges(trained):
    compiled = trained[3]
    margins = [-2.0] * (len(compiled.edges) - 1)
    with pytest.raises(ValueError, match="within the interval edges"):
        compiled.summarise(compiled.edges, margins, [0.0], CurveQuery([compiled.edges[-1] + 1], (), 7.0))
    with pytest.raises(ValueError, match="within the interval edges"):
        compiled.summarise(compiled.edges, margins, [0.0], CurveQuery([1.0, float("nan")], (), 7.0))
    with pytest.raises(ValueError, match="quantiles"):
        compiled.summarise(compiled.edges, margins, [0.0], CurveQuery([7.0], (1.0,), 7.0))
    with pytest.raises(ValueError, match="finite"):
        compiled.summarise(compiled.edges, margins, [float("nan")], CurveQuery([7.0], (0.5,), 7.0))
    with pytest.raises(ValueError, match="one margin per interval"):
        compiled.summarise(compiled.edges, margins[:-1], [0.0], CurveQuery([7.0], (), 7.0))
    # bytes pass the checks above as small integers, but array("d", bytes) would read them as raw doubles: the
    # library would read past their end
    with pytest.raises(ValueError, match="sequences of numbers"):
        compiled.summarise(compiled.edges, margins, bytes(8), CurveQuery([7.0], (0.5,), 7.0))
    with pytest.raises(ValueError, match="sequences of numbers"):
        compiled.summarise(compiled.edges, margins, [0.0], CurveQuery(bytearray(16), (0.5,), 7.0))
