"""Pure-Python pieces of the contract rules that the table and the one-history validators share.

The table validator (`model_build.validate`, pandas) and the JSON validator (`model_build.validate_history`,
pure Python for the inference Lambda) apply the same rules with the same ids, fields and messages; what they
must agree on lives here. Messages name the rule and the field, never a value (PHI).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from model_build.schema import Column

ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
# The dates a table can hold (pandas datetime64[ns] spans 1677-09-21 00:12 to 2262-04-11 23:47): the table
# validator cannot parse others, so the JSON validator rejects them too and serving sees what training sees.
EARLIEST_DATE, LATEST_DATE = dt.date(1677, 9, 22), dt.date(2262, 4, 11)


def latest_date_anywhere(now: dt.datetime | None = None) -> dt.date:
    """Today (at `now`, default the clock's) in the time zone furthest ahead, UTC+14: the default extract date, so
    a clinic ahead of the server's clock (Guam is UTC+10) is never told that its own today lies in the future."""
    return ((now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC) + dt.timedelta(hours=14)).date()


_TYPE_WORDS = {
    "key": "a string",
    "enum": "a string",
    "bool": "true or false",
    "date": "a date YYYY-MM-DD",
    "int": "a whole number",
    "float": "a number",
}


@dataclass(frozen=True)
class SafetyThresholds:
    """Configurable limits of the contract's consistency and clinical-safety rules (guidelines vary)."""

    abi_contraindicated_below: float = 0.5  # compression contraindicated (error)
    abi_reduced_below: float = 0.8  # reduced compression under supervision (warning)
    area_tolerance: float = 0.05  # given area may exceed length x width by at most 5 %
    bmi_tolerance: float = 1.0  # given BMI must agree with weight/height within 1
    tissue_sum_low: float = 95.0
    tissue_sum_high: float = 105.0


def column_message(rule: str, column: Column) -> str:
    """The message of a per-column rule: missing_required, bad_enum, out_of_range or bad_type."""
    name = column.name
    if rule == "missing_required":
        return f"{name} is required"
    if rule == "bad_enum":
        return f"{name} must be one of: {', '.join(column.values)}"
    if rule == "out_of_range":
        return f"{name} must be between {column.low:g} and {column.high:g}"
    return f"{name} must be {_TYPE_WORDS[column.kind]}"


def row_messages(limits: SafetyThresholds) -> dict[tuple[str, str], str]:
    """The message of every rule that spans fields or rows, by (rule, field), with the limits in force."""
    return {
        ("duplicate_key", "assessment_key"): "assessment_key is not unique",
        ("missing_required", "pi_stage"): "pi_stage is required for a pressure_injury",
        ("not_applicable", "pi_stage"): "pi_stage is only allowed for a pressure_injury",
        ("missing_required", "wagner_grade"): "wagner_grade is required for a diabetic_foot_ulcer",
        ("not_applicable", "wagner_grade"): "wagner_grade is only allowed for a diabetic_foot_ulcer",
        ("end_after_extract_date", "end_date"): "end_date must not be after the extract date",
        ("onset_after_first_assessment", "onset_date"): "onset_date must not be after the first assessment",
        ("end_before_first_assessment", "end_date"): "end_date must not be before the first assessment",
        ("zero_dimension_open", "length_cm"): "length_cm and width_cm may be 0 only together, for a closed wound",
        ("missing_required", "depth_cm"): "depth_cm is required unless pi_stage is 1, deep_tissue or unstageable",
        ("area_exceeds_dimensions", "area_cm2"): (
            f"area_cm2 must not exceed length x width by more than {limits.area_tolerance:.0%}"
        ),
        ("tissue_sum", "granulation_pct"): (
            f"tissue percentages must add up to {limits.tissue_sum_low:g}-{limits.tissue_sum_high:g}"
        ),
        ("bmi_mismatch", "bmi"): f"bmi must agree with weight_kg and height_cm within {limits.bmi_tolerance:g}",
        ("duplicate_visit_day", "assessed_on"): "a wound has two assessments on one day",
        ("assessed_after_extract_date", "assessed_on"): (
            "assessed_on is after the extract date (likely a data-entry error)"
        ),
        ("closed_but_not_healed", "length_cm"): (
            "a closed wound (length = width = 0) whose wound is not healed on that date"
        ),
        ("compression_contraindicated", "compression"): (
            f"compression with ankle_brachial_index below {limits.abi_contraindicated_below:g}"
        ),
        ("compression_without_abi", "compression"): (
            "compression on a lower-extremity wound with no ankle_brachial_index on record"
        ),
        ("compression_reduced_abi", "compression"): (
            f"compression with ankle_brachial_index below {limits.abi_reduced_below:g} (reduced compression)"
        ),
        ("npwt_with_eschar", "npwt"): "NPWT with necrotic eschar present (listed contraindication)",
    }
