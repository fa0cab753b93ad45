"""Derived assessment fields: hand-computed histories, missing inputs, and per-history vs vectorised parity."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_build.derive import DERIVED_FIELDS, SHOWN_DECIMALS, as_shown, derive_history
from model_build.derive_table import derive_assessments
from model_build.schema import TISSUE_PCT_COLUMNS

FLOAT_COLUMNS = ("length_cm", "width_cm", "depth_cm", "area_cm2", "weight_kg", "height_cm", "bmi", *TISSUE_PCT_COLUMNS)
INT_FIELDS = ("wound_age_days", "days_since_first_assessment", "push_area_score", "push_exudate_score",
              "push_tissue_score", "push_total")  # fmt: skip
FLOAT_FIELDS = ("area_cm2", "volume_cm3", "bmi", "percent_area_reduction", "weekly_healing_rate_cm2")


def _visit(key, day, length, width, **fields):
    return {"assessment_key": key, "wound_key": "w1", "assessed_on": day, "length_cm": length, "width_cm": width,
            "depth_cm": None, "area_cm2": None, "granulation_pct": 80.0, "slough_pct": 20.0, "eschar_pct": 0.0,
            "epithelial_pct": 0.0, "exudate_amount": "light", "weight_kg": None, "height_cm": None, "bmi": None,
            **fields}  # fmt: skip


def _frames(wounds: list[dict], assessments: list[dict], index=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The typed tables validation produces: datetime64[ns] dates, float64 numbers, object enums."""
    a = pd.DataFrame(assessments, index=index)
    a["assessed_on"] = pd.to_datetime(a["assessed_on"].map(lambda d: None if d is None else str(d)))
    a[list(FLOAT_COLUMNS)] = a[list(FLOAT_COLUMNS)].astype("float64")
    w = pd.DataFrame(wounds, columns=["wound_key", "onset_date"])
    w["onset_date"] = pd.to_datetime(w["onset_date"].map(lambda d: None if d is None else str(d)))
    return w, a


# One wound, onset 2026-01-01, given out of date order: a visit with a given area and a calculated BMI,
# one with a given BMI, one with depth, then closed.
HISTORY = [
    _visit("a3", "2026-01-22", 2.0, 1.5, depth_cm=0.2),
    _visit("a1", "2026-01-08", 4.0, 2.5, area_cm2=9.0, weight_kg=80.0, height_cm=175.0, exudate_amount="moderate",
           granulation_pct=60.0, slough_pct=30.0, eschar_pct=10.0),
    _visit("a4", "2026-02-05", 0.0, 0.0, depth_cm=0.0, exudate_amount="none", granulation_pct=0.0, slough_pct=0.0),
    _visit("a2", "2026-01-15", 3.0, 2.0, bmi=25.0, weight_kg=80.0, height_cm=175.0),
]  # fmt: skip
# Worked by hand: a1 is the first visit (9 cm²); areas 9 → 6 → 3 → 0 over 0, 7, 14, 28 days.
# BMI 80 / 1.75² = 26.12 → 26.1. PUSH: 9 cm² → 8, 6 cm² → 7, 3 cm² → 5, closed → 0.
EXPECTED = {
    "assessment_key": ["a1", "a2", "a3", "a4"],
    "area_cm2": [9.0, 6.0, 3.0, 0.0],
    "area_calculated": [False, True, True, True],
    "volume_cm3": [None, None, pytest.approx(0.6, abs=1e-15), 0.0],
    "bmi": [26.1, 25.0, None, None],
    "bmi_calculated": [True, False, False, False],
    "wound_age_days": [7, 14, 21, 35],
    "days_since_first_assessment": [0, 7, 14, 28],
    "percent_area_reduction": [0.0, pytest.approx(100 / 3), pytest.approx(200 / 3), 100.0],
    "weekly_healing_rate_cm2": [None, 3.0, 3.0, 1.5],
    "push_area_score": [8, 7, 5, 0],
    "push_exudate_score": [2, 1, 1, 0],
    "push_tissue_score": [4, 3, 3, 0],
    "push_total": [14, 11, 9, 0],
    "dominant_tissue": ["granulation", "granulation", "granulation", "closed"],
}


