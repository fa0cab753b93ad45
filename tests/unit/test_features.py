"""One feature specification: the training (table) and serving (one history) paths give identical rows."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from woundcare_testing import wound_history

from model_build.features import CATEGORICAL_FEATURES, FEATURE_NAMES, FEATURES, history_features
from model_build.features_table import feature_frame, landmarks
from model_build.validate import validate_extract


def _clean(tiny_extract):
    return validate_extract(tiny_extract, extract_date=dt.date(2026, 3, 1)).clean


def _serving_rows(clean: dict[str, pd.DataFrame], wound_key: str) -> list[dict]:
    """One wound's history as the API would receive it, in reverse order: arrival order must not matter."""
    patient, wound, visits = wound_history(clean, wound_key)
    return history_features(patient, wound, visits[::-1])


def assert_same_features(table_rows: pd.DataFrame, serving_rows: list[dict]) -> None:
    assert len(table_rows) == len(serving_rows)
    for (_, trained), served in zip(table_rows.iterrows(), serving_rows, strict=True):
        for name in FEATURE_NAMES:
            a, b = trained[name], served[name]
            if name in CATEGORICAL_FEATURES:
                assert a == b, name
            elif b is None:
                assert math.isnan(a), name
            else:
                assert a == b, name  # bit-identical, not approximately equal


def test_serving_features_equal_training_features_for_every_visit(tiny_extract):
    clean = _clean(tiny_extract)
    frame = feature_frame(clean["patients"], clean["wounds"], clean["assessments"])
    for wound_key in clean["wounds"]["wound_key"]:
        assert_same_features(frame[frame["wound_key"] == wound_key], _serving_rows(clean, wound_key))


def test_features_use_only_the_past_labs_carry_forward_and_first_area_is_kept(tiny_extract):
    clean = _clean(tiny_extract)
    frame = feature_frame(clean["patients"], clean["wounds"], clean["assessments"]).set_index("assessment_key")
    # a5 recorded ABI 0.9; a6 (a week later) did not measure it: carried forward, not looked up later
    assert frame.loc["a6", "ankle_brachial_index"] == 0.9
    assert frame.loc["a6", "first_area_cm2"] == 15.0
    assert frame.loc["a6", "area_cm2"] == pytest.approx(4.5 * 3.5)
    assert frame.loc["a4", "diabetes"] == 1.0 and frame.loc["a4", "wagner_grade"] == 2.0
    assert frame.loc["a1", "pi_stage"] == "2" and frame.loc["a4", "pi_stage"] is None


def test_landmark_targets_follow_the_contract_outcome(tiny_extract):
    clean = _clean(tiny_extract)
    rows = landmarks(clean["patients"], clean["wounds"], clean["assessments"])
    got = dict(zip(rows.ids["assessment_key"], zip(rows.time_days, rows.event, strict=True), strict=True))
    # w1 healed 2026-01-22: event; the closed visit on that day carries no follow-up and is left out
    assert got["a1"] == (14.0, True) and got["a2"] == (7.0, True) and "a3" not in got
    # w3 discharged 2026-02-01: censored at end_date
    assert got["a5"] == (27.0, False) and got["a6"] == (20.0, False)
    # w2 open with one visit: censored at its last assessment, so no follow-up at all
    assert "a4" not in got
    assert list(rows.X.columns) == [f.name for f in FEATURES]
