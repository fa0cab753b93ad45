"""Auto-calculated assessment fields for whole tables: the vectorised twin of `model_build.derive`.

Rules, bounds and rounding come from `derive`; each step repeats its IEEE operations in the same order,
so both paths give identical numbers (tests/unit/test_derive.py proves it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model_build.derive import (
    AREA_DECIMALS,
    BMI_DECIMALS,
    PUSH_AREA_UPPER_BOUNDS,
    PUSH_EXUDATE_SCORES,
    PUSH_TISSUE_SCORES,
    TISSUES_WORST_FIRST,
)

_AREA_BOUNDS = np.asarray(PUSH_AREA_UPPER_BOUNDS, dtype=np.float64)
_TISSUE_NAMES = np.asarray(TISSUES_WORST_FIRST, dtype=object)
_TISSUE_SCORES = np.asarray([PUSH_TISSUE_SCORES[t] for t in TISSUES_WORST_FIRST], dtype=np.float64)


def derive_assessments(assessments: pd.DataFrame, wounds: pd.DataFrame) -> pd.DataFrame:
    """A copy of the typed assessments (row order and index kept) with every derived field as a column."""
    out = assessments.copy()
    area, area_calculated = _area(assessments)
    bmi, bmi_calculated = _bmi(assessments)
    out["area_cm2"] = area
    out["area_calculated"] = pd.array(area_calculated, dtype="boolean")
    out["volume_cm3"] = area * _floats(assessments, "depth_cm")
    out["bmi"] = bmi
    out["bmi_calculated"] = pd.array(bmi_calculated, dtype="boolean")
    for name, values in _history_fields(assessments, wounds, area).items():
        out[name] = values
    tissue = _tissue_pcts(assessments)
    scores = {
        "push_area_score": _push_area_score(area),
        "push_exudate_score": _floats(assessments["exudate_amount"].map(PUSH_EXUDATE_SCORES)),
        "push_tissue_score": _push_tissue_score(*tissue),
    }
    for name, score in {**scores, "push_total": np.sum(list(scores.values()), axis=0)}.items():
        out[name] = _int64(score)
    out["dominant_tissue"] = _dominant_tissue(*tissue)
    return out


def _history_fields(
    assessments: pd.DataFrame, wounds: pd.DataFrame, area: np.ndarray
) -> dict[str, np.ndarray | pd.arrays.IntegerArray]:
    """Fields that look along each wound's history, computed on rows sorted by (wound, date)."""
    day = _days(assessments["assessed_on"])
    if np.isnan(day).any():
        raise ValueError("assessed_on is missing on some assessments")
    wound = pd.factorize(assessments["wound_key"])[0]
    order = np.lexsort((day, wound))  # stable: same-day ties keep row order, as in derive_history
    wound, day_s, area_s = wound[order], day[order], area[order]

    n = len(order)
    starts = np.ones(n, dtype=bool)
    starts[1:] = wound[1:] != wound[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))  # each row's first row in its wound
    previous_day, previous_area = np.full(n, np.nan), np.full(n, np.nan)
    previous_day[1:], previous_area[1:] = day_s[:-1], area_s[:-1]
    previous_day[starts] = previous_area[starts] = np.nan
    gap = day_s - previous_day
    first_area = area_s[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(first_area > 0, 100.0 * (first_area - area_s) / first_area, np.nan)
        rate = np.where(gap > 0, (previous_area - area_s) * 7.0 / gap, np.nan)

    return {
        "wound_age_days": _int64(day - _onset_days(assessments, wounds)),
        "days_since_first_assessment": _int64(_unsort(day_s - day_s[first], order)),
        "percent_area_reduction": _unsort(reduction, order),
        "weekly_healing_rate_cm2": _unsort(rate, order),
    }


def _onset_days(assessments: pd.DataFrame, wounds: pd.DataFrame) -> np.ndarray:
    keys = pd.Index(wounds["wound_key"])
    if not keys.is_unique:
        raise ValueError("wound_key is not unique in wounds")
    # A trailing NaN makes position -1 (wound not found) read as a missing onset.
    onset = np.append(_days(wounds["onset_date"]), np.nan)
    return onset[keys.get_indexer(assessments["wound_key"])]


def _area(assessments: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    given = _floats(assessments, "area_cm2")
    product = _floats(assessments, "length_cm") * _floats(assessments, "width_cm")
    calculated = np.isnan(given) & ~np.isnan(product)
    return _round_half_up(np.where(calculated, product, given), AREA_DECIMALS), calculated


def _bmi(assessments: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    given = _floats(assessments, "bmi")
    weight, height = _floats(assessments, "weight_kg"), _floats(assessments, "height_cm")
    calculated = np.isnan(given) & ~np.isnan(weight) & (height > 0)
    metres = height / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        bmi = _round_half_up(weight / (metres * metres), BMI_DECIMALS)
    return np.where(calculated, bmi, given), calculated


def _push_area_score(area: np.ndarray) -> np.ndarray:
    score = np.searchsorted(_AREA_BOUNDS, area, side="left").astype(np.float64)
    score[np.isnan(area)] = np.nan
    return score


def _tissue_pcts(assessments: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tissue percentages (columns worst first), rows with all four known, and closed rows."""
    pcts = np.column_stack([_floats(assessments, f"{t}_pct") for t in TISSUES_WORST_FIRST])
    known = ~np.isnan(pcts).any(axis=1)
    closed = (_floats(assessments, "length_cm") == 0) & (_floats(assessments, "width_cm") == 0)
    return pcts, known, closed


def _push_tissue_score(pcts: np.ndarray, known: np.ndarray, closed: np.ndarray) -> np.ndarray:
    present = pcts[:, :-1] > 0  # eschar, slough, granulation; none of them present means epithelial
    worst = np.where(present.any(axis=1), present.argmax(axis=1), len(TISSUES_WORST_FIRST) - 1)
    score = np.where(known, _TISSUE_SCORES[worst], np.nan)
    return np.where(closed, float(PUSH_TISSUE_SCORES["closed"]), score)


def _dominant_tissue(pcts: np.ndarray, known: np.ndarray, closed: np.ndarray) -> np.ndarray:
    filled = np.where(known[:, None], pcts, 0.0)
    dominant = _TISSUE_NAMES[filled.argmax(axis=1)]  # argmax takes the first maximum: ties go to the worse
    dominant[filled.max(axis=1, initial=0.0) == 0] = "epithelial"
    dominant[~known] = None
    dominant[closed] = "closed"
    return dominant


def _round_half_up(values: np.ndarray, decimals: int) -> np.ndarray:
    scale = 10.0**decimals
    return np.floor(values * scale + 0.5) / scale


def _floats(frame: pd.DataFrame | pd.Series, column: str | None = None) -> np.ndarray:
    values = frame[column] if column is not None else frame
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _days(dates: pd.Series) -> np.ndarray:
    """Dates as float days since the epoch (NaN when missing); whole days, as date arithmetic gives."""
    as_days = dates.to_numpy(dtype="datetime64[D]")
    return np.where(np.isnat(as_days), np.nan, as_days.astype(np.int64).astype(np.float64))


def _unsort(sorted_values: np.ndarray, order: np.ndarray) -> np.ndarray:
    values = np.empty_like(sorted_values)
    values[order] = sorted_values
    return values


def _int64(values: np.ndarray) -> pd.arrays.IntegerArray:
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)