def test_history_derives_every_field_as_worked_by_hand_in_date_order():
    # Given one wound's visits out of date order
    # When its history is derived one wound at a time
    rows = derive_history({"onset_date": "2026-01-01"}, HISTORY)
    # Then each field matches the hand calculation, in date order, with None where it cannot be known
    assert {field: [row[field] for row in rows] for field in EXPECTED} == EXPECTED
    assert list(rows[0]) == ["assessment_key", *DERIVED_FIELDS]


def test_table_derives_the_hand_worked_history_and_keeps_row_order_and_index():
    # Given the same visits as a typed table with a non-default index
    wounds, assessments = _frames([{"wound_key": "w1", "onset_date": "2026-01-01"}], HISTORY, index=[40, 10, 30, 20])
    before = assessments.copy()
    # When the table is derived
    out = derive_assessments(assessments, wounds)
    # Then rows keep their order and index, the input is untouched, and the fields match the hand calculation
    pd.testing.assert_frame_equal(assessments, before)
    assert out.index.tolist() == [40, 10, 30, 20]
    by_date = out.set_index("assessment_key").loc[EXPECTED["assessment_key"]]
    got = {f: [None if pd.isna(v) else v for v in by_date[f]] for f in EXPECTED if f != "assessment_key"}
    assert got == {f: v for f, v in EXPECTED.items() if f != "assessment_key"}
    untouched = [c for c in before.columns if c not in ("area_cm2", "bmi")]
    pd.testing.assert_frame_equal(out[untouched], before[untouched])


def test_table_gives_missing_values_their_nullable_dtypes():
    wounds, assessments = _frames([{"wound_key": "w1", "onset_date": None}], HISTORY)
    out = derive_assessments(assessments, wounds)
    assert {f: str(out[f].dtype) for f in INT_FIELDS} == dict.fromkeys(INT_FIELDS, "Int64")
    assert {f: str(out[f].dtype) for f in FLOAT_FIELDS} == dict.fromkeys(FLOAT_FIELDS, "float64")
    assert str(out["area_calculated"].dtype) == str(out["bmi_calculated"].dtype) == "boolean"
    assert out["wound_age_days"].isna().all()


def test_growing_wound_has_negative_reduction_and_negative_healing_rate():
    # Given a wound that grows from 4 to 6 cm² in 14 days
    rows = derive_history({}, [_visit("a1", "2026-03-01", 2.0, 2.0), _visit("a2", "2026-03-15", 3.0, 2.0)])
    # Then the reduction is -50 % and the rate is -1 cm²/week (positive means shrinking)
    assert rows[1]["percent_area_reduction"] == -50.0
    assert rows[1]["weekly_healing_rate_cm2"] == -1.0


def test_reduction_is_missing_when_the_first_area_is_zero():
    # Given a wound first seen closed that then reopens
    rows = derive_history({}, [_visit("a1", "2026-03-01", 0.0, 0.0), _visit("a2", "2026-03-08", 1.0, 1.0)])
    # Then there is no reduction from a zero baseline, while the weekly rate is still known
    assert [r["percent_area_reduction"] for r in rows] == [None, None]
    assert rows[1]["weekly_healing_rate_cm2"] == -1.0


def test_missing_measurements_leave_only_their_own_fields_missing():
    # Given a visit with no width (area unknown) and no depth, and one without onset
    rows = derive_history({"onset_date": None}, [_visit("a1", "2026-03-01", 2.0, 1.0),
                                                  _visit("a2", "2026-03-08", 2.0, None)])  # fmt: skip
    # Then area, its volume, reduction, rate and PUSH area/total are missing; the rest is still derived
    assert rows[1]["area_cm2"] is None and rows[1]["area_calculated"] is False
    assert [rows[1][f] for f in ("volume_cm3", "percent_area_reduction", "weekly_healing_rate_cm2")] == [None] * 3
    assert (rows[1]["push_area_score"], rows[1]["push_total"], rows[1]["push_tissue_score"]) == (None, None, 3)
    assert [r["wound_age_days"] for r in rows] == [None, None]
    assert rows[1]["days_since_first_assessment"] == 7


