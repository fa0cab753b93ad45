"""The ONE feature specification of the healing-time model (landmark design), and its per-history path.

One row per assessment ("landmark"): its features use only what was known at that visit — the patient, the
wound, this visit's measurements and derived fields, change since the first and previous visits, labs carried
forward from earlier visits, and the treatment plan in force from this visit on. Training builds the same rows
for whole tables in `model_build.features_table`; a parity test holds the two paths identical.

Pure Python, no pandas/numpy: the inference Lambda imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from model_build.derive import derive_history
from model_build.schema import COMORBIDITIES, INTERVENTIONS, MEDICATIONS

Kind = Literal["numeric", "categorical"]
# How a feature's value is taken from the visit record (patient + wound + assessment + derived fields):
#   "value": this visit's value; "carried": the latest non-missing value on record up to this visit
#   (labs are not measured at every visit); "first": the value at the wound's first assessment.
Rule = Literal["value", "carried", "first"]


@dataclass(frozen=True)
class Feature:
    """One model input: its name, its type, the record field it comes from and how."""

    name: str
    kind: Kind
    source: str
    rule: Rule = "value"


def _numeric(*names: str) -> tuple[Feature, ...]:
    return tuple(Feature(n, "numeric", n) for n in names)


def _categorical(*names: str) -> tuple[Feature, ...]:
    return tuple(Feature(n, "categorical", n) for n in names)


PATIENT_FEATURES = (
    *_numeric("age_years", *COMORBIDITIES, *MEDICATIONS),
    *_categorical("sex", "care_setting", "mobility"),
)
WOUND_FEATURES = (*_categorical("wound_type", "location", "pi_stage"), *_numeric("wagner_grade"))
VISIT_FEATURES = (
    *_numeric(
        "length_cm",
        "width_cm",
        "depth_cm",
        "undermining_cm",
        "tunneling_cm",
        "granulation_pct",
        "slough_pct",
        "eschar_pct",
        "epithelial_pct",
        "odor",
        "infection",
        "pain_score",
    ),
    *_categorical("exudate_amount", "exudate_type", "periwound"),
    Feature("bmi", "numeric", "bmi", "carried"),
    Feature("hba1c_pct", "numeric", "hba1c_pct", "carried"),
    Feature("albumin_g_dl", "numeric", "albumin_g_dl", "carried"),
    Feature("ankle_brachial_index", "numeric", "ankle_brachial_index", "carried"),
)
DERIVED_FEATURES = (
    *_numeric(
        "area_cm2",
        "volume_cm3",
        "wound_age_days",
        "days_since_first_assessment",
        "percent_area_reduction",
        "weekly_healing_rate_cm2",
        "push_area_score",
        "push_exudate_score",
        "push_tissue_score",
        "push_total",
    ),
    *_categorical("dominant_tissue"),
    Feature("first_area_cm2", "numeric", "area_cm2", "first"),
)
# The plan in force from this visit on; the recommender substitutes candidate plans here.
TREATMENT_FEATURES = (
    *_categorical("primary_dressing", "debridement"),
    *_numeric("dressing_changes_per_week", *INTERVENTIONS),
)
FEATURES: tuple[Feature, ...] = (
    *PATIENT_FEATURES,
    *WOUND_FEATURES,
    *VISIT_FEATURES,
    *DERIVED_FEATURES,
    *TREATMENT_FEATURES,
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
CATEGORICAL_FEATURES = tuple(f.name for f in FEATURES if f.kind == "categorical")
TREATMENT_FEATURE_NAMES = tuple(f.name for f in TREATMENT_FEATURES)


def history_features(
    patient: Mapping[str, Any],
    wound: Mapping[str, Any],
    assessments: Sequence[Mapping[str, Any]],
    derived: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Feature values of every visit of one wound, in date order, as the model sees them at that visit.

    Numerics are floats (booleans 1.0/0.0) or None; categoricals are strings or None. `derived` is
    `derive_history(wound, assessments)` when the caller has it already.
    """
    by_key = {a.get("assessment_key"): a for a in assessments}
    background = {**patient, **wound}
    # patient or wound fields a visit feature falls back on when the visit lacks its source: usually none
    visit_background = {s: background[s] for s in _VISIT_SOURCES.intersection(background)}
    background_row: dict[str, Any] = {}
    _fill(background_row, background, _BACKGROUND_SPEC)
    rows: list[dict[str, Any]] = []
    carried: dict[str, Any] = {}
    first: dict[str, Any] = {}
    for fields in derived if derived is not None else derive_history(wound, assessments):
        assessment = by_key[fields["assessment_key"]]
        row = dict(background_row)
        if not (_BACKGROUND_SOURCES.isdisjoint(assessment) and _BACKGROUND_SOURCES.isdisjoint(fields)):
            # a visit's field of the same name overrides the patient's or wound's
            _fill(row, {**background, **assessment, **fields}, _BACKGROUND_SPEC)
        _fill(row, {**visit_background, **assessment, **fields}, _VISIT_SPEC)
        for name, source in _CARRIED:
            value = row[name]
            row[name] = carried[source] = value if value is not None else carried.get(source)
        for name, source in _FIRST:
            row[name] = first.setdefault(source, row[name])
        rows.append(row)
    return rows


def _fill(row: dict[str, Any], record: Mapping[str, Any], spec: tuple[tuple[str, str, type], ...]) -> None:
    """Each feature of `spec` from `record` into `row`: a float or a string, or None when missing, NaN or ""."""
    for name, source, typed in spec:
        value = record.get(source)
        row[name] = None if value is None or value != value or value == "" else typed(value)  # value != value: NaN


def _spec(features: Sequence[Feature]) -> tuple[tuple[str, str, type], ...]:
    return tuple((f.name, f.source, str if f.kind == "categorical" else float) for f in features)


# The feature loop runs per visit per request in serving: its specification unpacked once. Patient and wound
# features are the same at every visit: they are computed once per history.
_BACKGROUND_FEATURES = (*PATIENT_FEATURES, *WOUND_FEATURES)
_BACKGROUND_SOURCES = frozenset(f.source for f in _BACKGROUND_FEATURES)
_BACKGROUND_SPEC = _spec(_BACKGROUND_FEATURES)
_VISIT_FEATURES = [f for f in FEATURES if f not in _BACKGROUND_FEATURES]
_VISIT_SOURCES = frozenset(f.source for f in _VISIT_FEATURES)
_VISIT_SPEC = _spec(_VISIT_FEATURES)
_CARRIED = tuple((f.name, f.source) for f in FEATURES if f.rule == "carried")
_FIRST = tuple((f.name, f.source) for f in FEATURES if f.rule == "first")
