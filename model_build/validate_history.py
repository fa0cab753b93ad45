"""Validate ONE wound history sent as JSON (the inference API's input) against the extract contract.

Pure Python, no pandas/numpy: the inference Lambda imports it. It applies the table validator's rules
(`model_build.validate`) with the same rule ids, fields and messages to one patient, one wound and its
assessments, and adds what only a JSON request can get wrong: its shape, unknown fields, JSON types, keys
that disagree, its size. A parity test holds the two validators to the same findings.
A request is {"patient": {...}, "wound": {...}, "assessments": [{...}, ...]} with contract field names;
null, an absent field and "" are all missing. Findings name the rule and the path, never a value (PHI).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from model_build.rules import (
    EARLIEST_DATE,
    ISO_DATE,
    LATEST_DATE,
    SafetyThresholds,
    column_message,
    latest_date_anywhere,
    row_messages,
)
from model_build.schema import (
    ASSESSMENTS,
    LOWER_EXTREMITY_LOCATIONS,
    PATIENTS,
    PI_STAGES_WITHOUT_DEPTH,
    TISSUE_PCT_COLUMNS,
    WOUNDS,
    Column,
    Table,
)

MAX_ASSESSMENTS = 500
SECTIONS = {"patient": PATIENTS, "wound": WOUNDS, "assessments": ASSESSMENTS}

Record = dict[str, Any]
History = tuple[Record, Record, list[Record]]  # patient, wound, assessments
_COLUMN_NAMES = {table.name: frozenset(table.column_names) for table in SECTIONS.values()}


@dataclass(frozen=True)
class Finding:
    """One broken rule: its id, where in the request (e.g. "assessments[2].length_cm"), the field, why."""

    rule: str
    path: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class HistoryCheck:
    """Errors (the request is rejected) and clinical-safety warnings (returned alongside the answer).

    `malformed`: the body is not a wound history at all (its shape is wrong; no row was checked), as opposed
    to a history whose content breaks the contract: the edge can tell a bad request from an unprocessable one.
    """

    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...] = ()
    malformed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": [f.as_dict() for f in self.errors],
            "warnings": [f.as_dict() for f in self.warnings],
        }


def validate_history(
    request: Mapping[str, Any],
    extract_date: dt.date | None = None,
    thresholds: SafetyThresholds = SafetyThresholds(),  # noqa: B008 (frozen, immutable)
) -> HistoryCheck:
    """Check one wound history; the extract date (for end_date, assessed_on) defaults to today in the time
    zone furthest ahead, as for tables."""
    return check_history(request, extract_date, thresholds)[0]


def check_history(
    request: Mapping[str, Any],
    extract_date: dt.date | None = None,
    thresholds: SafetyThresholds = SafetyThresholds(),  # noqa: B008 (frozen, immutable)
) -> tuple[HistoryCheck, History | None]:
    """`validate_history`'s check and, when it passes, `typed_history`'s result, from one parse of the request."""
    shape = _shape_errors(request)
    if shape:
        return HistoryCheck(tuple(shape), malformed=True), None
    extract_day = (extract_date or latest_date_anywhere()).isoformat()
    found = _Findings(len(request["assessments"]), _row_messages(thresholds))
    patient, wound, visits = _parse_sections(request, found)
    _key_rules(patient, wound, visits, found)
    _wound_rules(wound, extract_day, found)
    _assessment_rules(wound, visits, extract_day, thresholds, found)
    _wound_vs_assessments(wound, visits, found)
    check = HistoryCheck(found.all_errors(), found.kept_warnings())
    return check, (_typed(patient, wound, visits) if check.ok else None)


def typed_history(request: Mapping[str, Any]) -> History:
    """(patient, wound, assessments) typed as `derive_history` / `history_features` take them.

    ISO date strings, float/int/bool values, None for missing, an empty end_reason as "open" (contract) and
    each assessment's wound_key filled from the wound. Raises ValueError if the request's shape or any field's
    type or range is wrong: run `validate_history` first.
    """
    if _shape_errors(request):
        raise ValueError("the request is not a wound history; run validate_history for the reasons")
    found = _Findings(len(request["assessments"]), {})
    patient, wound, visits = _parse_sections(request, found)
    if found.all_errors():
        raise ValueError("the request breaks the contract; run validate_history for the reasons")
    return _typed(patient, wound, visits)


def _typed(patient: Record, wound: Record, visits: list[Record]) -> History:
    wound["end_reason"] = wound["end_reason"] or "open"
    return patient, wound, visits


_row_messages = lru_cache(maxsize=8)(row_messages)  # thresholds are frozen: one message table per setting


# --- findings ---------------------------------------------------------------------------------------------


class _Findings:
    """Findings per request row ("patient", "wound", "assessments[i]"), assembled in request order."""

    def __init__(self, n_assessments: int, messages: dict[tuple[str, str], str]) -> None:
        self.messages = messages
        self.visits = _VISIT_ROWS[:n_assessments]  # the assessments' row names, in request order
        self.rows = ["patient", "wound", *self.visits]
        self.errors: dict[str, list[Finding]] = {}  # by row, for the rows that have any
        self.warnings: dict[str, list[Finding]] = {}

    def error(self, row: str, rule: str, field: str, message: str | None = None) -> None:
        message = message or self.messages[(rule, field)]
        self.errors.setdefault(row, []).append(Finding(rule, f"{row}.{field}", field, message))

    def warn(self, row: str, rule: str, field: str) -> None:
        finding = Finding(rule, f"{row}.{field}", field, self.messages[(rule, field)])
        self.warnings.setdefault(row, []).append(finding)

    def clean(self, row: str) -> bool:
        return row not in self.errors

    def all_errors(self) -> tuple[Finding, ...]:
        if not self.errors:
            return ()
        return tuple(f for row in self.rows if row in self.errors for f in self.errors[row])

    def kept_warnings(self) -> tuple[Finding, ...]:
        """Warnings on rows without errors: a rejected row's warnings are moot (as in the table validator)."""
        if not self.warnings:
            return ()
        return tuple(f for row in self.rows if row in self.warnings and self.clean(row) for f in self.warnings[row])


