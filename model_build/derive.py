"""Auto-calculated assessment fields (contract: "Derived on every assessment") for one wound history.

Pure Python, no pandas/numpy: the inference Lambda imports it. The rules live here once;
`model_build.derive_table` applies them to whole tables, and a parity test holds the two paths identical.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from model_build.precision import PERCENT, RATE_CM2_PER_WEEK, VOLUME_CM3, rounded

# PUSH Tool 3.0 (NPUAP 1998) area bands as inclusive upper bounds in cm²; the score is the band index
# (bisect_left here, searchsorted side="left" in the table path). "<0.3" is strict, so its inclusive bound
# is the largest double below 0.3 and 0.3 itself scores 2. A value in a published gap (0.6–0.7, 1.0–1.1,
# …, 12.0–12.1) lies above the lower band's bound, so it goes to the next band: 0.65 → 3, 1.05 → 4.
PUSH_AREA_UPPER_BOUNDS = (0.0, math.nextafter(0.3, 0.0), 0.6, 1.0, 2.0, 3.0, 4.0, 8.0, 12.0, 24.0)
PUSH_EXUDATE_SCORES = {"none": 0, "light": 1, "moderate": 2, "heavy": 3}
PUSH_TISSUE_SCORES = {"closed": 0, "epithelial": 1, "granulation": 2, "slough": 3, "eschar": 4}
TISSUES_WORST_FIRST = ("eschar", "slough", "granulation", "epithelial")  # eschar is PUSH "necrotic tissue"

# Areas are rounded so that float products score by the area a clinician would read:
# 0.4 × 1.5 = 0.6000000000000001 in floating point, which is 0.6 cm² and band 2, not band 3.
AREA_DECIMALS = 6
BMI_DECIMALS = 1  # as BMI is reported clinically

DERIVED_FIELDS = (
    "area_cm2",
    "area_calculated",
    "volume_cm3",
    "bmi",
    "bmi_calculated",
    "wound_age_days",
    "days_since_first_assessment",
    "percent_area_reduction",
    "weekly_healing_rate_cm2",
    "push_area_score",
    "push_exudate_score",
    "push_tissue_score",
    "push_total",
    "dominant_tissue",
)


# The decimals the answer states derived fields to. BMI is rounded as it is derived; the area is stated as derived
# (length × width to AREA_DECIMALS), the figure its PUSH band and the area reduction are computed from.
SHOWN_DECIMALS = {
    "volume_cm3": VOLUME_CM3,
    "percent_area_reduction": PERCENT,
    "weekly_healing_rate_cm2": RATE_CM2_PER_WEEK,
}


def as_shown(row: Mapping[str, Any]) -> dict[str, Any]:
    """A derived row as the API states it; features are computed from the unrounded row."""
    shown = dict(row)
    for name, decimals in SHOWN_DECIMALS.items():
        shown[name] = rounded(row[name], decimals)
    return shown


def round_half_up(value: float, decimals: int) -> float:
    """Round with floor(x·10^d + ½)/10^d: the same IEEE steps in numpy give bit-identical results."""
    scale = 10.0**decimals
    return math.floor(value * scale + 0.5) / scale


def push_area_score(area_cm2: float | None) -> int | None:
    """PUSH 3.0 length × width sub-score, 0–10."""
    return None if area_cm2 is None else bisect.bisect_left(PUSH_AREA_UPPER_BOUNDS, area_cm2)


def push_exudate_score(exudate_amount: str | None) -> int | None:
    """PUSH 3.0 exudate amount sub-score, 0–3."""
    return PUSH_EXUDATE_SCORES.get(exudate_amount) if isinstance(exudate_amount, str) else None


def push_tissue_score(assessment: Mapping[str, Any]) -> int | None:
    """PUSH 3.0 tissue sub-score: closed 0; any eschar 4; else any slough 3; any granulation 2; else 1."""
    return _wound_bed(assessment, is_closed(assessment))[0]


def dominant_tissue(assessment: Mapping[str, Any]) -> str | None:
    """The tissue with the highest percentage, ties to the worse; 'closed' for a closed wound.

    A wound bed with no tissue recorded above 0 % is 'epithelial', as in the PUSH tissue rule.
    """
    return _wound_bed(assessment, is_closed(assessment))[1]


def is_closed(assessment: Mapping[str, Any]) -> bool:
    """Closed means length = width = 0 (contract)."""
    return _closed(_number(assessment.get("length_cm")), _number(assessment.get("width_cm")))


def _closed(length: float | None, width: float | None) -> bool:
    return length == 0 and width == 0


def derive_history(wound: Mapping[str, Any], assessments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every derived field for one wound's assessments, in date order (same-day ties keep input order).

    Input is as JSON gives it: contract field names, ISO date strings or dates, None for missing.
    """
    dated = sorted(((_assessed_on(a), a) for a in assessments), key=lambda pair: pair[0])
    onset = _date(wound.get("onset_date"))
    first: tuple[date, float | None] | None = None
    previous: tuple[date, float | None] | None = None
    rows = []
    for day, assessment in dated:
        given = _number(assessment.get("area_cm2"))
        length, width = _number(assessment.get("length_cm")), _number(assessment.get("width_cm"))
        area, area_calculated = _area(given, length, width)
        bmi, bmi_calculated = _bmi(assessment)
        depth = _number(assessment.get("depth_cm"))
        tissue_score, tissue = _wound_bed(assessment, _closed(length, width))
        scores = (push_area_score(area), push_exudate_score(assessment.get("exudate_amount")), tissue_score)
        first = first or (day, area)
        rows.append(
            {
                "assessment_key": assessment.get("assessment_key"),
                "area_cm2": area,
                "area_calculated": area_calculated,
                "volume_cm3": None if area is None or depth is None else area * depth,
                "bmi": bmi,
                "bmi_calculated": bmi_calculated,
                "wound_age_days": None if onset is None else (day - onset).days,
                "days_since_first_assessment": (day - first[0]).days,
                "percent_area_reduction": _percent_reduction(first[1], area),
                "weekly_healing_rate_cm2": None if previous is None else _weekly_rate(previous, (day, area)),
                "push_area_score": scores[0],
                "push_exudate_score": scores[1],
                "push_tissue_score": scores[2],
                "push_total": None if None in scores else sum(s for s in scores if s is not None),
                "dominant_tissue": tissue,
            }
        )
        previous = (day, area)
    return rows