def test_dates_are_accepted_as_iso_strings_dates_or_datetimes():
    as_text = [_visit("a1", "2026-03-01", 2.0, 1.0), _visit("a2", "2026-03-08", 1.0, 1.0)]
    as_dates = [{**v, "assessed_on": dt.date.fromisoformat(v["assessed_on"])} for v in as_text]
    as_datetimes = [{**v, "assessed_on": dt.datetime.fromisoformat(v["assessed_on"] + "T09:30")} for v in as_text]
    onsets = ("2026-02-01", dt.date(2026, 2, 1), dt.datetime(2026, 2, 1))
    histories = (as_text, as_dates, as_datetimes)
    results = [derive_history({"onset_date": o}, h) for o, h in zip(onsets, histories, strict=True)]
    assert results[0] == results[1] == results[2]
    assert [r["wound_age_days"] for r in results[0]] == [28, 35]


def test_missing_assessment_date_is_rejected_by_both_paths():
    history = [_visit("a1", "2026-03-01", 2.0, 1.0), _visit("a2", None, 2.0, 1.0)]
    with pytest.raises(ValueError, match="assessed_on is missing"):
        derive_history({}, history)
    wounds, assessments = _frames([{"wound_key": "w1", "onset_date": None}], history)
    assessments.loc[1, "assessed_on"] = pd.NaT
    with pytest.raises(ValueError, match="assessed_on is missing"):
        derive_assessments(assessments, wounds)


def test_bad_date_error_does_not_echo_the_value():
    with pytest.raises(ValueError) as error:
        derive_history({}, [_visit("a1", "2026-13-45", 2.0, 1.0)])
    assert "2026-13-45" not in str(error.value)


def test_assessment_of_an_unknown_wound_has_no_wound_age():
    wounds, assessments = _frames([{"wound_key": "other", "onset_date": "2026-01-01"}], HISTORY)
    assert derive_assessments(assessments, wounds)["wound_age_days"].isna().all()


def test_per_history_module_imports_neither_pandas_nor_numpy():
    # The inference Lambda imports model_build.derive and must not pay for pandas/numpy.
    code = "import sys, model_build.derive; print(sorted({'pandas', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_validated_extract_derives_alike_on_both_paths(tiny_extract):
    # Given an extract as validation types it (the tiny contract-conformant fixture)
    from model_build.validate import validate_extract

    clean = validate_extract(tiny_extract, extract_date=dt.date(2026, 3, 1)).clean
    # When it is derived as a table and wound by wound
    out = derive_assessments(clean["assessments"], clean["wounds"]).set_index("assessment_key")
    # Then both paths agree, a given area is kept, and a wound without onset has no age
    _assert_parity(out, clean["wounds"], clean["assessments"])
    assert (out.loc["a5", "area_cm2"], out.loc["a5", "area_calculated"]) == (15.0, False)
    assert out.loc["a3", "push_total"] == 0 and out.loc["a3", "dominant_tissue"] == "closed"
    assert pd.isna(out.loc["a4", "wound_age_days"])


# ---------------------------------------------------------------- parity over random histories

BASE_DAY = dt.date(2026, 1, 1)
AREA_EDGES = [0.0, 0.29, 0.3, 0.6, 0.65, 1.0, 1.05, 2.0, 12.0, 24.0, 24.05]
measure = st.floats(0.1, 60, allow_nan=False) | st.sampled_from([0.2, 0.4, 1.5, 3.0])
percent = st.floats(0, 100, allow_nan=False) | st.sampled_from([0.0, 25.0, 50.0])


def _maybe(strategy):
    return st.none() | strategy


@st.composite
def visits(draw, wound_key: str, number: int) -> dict:
    closed = draw(st.integers(0, 4)) == 0
    length, width = (0.0, 0.0) if closed else (draw(_maybe(measure)), draw(_maybe(measure)))
    return {
        "assessment_key": f"{wound_key}-{number}",
        "wound_key": wound_key,
        "assessed_on": BASE_DAY + dt.timedelta(days=draw(st.integers(0, 90))),  # repeats: same-day ties
        "length_cm": length,
        "width_cm": width,
        "depth_cm": draw(_maybe(st.floats(0, 20, allow_nan=False))),
        "area_cm2": draw(_maybe(st.floats(0, 3600, allow_nan=False) | st.sampled_from(AREA_EDGES))),
        **{c: draw(_maybe(percent)) for c in TISSUE_PCT_COLUMNS},
        "exudate_amount": draw(st.sampled_from(["none", "light", "moderate", "heavy", None])),
        "weight_kg": draw(_maybe(st.floats(20, 350, allow_nan=False))),
        "height_cm": draw(_maybe(st.floats(100, 230, allow_nan=False))),
        "bmi": draw(_maybe(st.floats(10, 80, allow_nan=False))),
    }


