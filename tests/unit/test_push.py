"""PUSH Tool 3.0 scoring against the published bands (NPUAP 1998; contract "Derived on every assessment")."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_build.derive import (
    derive_history,
    dominant_tissue,
    push_area_score,
    push_exudate_score,
    push_tissue_score,
)
from model_build.derive_table import derive_assessments
from model_build.schema import TISSUE_PCT_COLUMNS as TISSUE_PCTS

# (area cm², score): every published band edge, a value inside each band, and a value in every published gap.
AREA_BANDS = [
    (0.0, 0),
    (0.01, 1), (0.29, 1), (0.2999, 1),
    (0.3, 2), (0.45, 2), (0.6, 2),
    (0.65, 3), (0.7, 3), (1.0, 3),
    (1.05, 4), (1.1, 4), (2.0, 4),
    (2.05, 5), (2.1, 5), (3.0, 5),
    (3.05, 6), (3.1, 6), (4.0, 6),
    (4.05, 7), (4.1, 7), (8.0, 7),
    (8.05, 8), (8.1, 8), (12.0, 8),
    (12.05, 9), (12.1, 9), (24.0, 9),
    (24.05, 10), (24.1, 10), (3600.0, 10),
]  # fmt: skip

OPEN_BED = {"length_cm": 2.0, "width_cm": 1.0}


def _assessment(day: int, **fields: object) -> dict[str, object]:
    return {"assessment_key": f"a{day}", "assessed_on": f"2026-01-{day:02d}", "exudate_amount": "light",
            "granulation_pct": 100.0, "slough_pct": 0.0, "eschar_pct": 0.0, "epithelial_pct": 0.0,
            **OPEN_BED, **fields}  # fmt: skip


def _table(assessments: list[dict[str, object]]) -> pd.DataFrame:
    """The typed frame validation would produce for one wound 'w' holding these assessments."""
    frame = pd.DataFrame(assessments).assign(wound_key="w")
    frame["assessed_on"] = pd.to_datetime(frame["assessed_on"])
    for column in ("length_cm", "width_cm", "area_cm2", "depth_cm", "bmi", "weight_kg", "height_cm", *TISSUE_PCTS):
        frame[column] = frame.get(column, pd.Series(float("nan"), index=frame.index)).astype("float64")
    return frame


WOUND = pd.DataFrame({"wound_key": ["w"], "onset_date": pd.to_datetime([None])})


@pytest.mark.parametrize(("area", "score"), AREA_BANDS)
def test_area_score_follows_the_published_band_at_every_edge_and_gap(area, score):
    # Given an area on a band edge, inside a band or in a published gap
    # When it is scored
    # Then it gets the published band, a gap value going to the next band
    assert push_area_score(area) == score


def test_both_paths_score_every_band_edge_and_gap_alike():
    # Given one assessment per probe area, each with the area given
    assessments = [_assessment(i + 1, area_cm2=area) for i, (area, _) in enumerate(AREA_BANDS)]
    expected = [score for _, score in AREA_BANDS]
    # When both the per-history and the vectorised paths score them
    history = derive_history({"onset_date": None}, assessments)
    table = derive_assessments(_table(assessments), WOUND)
    # Then both give the published band for every probe
    assert [row["push_area_score"] for row in history] == expected
    assert table["push_area_score"].tolist() == expected


@pytest.mark.parametrize(("length", "width", "score"), [(0.4, 1.5, 2), (3.0, 0.2, 2), (0.1, 3.0, 2), (2.0, 0.5, 3)])
def test_calculated_area_scores_as_the_measured_product_not_its_float_noise(length, width, score):
    # Given length × width whose float product misses the band edge (0.4 × 1.5 = 0.6000000000000001)
    assessments = [_assessment(1, length_cm=length, width_cm=width)]
    # When the area is calculated and scored by both paths
    history = derive_history({}, assessments)[0]
    table = derive_assessments(_table(assessments), WOUND).iloc[0]
    # Then the area is the clinical product and lands in that product's band
    assert history["area_cm2"] == table["area_cm2"] == round(length * width, 6)
    assert history["push_area_score"] == table["push_area_score"] == score


@pytest.mark.parametrize(
    ("amount", "score"),
    [("none", 0), ("light", 1), ("moderate", 2), ("heavy", 3), (None, None), ("copious", None)],
)
def test_exudate_score_maps_none_to_heavy_onto_0_to_3_and_unknown_to_missing(amount, score):
    assert push_exudate_score(amount) == score


TISSUE_CASES = [
    # (length, width, granulation, slough, eschar, epithelial) -> (score, dominant)
    ((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0, "closed")),
    ((0.0, 0.0, 0.0, 0.0, 0.0, 100.0), (0, "closed")),
    ((2.0, 1.0, 90.0, 9.0, 1.0, 0.0), (4, "granulation")),
    ((2.0, 1.0, 0.0, 0.0, 100.0, 0.0), (4, "eschar")),
    ((2.0, 1.0, 60.0, 40.0, 0.0, 0.0), (3, "granulation")),
    ((2.0, 1.0, 50.0, 50.0, 0.0, 0.0), (3, "slough")),
    ((2.0, 1.0, 0.0, 50.0, 50.0, 0.0), (4, "eschar")),
    ((2.0, 1.0, 30.0, 0.0, 0.0, 70.0), (2, "epithelial")),
    ((2.0, 1.0, 50.0, 0.0, 0.0, 50.0), (2, "granulation")),
    ((2.0, 1.0, 0.0, 0.0, 0.0, 100.0), (1, "epithelial")),
    ((2.0, 1.0, 0.0, 0.0, 0.0, 0.0), (1, "epithelial")),
    ((2.0, 1.0, 100.0, None, 0.0, 0.0), (None, None)),
    ((0.0, 0.0, None, None, None, None), (0, "closed")),
]


@pytest.mark.parametrize(("tissue", "expected"), TISSUE_CASES)
def test_tissue_score_takes_the_worst_tissue_present_and_dominant_the_largest_share(tissue, expected):
    # Given a wound bed (closed when length = width = 0)
    length, width, granulation, slough, eschar, epithelial = tissue
    assessment = _assessment(1, length_cm=length, width_cm=width, granulation_pct=granulation,
                             slough_pct=slough, eschar_pct=eschar, epithelial_pct=epithelial)  # fmt: skip
    # When it is scored by both paths
    history = derive_history({}, [assessment])[0]
    table = derive_assessments(_table([assessment]), WOUND).iloc[0]
    # Then any eschar scores 4, else slough 3, else granulation 2, else 1, closed 0; dominant ties go worse
    assert (push_tissue_score(assessment), dominant_tissue(assessment)) == expected
    assert (history["push_tissue_score"], history["dominant_tissue"]) == expected
    table_values = tuple(None if pd.isna(v) else v for v in (table["push_tissue_score"], table["dominant_tissue"]))
    assert table_values == expected


def test_healed_wound_scores_zero_and_the_worst_wound_scores_seventeen():
    # Given a closed wound without exudate, and a > 24 cm² wound with heavy exudate and eschar
    healed = _assessment(1, length_cm=0.0, width_cm=0.0, exudate_amount="none",
                         granulation_pct=0.0, epithelial_pct=0.0)  # fmt: skip
    worst = _assessment(2, length_cm=10.0, width_cm=5.0, exudate_amount="heavy", granulation_pct=0.0,
                        eschar_pct=100.0)  # fmt: skip
    # When they are scored
    rows = derive_history({}, [healed, worst])
    # Then PUSH is 0 for the healed wound and 10 + 3 + 4 = 17 for the worst
    assert [r["push_total"] for r in rows] == [0, 17]
    assert [(r["push_area_score"], r["push_exudate_score"], r["push_tissue_score"]) for r in rows[1:]] == [(10, 3, 4)]


def test_total_is_missing_when_any_sub_score_is_missing():
    # Given a 2 cm² wound once without exudate amount and once without its slough percentage
    assessments = [_assessment(1, exudate_amount=None), _assessment(2, slough_pct=None)]
    # When both paths score them
    history = derive_history({}, assessments)
    table = derive_assessments(_table(assessments), WOUND)
    # Then the total is missing, while the known sub-scores are still given
    assert [r["push_total"] for r in history] == [None, None]
    assert table["push_total"].isna().tolist() == [True, True]
    assert [(r["push_area_score"], r["push_exudate_score"], r["push_tissue_score"]) for r in history] == [
        (4, None, 2),
        (4, 1, None),
    ]
    assert table["push_area_score"].tolist() == [4, 4]


percent = st.floats(0, 100, allow_nan=False) | st.sampled_from([0.0, 50.0])


@settings(max_examples=200, deadline=None)
@given(
    length=st.floats(0, 60, allow_nan=False) | st.just(0.0),
    width=st.floats(0, 60, allow_nan=False) | st.just(0.0),
    exudate=st.sampled_from(["none", "light", "moderate", "heavy"]),
    tissue=st.tuples(percent, percent, percent, percent),
)
def test_total_is_the_sum_of_the_three_sub_scores_and_within_0_to_17(length, width, exudate, tissue):
    # Given any complete, in-range assessment
    granulation, slough, eschar, epithelial = tissue
    assessment = _assessment(1, length_cm=length, width_cm=width, exudate_amount=exudate,
                             granulation_pct=granulation, slough_pct=slough, eschar_pct=eschar,
                             epithelial_pct=epithelial)  # fmt: skip
    # When it is scored
    row = derive_history({}, [assessment])[0]
    # Then every sub-score is in its range and the total is their sum, 0–17
    assert 0 <= row["push_area_score"] <= 10
    assert 0 <= row["push_exudate_score"] <= 3
    assert 0 <= row["push_tissue_score"] <= 4
    assert row["push_total"] == row["push_area_score"] + row["push_exudate_score"] + row["push_tissue_score"]
    assert 0 <= row["push_total"] <= 17