def _visit(index: int) -> str:
    return f"assessments[{index}]"


_VISIT_ROWS = tuple(_visit(i) for i in range(MAX_ASSESSMENTS))


# --- shape and fields -------------------------------------------------------------------------------------


# What JSON objects and arrays may be: json.loads's dict and list first (an exact type is checked fastest),
# then any mapping or sequence a Python caller sends.
_OBJECT, _ARRAY = (dict, Mapping), (list, Sequence)


def _shape_errors(request: Any) -> list[Finding]:
    """What makes a body not a wound history at all; rows are checked only when there is none."""
    if not isinstance(request, _OBJECT):
        return [Finding("bad_type", "", "", "the request must be a JSON object")]
    found = [
        Finding("unknown_field", str(name), str(name), "the request holds only patient, wound and assessments")
        for name in request
        if name not in SECTIONS
    ]
    for name in SECTIONS:
        if request.get(name) is None:
            found.append(Finding("missing_required", name, name, f"{name} is required"))
    for name in ("patient", "wound"):
        if request.get(name) is not None and not isinstance(request[name], _OBJECT):
            found.append(Finding("bad_type", name, name, f"{name} must be a JSON object"))
    visits = request.get("assessments")
    if visits is None:
        return found
    if not isinstance(visits, _ARRAY) or isinstance(visits, (str, bytes)):
        found.append(Finding("bad_type", "assessments", "assessments", "assessments must be a JSON array"))
    elif not visits:
        found.append(Finding("empty_assessments", "assessments", "assessments", "assessments must not be empty"))
    elif len(visits) > MAX_ASSESSMENTS:
        message = f"at most {MAX_ASSESSMENTS} assessments per request"
        found.append(Finding("too_many_assessments", "assessments", "assessments", message))
    else:
        found += [
            Finding("bad_type", _visit(i), "assessments", "each assessment must be a JSON object")
            for i, visit in enumerate(visits)
            if not isinstance(visit, _OBJECT)
        ]
    return found