@st.composite
def extracts(draw) -> tuple[list[dict], list[dict]]:
    wounds, assessments = [], []
    for w in range(draw(st.integers(1, 5))):
        key = f"w{w}"
        onset = draw(_maybe(st.integers(-400, 0)))
        wounds.append({"wound_key": key, "onset_date": None if onset is None else BASE_DAY + dt.timedelta(onset)})
        assessments += [draw(visits(key, i)) for i in range(draw(st.integers(1, 8)))]
    return wounds, draw(st.permutations(assessments))


def _json(value):
    """A frame cell as the inference API would receive it: ISO dates, plain numbers, None for missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value.item() if isinstance(value, np.generic) else value


def _assert_same(field: str, expected, got) -> None:
    if expected is None:
        assert pd.isna(got), field
    elif isinstance(expected, float):
        assert not pd.isna(got) and math.isclose(expected, got, rel_tol=1e-12, abs_tol=1e-12), field
    else:
        assert type(expected) is (bool if field.endswith("_calculated") else int if field in INT_FIELDS else str)
        assert expected == got, field


def _assert_parity(table: pd.DataFrame, wounds: pd.DataFrame, assessments: pd.DataFrame) -> None:
    """Each wound's history, derived from JSON-like dicts in row order, equals the table's rows."""
    onsets = dict(zip(wounds["wound_key"], wounds["onset_date"], strict=True))
    records = [{k: _json(v) for k, v in row.items()} for row in assessments.to_dict("records")]
    for wound_key in assessments["wound_key"].unique():
        history = [r for r in records if r["wound_key"] == wound_key]
        for row in derive_history({"onset_date": _json(onsets[wound_key])}, history):
            for field in DERIVED_FIELDS:
                _assert_same(field, row[field], table.loc[row["assessment_key"], field])


@settings(max_examples=120, deadline=None)
@given(extract=extracts())
def test_vectorised_and_per_history_paths_give_identical_fields(extract):
    # Given random histories: unsorted, same-day ties, missing onset/area/length/depth/tissue, closed wounds
    wounds, assessments = _frames(*extract, index=np.arange(len(extract[1]))[::-1] * 7)
    # When the table is derived and each wound is derived on its own from JSON-like dicts
    table = derive_assessments(assessments, wounds).set_index("assessment_key")
    # Then every field agrees: floats to 1e-12, ints and labels exactly, missing in the same places
    _assert_parity(table, wounds, assessments)


def test_the_answer_shows_fields_computed_from_others_at_clinical_precision_and_features_keep_full_precision():
    wound = {"onset_date": "2026-01-01"}
    visits = [
        {"assessment_key": "a", "assessed_on": "2026-01-05", "length_cm": 4.0, "width_cm": 3.0, "depth_cm": 0.7},
        {"assessment_key": "b", "assessed_on": "2026-01-12", "length_cm": 3.45, "width_cm": 2.35, "depth_cm": 0.3},
    ]
    row = derive_history(wound, visits)[-1]
    assert row["area_cm2"] == 8.1075 and row["percent_area_reduction"] == pytest.approx(100 * (12 - 8.1075) / 12)
    shown = as_shown(row)
    names = ("area_cm2", "volume_cm3", "percent_area_reduction", "weekly_healing_rate_cm2")
    assert [shown[name] for name in names] == [8.1075, 2.432, 32.4, 3.89]  # the area as derived: its PUSH band's
    assert {k: v for k, v in shown.items() if k not in SHOWN_DECIMALS} == {
        k: v for k, v in row.items() if k not in SHOWN_DECIMALS
    }