def _area(given: float | None, length: float | None, width: float | None) -> tuple[float | None, bool]:
    if given is None and length is not None and width is not None:
        return round_half_up(length * width, AREA_DECIMALS), True
    return (None if given is None else round_half_up(given, AREA_DECIMALS)), False


def _bmi(assessment: Mapping[str, Any]) -> tuple[float | None, bool]:
    given = _number(assessment.get("bmi"))
    weight, height = _number(assessment.get("weight_kg")), _number(assessment.get("height_cm"))
    if given is not None or weight is None or height is None or not height > 0:
        return given, False
    metres = height / 100.0
    return round_half_up(weight / (metres * metres), BMI_DECIMALS), True


def _percent_reduction(first_area: float | None, area: float | None) -> float | None:
    if first_area is None or area is None or not first_area > 0:
        return None
    return 100.0 * (first_area - area) / first_area


def _weekly_rate(previous: tuple[date, float | None], current: tuple[date, float | None]) -> float | None:
    """cm² closed per week since the previous assessment (positive = shrinking)."""
    (previous_day, previous_area), (day, area) = previous, current
    gap_days = (day - previous_day).days
    if previous_area is None or area is None or gap_days <= 0:
        return None
    return (previous_area - area) * 7.0 / gap_days


def _wound_bed(assessment: Mapping[str, Any], closed: bool) -> tuple[int | None, str | None]:
    """(PUSH tissue sub-score, dominant tissue); (None, None) for an open wound without all four percentages."""
    if closed:
        return 0, "closed"
    pcts = [p for column in _TISSUE_COLUMNS if (p := _number(assessment.get(column))) is not None]  # worst first
    if len(pcts) < len(_TISSUE_COLUMNS):  # the tissue rules need all four
        return None, None
    worst = next((t for t, p in zip(TISSUES_WORST_FIRST, pcts, strict=True) if p > 0), "epithelial")
    top = max(pcts)
    dominant = "epithelial" if top == 0 else TISSUES_WORST_FIRST[pcts.index(top)]
    return PUSH_TISSUE_SCORES[worst], dominant


_TISSUE_COLUMNS = tuple(f"{t}_pct" for t in TISSUES_WORST_FIRST)


def _number(value: Any) -> float | None:
    """A present number as float; None and NaN are missing."""
    if value is None:
        return None
    number = float(value)
    return None if number != number else number  # NaN != NaN


def _date(value: Any) -> date | None:
    """A date from a date, a datetime or an ISO string; None when missing."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError("a date is not ISO YYYY-MM-DD") from None  # the value itself stays out: PHI


def _assessed_on(assessment: Mapping[str, Any]) -> date:
    day = _date(assessment.get("assessed_on"))
    if day is None:
        raise ValueError("assessed_on is missing on an assessment")
    return day