def _parse_sections(request: Mapping[str, Any], found: _Findings) -> tuple[Record, Record, list[Record]]:
    patient = _parse_record(request["patient"], PATIENTS, "patient", found)
    wound = _parse_record(request["wound"], WOUNDS, "wound", found)
    visits = [
        _parse_record(v, ASSESSMENTS, row, found) for row, v in zip(found.visits, request["assessments"], strict=True)
    ]
    for visit in visits:
        # An assessment may leave out its wound_key: the request holds one wound.
        visit["wound_key"] = visit["wound_key"] or wound["wound_key"]
    return patient, wound, visits


def _parse_record(record: Mapping[str, Any], table: Table, row: str, found: _Findings) -> Record:
    """Typed values of one request object (None where missing or broken), each broken field a finding."""
    known = _COLUMN_NAMES[table.name]
    if not known.issuperset(record):
        for name in record:
            if name not in known:
                found.error(row, "unknown_field", str(name), f"not a field of {table.name}")
    typed: Record = {}
    for name, column, required, plain, low, high, values in _FIELDS[table.name]:
        raw = record.get(name)
        if (raw is None and not required) or (
            type(raw) is plain and (raw in values if values is not None else low <= raw <= high)
        ):
            typed[name] = raw  # the common case: left out, or already its contract type and within its range
            continue
        value, rule = (None, None) if raw is None or raw == "" else _PARSERS[column.kind](raw, column)
        if value is None and rule is None and required:
            rule = "missing_required"
        if rule is not None:
            found.error(row, rule, name, column_message(rule, column))
        typed[name] = value
    return typed


def _parse_bool(value: Any, column: Column) -> tuple[bool | None, str | None]:
    return (value, None) if isinstance(value, bool) else (None, "bad_type")


def _parse_key(value: Any, column: Column) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, "bad_type"
    return value.strip() or None, None  # keys forgive surrounding spaces, as in the table validator


def _parse_enum(value: Any, column: Column) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, "bad_type"
    return (value, None) if value in column.values else (None, "bad_enum")


# re.ASCII: \d would match other scripts' digits, which date.fromisoformat rejects anyway.
_ISO_DATE = re.compile(ISO_DATE, re.ASCII)
_EARLIEST_DAY, _LATEST_DAY = EARLIEST_DATE.isoformat(), LATEST_DATE.isoformat()


def _parse_date(value: Any, column: Column) -> tuple[str | None, str | None]:
    """A real day within the tables' range, kept as its ISO string (YYYY-MM-DD strings order as their days)."""
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return None, "bad_type"
    try:
        dt.date.fromisoformat(value)  # no 2026-02-30
    except ValueError:
        return None, "bad_type"
    return (value, None) if _EARLIEST_DAY <= value <= _LATEST_DAY else (None, "bad_type")


# JSON numbers are ints and floats; true and false (bools) are not numbers, nor is a number sent as a string.
_JSON_NUMBERS = (int, float)


def _number_subclass(value: Any) -> bool:
    """An int or float of a subclass (numpy's float64, from a Python caller); a bool is no number."""
    return isinstance(value, _JSON_NUMBERS) and not isinstance(value, bool)


def _parse_float(value: Any, column: Column) -> tuple[float | None, str | None]:
    if type(value) not in _JSON_NUMBERS and not _number_subclass(value):
        return None, "bad_type"
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range, so beyond every column's
        return None, "out_of_range"
    if column.low <= number <= column.high:  # type: ignore[operator]
        return number, None
    # NaN is no number; infinity is one, out of every range (as in the table validator).
    return None, "bad_type" if math.isnan(number) else "out_of_range"


def _parse_int(value: Any, column: Column) -> tuple[int | None, str | None]:
    if type(value) not in _JSON_NUMBERS and not _number_subclass(value):
        return None, "bad_type"
    if isinstance(value, float) and not value.is_integer() and not math.isinf(value):
        return None, "bad_type"  # a fraction, or NaN; a whole float such as 2.0 is the int 2
    if column.low <= value <= column.high:
        return int(value), None
    return None, "out_of_range"


# A present JSON value (not null, not "") as its contract type, or the per-column rule it breaks; by column kind.
_PARSERS: dict[str, Callable[[Any, Column], tuple[Any, str | None]]] = {
    "bool": _parse_bool,
    "date": _parse_date,
    "int": _parse_int,
    "float": _parse_float,
    "key": _parse_key,
    "enum": _parse_enum,
}


def _plain(column: Column) -> tuple[type | None, Any, Any, frozenset[Any] | None]:
    """The exact type a valid value of the column is sent as and kept as is (None for keys, kept stripped, and
    dates, whose form needs checking), and its range (low, high) or its allowed values."""
    if column.kind == "bool":
        return bool, None, None, frozenset((False, True))
    if column.kind == "enum":
        return str, None, None, frozenset(column.values)
    if column.kind in ("int", "float"):
        return (int if column.kind == "int" else float), column.low, column.high, None
    return None, None, None, None


# Per section: each column's name, the column, whether the request must send it (an assessment may leave out
# its wound_key: the request holds one wound) and `_plain`'s type and range.
_FIELDS = {
    table.name: tuple(
        (c.name, c, c.required and not (table is ASSESSMENTS and c.name == "wound_key"), *_plain(c))
        for c in table.columns
    )
    for table in SECTIONS.values()
}


# --- rules across fields and rows -------------------------------------------------------------------------


def _key_rules(patient: Record, wound: Record, visits: list[Record], found: _Findings) -> None:
    """The request's keys agree (one patient, one wound) and assessment keys are unique within it."""
    if None not in (wound["patient_key"], patient["patient_key"]) and wound["patient_key"] != patient["patient_key"]:
        found.error("wound", "key_mismatch", "patient_key", "wound.patient_key must equal patient.patient_key")
    repeated = _repeated(v["assessment_key"] for v in visits)
    for row, visit in zip(found.visits, visits, strict=True):
        if None not in (visit["wound_key"], wound["wound_key"]) and visit["wound_key"] != wound["wound_key"]:
            found.error(row, "key_mismatch", "wound_key", "wound_key must equal wound.wound_key")
        if visit["assessment_key"] in repeated:
            found.error(row, "duplicate_key", "assessment_key")


def _wound_rules(wound: Record, extract_day: str, found: _Findings) -> None:
    """Fields required or not allowed by wound type, and the end date limit."""
    kind = wound["wound_type"]
    for field, wound_type in (("pi_stage", "pressure_injury"), ("wagner_grade", "diabetic_foot_ulcer")):
        if kind == wound_type and wound[field] is None:
            found.error("wound", "missing_required", field)
        if kind not in (None, wound_type) and wound[field] is not None:
            found.error("wound", "not_applicable", field)
    if wound["end_date"] is not None and wound["end_date"] > extract_day:
        found.error("wound", "end_after_extract_date", "end_date")


def _assessment_rules(
    wound: Record, visits: list[Record], extract_day: str, limits: SafetyThresholds, found: _Findings
) -> None:
    """Consistency and clinical-safety rules of each assessment, using its wound's fields and the extract date."""
    repeated = _repeated(v["assessed_on"] for v in visits)
    for row, visit in zip(found.visits, visits, strict=True):
        _one_assessment(row, visit, wound, limits, found)
        if visit["assessed_on"] in repeated:
            found.error(row, "duplicate_visit_day", "assessed_on")
        if visit["assessed_on"] is not None and visit["assessed_on"] > extract_day:
            found.warn(row, "assessed_after_extract_date", "assessed_on")
        if _closed(visit) and wound["wound_type"] is not None and not _healed_by(wound, visit["assessed_on"]):
            found.error(row, "closed_but_not_healed", "length_cm")
    _compression_rules(wound, visits, limits, found)
    for row, visit in zip(found.visits, visits, strict=True):
        if visit["npwt"] is True and visit["eschar_pct"] is not None and visit["eschar_pct"] > 0:
            found.warn(row, "npwt_with_eschar", "npwt")


def _one_assessment(row: str, a: Record, wound: Record, limits: SafetyThresholds, found: _Findings) -> None:
    """The rules that need only this assessment's fields and its wound's."""
    closed = _closed(a)
    if 0 in (a["length_cm"], a["width_cm"]) and not closed:
        found.error(row, "zero_dimension_open", "length_cm")
    if a["depth_cm"] is None and wound["wound_type"] is not None and wound["pi_stage"] not in PI_STAGES_WITHOUT_DEPTH:
        found.error(row, "missing_required", "depth_cm")
    area, length, width = a["area_cm2"], a["length_cm"], a["width_cm"]
    # The same expression, in the same float steps, as the table validator.
    if None not in (area, length, width) and area > length * width * (1 + limits.area_tolerance) + 1e-9:
        found.error(row, "area_exceeds_dimensions", "area_cm2")
    tissue = _tissue_pct(a)
    if None not in tissue and not closed:
        total = sum(tissue)
        if not limits.tissue_sum_low <= total <= limits.tissue_sum_high:
            found.error(row, "tissue_sum", "granulation_pct")
    if None not in (a["bmi"], a["weight_kg"], a["height_cm"]):
        metres = a["height_cm"] / 100
        if abs(a["bmi"] - a["weight_kg"] / (metres * metres)) > limits.bmi_tolerance:
            found.error(row, "bmi_mismatch", "bmi")


def _compression_rules(wound: Record, visits: list[Record], limits: SafetyThresholds, found: _Findings) -> None:
    """Compression against the wound's latest ankle-brachial index on record at that visit."""
    # Date order, undated visits last, ties in request order: the table validator's sort of one wound's rows.
    order = sorted(range(len(visits)), key=lambda i: _date_order(visits[i]["assessed_on"]))
    lower_limb = wound["location"] in LOWER_EXTREMITY_LOCATIONS
    latest = None
    for i in order:
        visit = visits[i]
        latest = visit["ankle_brachial_index"] if visit["ankle_brachial_index"] is not None else latest
        if visit["compression"] is not True:
            continue
        if latest is None:
            if lower_limb:
                found.warn(found.visits[i], "compression_without_abi", "compression")
        elif latest < limits.abi_contraindicated_below:
            found.error(found.visits[i], "compression_contraindicated", "compression")
        elif latest < limits.abi_reduced_below:
            found.warn(found.visits[i], "compression_reduced_abi", "compression")


def _wound_vs_assessments(wound: Record, visits: list[Record], found: _Findings) -> None:
    """Onset not after, and end not before, the first assessment (among assessments without errors)."""
    sound = [
        v["assessed_on"]
        for row, v in zip(found.visits, visits, strict=True)
        if v["assessed_on"] is not None and found.clean(row)
    ]
    if not sound:
        return
    first = min(sound)
    if wound["onset_date"] is not None and wound["onset_date"] > first:
        found.error("wound", "onset_after_first_assessment", "onset_date")
    if wound["end_date"] is not None and wound["end_date"] < first:
        found.error("wound", "end_before_first_assessment", "end_date")


def _date_order(day: str | None) -> tuple[bool, str]:
    return day is None, day or ""


def _repeated(values: Iterable[Any]) -> set[Any]:
    """The values other than None that occur more than once."""
    seen: set[Any] = set()
    repeated: set[Any] = set()
    for value in values:
        if value in seen:
            repeated.add(value)
        seen.add(value)
    repeated.discard(None)
    return repeated


_tissue_pct = itemgetter(*TISSUE_PCT_COLUMNS)


def _closed(visit: Record) -> bool:
    return visit["length_cm"] == 0 and visit["width_cm"] == 0


def _healed_by(wound: Record, day: str | None) -> bool:
    """Healed on or before `day`; a healed wound with no end date (or a visit with no date) counts as healed."""
    if wound["end_reason"] != "healed":
        return False
    return wound["end_date"] is None or day is None or not wound["end_date"] > day
