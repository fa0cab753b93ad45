"""One wound history as JSON: the table validator's rules for one request, the JSON-only rules, the lean import."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from collections import defaultdict

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validate_properties import cell_values
from woundcare_testing import tiny_extract_rows, wound_history

import model_build.validate_history as validate_history_module
from model_build.extract import RawTable
from model_build.features import history_features
from model_build.rules import latest_date_anywhere
from model_build.schema import ASSESSMENTS, TABLE_ORDER, TABLES, Table
from model_build.validate import validate_tables
from model_build.validate_history import (
    MAX_ASSESSMENTS,
    SafetyThresholds,
    check_history,
    typed_history,
    validate_history,
)

EXTRACT_DATE = dt.date(2026, 3, 1)
_MISSING = object()
CASCADE = {"orphan", "parent_quarantined"}
ASSESSED_ON = ASSESSMENTS.column("assessed_on")  # reasons of a row's parent, not of the row: a request has none


# --- the tiny extract as an EHR would send it -------------------------------------------------------------


def _raw_tables(rows: dict[str, list[dict[str, str]]]) -> dict[str, RawTable]:
    """Text rows as `read_extract` gives them to the table validator."""
    return {
        name: RawTable(name, f"{name}.csv", pd.DataFrame(rows[name], dtype=str)[list(TABLES[name].column_names)], [])
        for name in TABLE_ORDER
    }


def _json_records(text: pd.DataFrame, table: Table, nulls: bool = False) -> list[dict]:
    """Text cells as JSON values: typed where the cell parses for its column kind (the table validator's parse),
    else the raw string; an empty cell is left out, or sent as null when `nulls`."""
    columns = {}
    for column in table.columns:
        cells = text[column.name].astype(str)
        if column.kind == "key":
            cells = cells.str.strip()
        values: list = list(cells)
        if column.kind == "bool":
            booleans = {"true": True, "1": True, "false": False, "0": False}
            values = [booleans.get(c.lower(), c) for c in cells]
        elif column.kind in ("int", "float"):
            numbers = pd.to_numeric(cells.where(cells != "", None), errors="coerce").astype(float)
            values = [c if math.isnan(n) else _json_number(n, column.kind) for n, c in zip(numbers, cells, strict=True)]
        columns[column.name] = [_MISSING if c == "" else v for c, v in zip(cells, values, strict=True)]
    records = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    return [{k: None if v is _MISSING else v for k, v in r.items() if nulls or v is not _MISSING} for r in records]


def _json_number(number: float, kind: str) -> int | float:
    return int(number) if kind == "int" and number.is_integer() else number


def _request(rows: dict[str, list[dict[str, str]]], wound_key: str, nulls: bool = False) -> dict:
    raw = _raw_tables(rows)
    patients, wounds, visits = (_json_records(raw[n].frame, TABLES[n], nulls) for n in TABLE_ORDER)
    wound = next(w for w in wounds if w.get("wound_key") == wound_key)
    patient = next(p for p in patients if p.get("patient_key") == wound["patient_key"])
    return {"patient": patient, "wound": wound, "assessments": [a for a in visits if a.get("wound_key") == wound_key]}


def _found(check, row: str) -> set[tuple[str, str]]:
    return {(f.rule, f.field) for f in check.errors if f.path.startswith(f"{row}.")}


@pytest.fixture
def rows():
    return tiny_extract_rows()


# --- parity with the table validator ----------------------------------------------------------------------


def _assert_same_findings(rows: dict[str, list[dict[str, str]]], nulls: bool = False) -> int:
    """Validate the extract as tables and each comparable wound as a request; the findings per row must agree.

    Returns how many assessment rows were compared.
    """
    raw = _raw_tables(rows)
    errors, flags = _table_findings(validate_tables(raw, extract_date=EXTRACT_DATE))
    records = {n: _json_records(raw[n].frame, TABLES[n], nulls) for n in TABLE_ORDER}
    compared = 0
    for w, p, mine in _comparable_wounds(raw, errors):
        request = {
            "patient": records["patients"][p],
            "wound": records["wounds"][w],
            "assessments": [records["assessments"][j] for j in mine],
        }
        check = validate_history(request, extract_date=EXTRACT_DATE)
        if not mine:
            assert [f.rule for f in check.errors] == ["empty_assessments"]
            continue
        found, warned = _by_row(check.errors), _by_row(check.warnings)
        assert set(found) <= {"wound", *(f"assessments[{n}]" for n in range(len(mine)))}
        assert found["wound"] == errors.get(("wounds", w), set()), f"wound row {w}"
        for n, j in enumerate(mine):
            assert found[f"assessments[{n}]"] == errors.get(("assessments", j), set()), f"assessment row {j}"
            if ("assessments", j) not in errors:  # the table reports warnings of the rows it keeps only
                assert warned[f"assessments[{n}]"] == flags[("assessments", j)], f"assessment row {j}"
        compared += len(mine)
    return compared


def _table_findings(result) -> tuple[dict, defaultdict]:
    """(rule, field, message) sets by (table, row index) of every quarantined row (its own reasons: the cascade
    left out, so possibly none) and of every kept row with warnings."""
    errors, flags = {}, defaultdict(set)
    for q in result.quarantine.itertuples():
        errors[(q.table, q.row_number - 1)] = {
            (r["rule"], r["field"], r["message"]) for r in q.reasons if r["rule"] not in CASCADE
        }
    for w in result.warnings.itertuples():
        flags[(w.table, w.row_number - 1)].add((w.rule, w.field, w.message))
    return errors, flags


def _comparable_wounds(raw: dict[str, RawTable], errors: dict):
    """(wound row, patient row, assessment rows) of each wound a request can reproduce.

    That is a wound whose key is unique and whose one patient row is clean, and none of whose assessment keys
    is shared with another wound's assessment (a request holds one wound, so it cannot see that).
    """
    keys = {n: list(raw[n].frame[TABLES[n].key].astype(str).str.strip()) for n in TABLE_ORDER}
    owners = {n: list(raw[n].frame[TABLES[n].parent_key].astype(str).str.strip()) for n in ("wounds", "assessments")}
    for w, wound_key in enumerate(keys["wounds"]):
        patient_rows = [i for i, k in enumerate(keys["patients"]) if k == owners["wounds"][w]]
        if not wound_key or keys["wounds"].count(wound_key) > 1 or len(patient_rows) != 1:
            continue
        mine = [j for j, k in enumerate(owners["assessments"]) if k == wound_key]
        others = {k for j, k in enumerate(keys["assessments"]) if j not in mine}
        shared = any(keys["assessments"][j] in others for j in mine if keys["assessments"][j])
        if ("patients", patient_rows[0]) not in errors and not shared:
            yield w, patient_rows[0], mine


def _by_row(findings) -> defaultdict:
    rows = defaultdict(set)
    for f in findings:
        row = f.path.rsplit(".", 1)[0]
        assert f.path == f"{row}.{f.field}"
        rows[row].add((f.rule, f.field, f.message))
    return rows


def _contract_values(column) -> st.SearchStrategy[str]:
    """Cell text a plausible EHR might send for a column: valid, empty, edge and just-out-of-range values."""
    if column.kind == "enum":
        values = st.sampled_from(column.values)
    elif column.kind == "bool":
        values = st.sampled_from(["true", "false", "1", "0", "TRUE", "yes"])
    elif column.kind == "date":
        edges = st.sampled_from(["1677-09-21", "1677-09-22", "2262-04-11", "2262-04-12", "2026-03-01", "2026-03-02"])
        values = st.one_of(st.dates(dt.date(2025, 11, 1), dt.date(2026, 3, 10)).map(str), edges)
    elif column.kind == "key":
        values = st.sampled_from(["p1", "p2", "w1", "w2", "w3", "a1", "a4", " a5 "])
    else:
        edges = st.sampled_from([column.low, column.high, 0, 0.45, 0.5, 0.7, 0.8, 25.0, 95.0]).map(lambda v: f"{v:g}")
        values = st.one_of(edges, st.floats(column.low - 1, column.high + 1).map(lambda v: f"{v:.3g}"))
    return st.one_of(values, values, values, st.just(""))


# The fields that the rules across fields and rows read.
RULE_FIELDS = {
    "wounds": ("wound_type", "location", "pi_stage", "wagner_grade", "onset_date", "end_date", "end_reason"),
    "assessments": ("assessed_on", "length_cm", "width_cm", "depth_cm", "area_cm2", "granulation_pct",
                    "eschar_pct", "bmi", "ankle_brachial_index", "compression", "npwt"),
}  # fmt: skip


@st.composite
def corrupted_extracts(draw):
    """The tiny extract with visits added, the fields the rules read varied, cells corrupted and rows removed."""
    rows = tiny_extract_rows()
    for _ in range(draw(st.integers(0, 3))):  # extra visits: ABI histories, same-day clashes, duplicate keys
        visit = dict(draw(st.sampled_from(rows["assessments"])))
        visit["assessment_key"] = draw(st.sampled_from(["a7", "a8", "a9", visit["assessment_key"]]))
        visit["assessed_on"] = draw(st.one_of(st.just(visit["assessed_on"]), _contract_values(ASSESSED_ON)))
        rows["assessments"].append(visit)
    for table in ("wounds", "assessments"):  # each row's rule fields varied: a uniform pick would rarely combine
        for row in rows[table]:
            for name in draw(st.lists(st.sampled_from(RULE_FIELDS[table]), max_size=2)):
                row[name] = draw(_contract_values(TABLES[table].column(name)))
    for row in rows["assessments"]:  # the safety rules need combinations that a pick of one field rarely makes
        if draw(st.booleans()):
            row["compression"] = draw(st.sampled_from(["true", "false"]))
            row["ankle_brachial_index"] = draw(st.sampled_from(["", "0.45", "0.5", "0.7", "0.8", "0.9"]))
        if draw(st.integers(0, 2)) == 0:
            eschar = draw(st.sampled_from([0, 10]))
            row.update(npwt="true", granulation_pct=str(80 - eschar), slough_pct="20", eschar_pct=str(eschar))
    for _ in range(draw(st.integers(0, 6))):
        table = draw(st.sampled_from(["patients", "wounds", "assessments", "assessments"]))
        row = draw(st.sampled_from(rows[table]))
        row[draw(st.sampled_from(TABLES[table].column_names))] = draw(cell_values)
    for table in ("wounds", "assessments"):
        if len(rows[table]) > 1 and draw(st.integers(0, 5)) == 0:
            rows[table].pop(draw(st.integers(0, len(rows[table]) - 1)))
    return rows


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=corrupted_extracts(), nulls=st.booleans())
def test_for_any_corruption_both_validators_find_the_same_rules_per_row(rows, nulls):
    # Given a randomly corrupted extract, When each comparable wound is also sent as a JSON request,
    # Then each wound and assessment row breaks the same (rule, field, message) set under both validators
    _assert_same_findings(rows, nulls)


PARITY_CASES = [
    # (table, index, changes, the table rule the case must produce)
    ("wounds", 0, {"pi_stage": ""}, "missing_required"),
    ("wounds", 1, {"pi_stage": "2"}, "not_applicable"),
    ("wounds", 1, {"wagner_grade": ""}, "missing_required"),
    ("wounds", 2, {"wagner_grade": "1"}, "not_applicable"),
    ("wounds", 2, {"end_date": "2026-03-02"}, "end_after_extract_date"),
    ("wounds", 2, {"onset_date": "2026-01-06"}, "onset_after_first_assessment"),
    ("wounds", 2, {"end_date": "2026-01-04"}, "end_before_first_assessment"),
    ("wounds", 1, {"onset_date": "1677-09-21"}, "bad_type"),
    ("wounds", 1, {"wound_type": "Other"}, "bad_enum"),
    ("assessments", 3, {"depth_cm": ""}, "missing_required"),
    ("assessments", 3, {"depth_cm": "x"}, "bad_type"),
    ("assessments", 3, {"width_cm": "0"}, "zero_dimension_open"),
    ("assessments", 4, {"area_cm2": "21.1"}, "area_exceeds_dimensions"),
    ("assessments", 3, {"granulation_pct": "70"}, "tissue_sum"),
    ("assessments", 3, {"bmi": "28"}, "bmi_mismatch"),
    ("assessments", 3, {"weight_kg": "inf"}, "out_of_range"),
    ("assessments", 3, {"pain_score": "2.5"}, "bad_type"),
    ("assessments", 3, {"infection": "yes"}, "bad_type"),
    ("assessments", 5, {"assessed_on": "2026-01-05"}, "duplicate_visit_day"),
    ("assessments", 5, {"assessment_key": "a5"}, "duplicate_key"),
    ("assessments", 4, {"ankle_brachial_index": "0.45"}, "compression_contraindicated"),
    ("assessments", 1, {"length_cm": "0", "width_cm": "0"}, "closed_but_not_healed"),
]


@pytest.mark.parametrize(("table", "index", "changes", "rule"), PARITY_CASES)
def test_each_table_rule_is_found_for_the_same_row_in_the_request(rows, table, index, changes, rule):
    # Given an extract breaking one rule in one row
    rows[table][index].update(changes)
    table_result = validate_tables(_raw_tables(rows), extract_date=EXTRACT_DATE)
    assert rule in set(table_result.quarantine["rule"]) | {
        r["rule"] for reasons in table_result.quarantine["reasons"] for r in reasons
    }
    # When every wound is validated as a request, Then the findings agree row by row, for all six assessments
    assert _assert_same_findings(rows) == 6


def test_clinical_warnings_agree_and_come_with_an_accepted_request(rows):
    # Given compression with no ABI on a lower-limb wound, a reduced ABI and NPWT over eschar
    rows["assessments"][4]["ankle_brachial_index"] = ""
    rows["assessments"][5]["ankle_brachial_index"] = "0.7"
    rows["assessments"][3].update(npwt="true", granulation_pct="70", eschar_pct="10")
    assert _assert_same_findings(rows) == 6
    # When the VLU history is validated, Then it is accepted, with the warnings
    check = validate_history(_request(rows, "w3"), extract_date=EXTRACT_DATE)
    assert check.ok
    assert [(f.rule, f.path) for f in check.warnings] == [
        ("compression_without_abi", "assessments[0].compression"),
        ("compression_reduced_abi", "assessments[1].compression"),
    ]


def test_an_assessment_after_the_extract_date_is_the_same_warning_in_both_validators(rows):
    # Given the DFU's visit dated the day after the extract date
    rows["assessments"][3]["assessed_on"] = "2026-03-02"
    assert _assert_same_findings(rows) == 6
    # When the DFU history is validated, Then it is accepted, with the warning on that visit's assessed_on
    check = validate_history(_request(rows, "w2"), extract_date=EXTRACT_DATE)
    assert check.ok
    assert [(f.rule, f.path) for f in check.warnings] == [("assessed_after_extract_date", "assessments[0].assessed_on")]


def test_warnings_are_given_for_assessments_without_errors_only(rows):
    # Given NPWT over eschar on a valid visit, NPWT with no eschar, and a reduced ABI on a visit with a bad field
    request = _request(rows, "w3")
    first, second = request["assessments"]
    first.update(npwt=True, granulation_pct=70.0, eschar_pct=10.0)
    second.update(npwt=True, ankle_brachial_index=0.7, pain_score="2")
    # When validated
    check = validate_history(request, extract_date=EXTRACT_DATE)
    # Then only the valid visit's warning is returned, beside the other visit's error
    assert [(f.rule, f.path) for f in check.warnings] == [("npwt_with_eschar", "assessments[0].npwt")]
    assert [(f.rule, f.path) for f in check.errors] == [("bad_type", "assessments[1].pain_score")]


# --- one request: what it accepts and how it types it -----------------------------------------------------


@pytest.mark.parametrize("wound_key", ["w1", "w2", "w3"])
def test_a_contract_conformant_history_is_accepted_with_no_findings(rows, wound_key):
    check = validate_history(_request(rows, wound_key), extract_date=EXTRACT_DATE)
    assert check.as_dict() == {"ok": True, "errors": [], "warnings": []}


@pytest.mark.parametrize("wound_key", ["w1", "w2", "w3"])
def test_typed_history_equals_the_table_path_and_gives_the_same_features(rows, wound_key):
    # Given the same wound through the table validator's clean tables and as a request with nulls
    clean = validate_tables(_raw_tables(rows), extract_date=EXTRACT_DATE).clean
    expected = wound_history(clean, wound_key)
    # When the request is typed
    typed = typed_history(_request(rows, wound_key, nulls=True))
    # Then values, types and features are identical (dates ISO, ints int, empty end_reason "open")
    assert typed == expected
    assert [{k: type(v) for k, v in r.items()} for r in typed[2]] == [
        {k: type(v) for k, v in r.items()} for r in expected[2]
    ]
    assert history_features(*typed) == history_features(*expected)


def test_an_assessment_may_leave_out_its_wound_key(rows):
    request = _request(rows, "w1")
    for visit in request["assessments"]:
        del visit["wound_key"]
    assert validate_history(request, extract_date=EXTRACT_DATE).ok
    assert {v["wound_key"] for v in typed_history(request)[2]} == {"w1"}


def test_typed_history_refuses_a_request_that_breaks_a_field(rows):
    request = _request(rows, "w2")
    request["assessments"][0]["length_cm"] = "3.0"
    with pytest.raises(ValueError, match="validate_history"):
        typed_history(request)


# --- what only a JSON request can get wrong ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "field", "value", "rule"),
    [
        ("assessments", "length_cm", "3.0", "bad_type"),  # a number sent as a string
        ("assessments", "length_cm", True, "bad_type"),
        ("assessments", "infection", 0, "bad_type"),  # booleans are JSON true/false only
        ("assessments", "infection", "false", "bad_type"),
        ("assessments", "assessed_on", 20260110, "bad_type"),
        ("assessments", "assessed_on", "2026-1-10", "bad_type"),
        ("assessments", "assessed_on", "2026-W02-6", "bad_type"),  # ISO week date: ISO, but not the contract's
        ("assessments", "assessed_on", "2026-01-10T09:00", "bad_type"),
        ("assessments", "assessment_key", 4, "bad_type"),
        ("assessments", "exudate_amount", ["light"], "bad_type"),
        ("assessments", "pain_score", 2.5, "bad_type"),
        ("assessments", "pain_score", float("nan"), "bad_type"),
        ("assessments", "weight_kg", float("inf"), "out_of_range"),
        ("assessments", "pain_score", 10**400, "out_of_range"),
        ("assessments", "exudate_amount", "Light", "bad_enum"),
        ("assessments", "exudate_amount", None, "missing_required"),
        ("assessments", "exudate_amount", "", "missing_required"),
        ("wound", "pi_stage", 2, "bad_type"),
        ("wound", "onset_date", "0001-01-01", "bad_type"),
        ("patient", "age_years", 91, "out_of_range"),
        ("patient", "diabetes", None, "missing_required"),
    ],
)
def test_a_field_of_the_wrong_json_type_or_range_is_an_error_at_its_path(rows, section, field, value, rule):
    # Given a valid request with one field replaced
    request = _request(rows, "w2")
    target = request["assessments"][0] if section == "assessments" else request[section]
    target[field] = value
    # When validated
    check = validate_history(request, extract_date=EXTRACT_DATE)
    # Then that field, and only it, is reported with the rule and its path
    path = "assessments[0]" if section == "assessments" else section
    assert [(f.rule, f.path, f.field) for f in check.errors] == [(rule, f"{path}.{field}", field)]
    assert not check.ok and not check.malformed


def test_whole_numbers_sent_as_floats_are_accepted_as_ints(rows):
    request = _request(rows, "w2")
    request["patient"]["age_years"] = 67.0
    request["assessments"][0]["pain_score"] = 2.0
    assert validate_history(request, extract_date=EXTRACT_DATE).ok
    patient, _, visits = typed_history(request)
    assert (patient["age_years"], visits[0]["pain_score"]) == (67, 2)
    assert isinstance(patient["age_years"], int)


def test_unknown_fields_are_errors_naming_their_path(rows):
    request = _request(rows, "w3")
    request["assessments"][1]["wound_colour"] = "red"
    request["patient"]["name"] = "x"
    request["notes"] = []
    check = validate_history(request, extract_date=EXTRACT_DATE)
    # an unknown section is a shape error: rows are checked once the shape is right
    assert [(f.rule, f.path) for f in check.errors] == [("unknown_field", "notes")]
    del request["notes"]
    check = validate_history(request, extract_date=EXTRACT_DATE)
    assert [(f.rule, f.path) for f in check.errors] == [
        ("unknown_field", "patient.name"),
        ("unknown_field", "assessments[1].wound_colour"),
    ]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda r: r.pop("patient"), [("missing_required", "patient")]),
        (lambda r: r.update(wound=None), [("missing_required", "wound")]),
        (lambda r: r.update(wound=[r["wound"]]), [("bad_type", "wound")]),
        (lambda r: r.update(assessments=r["assessments"][0]), [("bad_type", "assessments")]),
        (lambda r: r.update(assessments=[]), [("empty_assessments", "assessments")]),
        (lambda r: r["assessments"].append("a9"), [("bad_type", "assessments[1]")]),
    ],
)
def test_a_request_of_the_wrong_shape_is_rejected_before_its_rows(rows, breakage, expected):
    request = _request(rows, "w2")
    request["patient"]["sex"] = "x"  # a row error that a shape error hides
    breakage(request)
    check = validate_history(request, extract_date=EXTRACT_DATE)
    assert [(f.rule, f.path) for f in check.errors] == expected
    assert check.malformed


def test_a_body_that_is_not_an_object_is_rejected():
    check = validate_history(["patient"])  # type: ignore[arg-type]
    assert [(f.rule, f.path) for f in check.errors] == [("bad_type", "")]
    assert check.malformed


def test_more_than_the_maximum_of_assessments_is_rejected_and_the_maximum_is_accepted(rows):
    # Given the DFU history repeated on consecutive days up to the limit
    request = _request(rows, "w2")
    visit = request["assessments"][0]
    days = [dt.date(2026, 1, 10) + dt.timedelta(days=n) for n in range(MAX_ASSESSMENTS + 1)]
    many = [dict(visit, assessment_key=f"a{n}", assessed_on=d.isoformat()) for n, d in enumerate(days)]
    extract_date = days[-1]
    # When sent with one too many, and with exactly the maximum
    too_many = validate_history(dict(request, assessments=many), extract_date=extract_date)
    at_limit = validate_history(dict(request, assessments=many[:-1]), extract_date=extract_date)
    # Then the first is refused for its size and the second is accepted
    assert [(f.rule, f.path) for f in too_many.errors] == [("too_many_assessments", "assessments")]
    assert at_limit.ok


def test_keys_that_disagree_within_the_request_are_key_mismatch(rows):
    request = _request(rows, "w3")
    request["wound"]["patient_key"] = "p1"
    request["assessments"][1]["wound_key"] = "w2"
    check = validate_history(request, extract_date=EXTRACT_DATE)
    assert [(f.rule, f.path) for f in check.errors] == [
        ("key_mismatch", "wound.patient_key"),
        ("key_mismatch", "assessments[1].wound_key"),
    ]


def test_an_assessment_key_twice_in_a_request_is_duplicate_key_on_both(rows):
    request = _request(rows, "w3")
    request["assessments"][1]["assessment_key"] = " a5"
    check = validate_history(request, extract_date=EXTRACT_DATE)
    assert _found(check, "assessments[0]") == _found(check, "assessments[1]") == {("duplicate_key", "assessment_key")}


def test_safety_thresholds_are_configurable(rows):
    request = _request(rows, "w3")
    request["assessments"][0]["ankle_brachial_index"] = 0.55
    assert validate_history(request, extract_date=EXTRACT_DATE).ok
    strict = validate_history(request, EXTRACT_DATE, SafetyThresholds(abi_contraindicated_below=0.6))
    assert {f.path for f in strict.errors} == {"assessments[0].compression", "assessments[1].compression"}


def test_the_latest_date_anywhere_is_today_at_utc_plus_14():
    assert latest_date_anywhere(dt.datetime(2026, 3, 1, 9, 59, tzinfo=dt.UTC)) == dt.date(2026, 3, 1)
    assert latest_date_anywhere(dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 2)
    guam = dt.timezone(dt.timedelta(hours=10))
    assert latest_date_anywhere(dt.datetime(2026, 3, 2, 8, 0, tzinfo=guam)) == dt.date(2026, 3, 2)


def test_the_extract_date_bounds_the_end_date_and_defaults_to_the_latest_date_anywhere(rows, monkeypatch):
    latest = dt.date(2026, 3, 2)  # a clinic's today, while it is still 1 March at the server
    monkeypatch.setattr(validate_history_module, "latest_date_anywhere", lambda: latest)
    request = _request(rows, "w3")
    request["wound"]["end_date"] = latest.isoformat()
    assert validate_history(request).ok  # some clinic's today, even when it is tomorrow at the server
    request["wound"]["end_date"] = (latest + dt.timedelta(days=1)).isoformat()
    assert _found(validate_history(request), "wound") == {("end_after_extract_date", "end_date")}
    assert validate_history(request, extract_date=latest + dt.timedelta(days=1)).ok


def test_an_assessment_after_today_is_a_warning_and_the_history_is_still_typed(rows, monkeypatch):
    # Given the DFU visited again today and tomorrow, checked as the API does (the extract date is today)
    today = dt.date(2026, 3, 2)
    monkeypatch.setattr(validate_history_module, "latest_date_anywhere", lambda: today)
    request = _request(rows, "w2")
    visit = request["assessments"][0]
    request["assessments"] += [
        dict(visit, assessment_key="a7", assessed_on=today.isoformat()),
        dict(visit, assessment_key="a8", assessed_on=(today + dt.timedelta(days=1)).isoformat()),
    ]
    # When checked
    check, history = check_history(request)
    # Then only tomorrow's visit is flagged, and the history is typed for prediction with all three visits
    assert check.ok and not check.errors
    assert [(f.rule, f.path) for f in check.warnings] == [("assessed_after_extract_date", "assessments[2].assessed_on")]
    assert history is not None
    assert [v["assessment_key"] for v in history[2]] == ["a4", "a7", "a8"]
    assert history_features(*history)


def test_findings_never_carry_the_offending_values_and_are_json(rows):
    # Given values that would be PHI if echoed, in fields of every kind
    secret = "Jane-Doe-1947"
    request = _request(rows, "w1")
    request["patient"].update(sex=secret, age_years=secret, diabetes=secret)
    request["wound"].update(onset_date=secret, wound_key=secret + " ")
    request["assessments"][0].update(length_cm=secret, assessment_key=secret, **{"odor": secret})
    # When validated
    check = validate_history(request, extract_date=EXTRACT_DATE)
    # Then the findings name rules and paths only, and survive a JSON round trip
    text = json.dumps(check.as_dict())
    assert len(check.errors) >= 6
    assert secret not in text and "1947" not in text
    assert json.loads(text)["errors"][0] == check.errors[0].as_dict()


# --- the inference Lambda's import budget ------------------------------------------------------------------


def test_importing_and_running_the_validator_loads_no_pandas_or_numpy(rows):
    # Given a fresh interpreter that imports the validator and checks a request
    code = (
        "import json, sys\n"
        "from model_build.validate_history import validate_history, typed_history\n"
        f"request = json.loads({json.dumps(json.dumps(_request(rows, 'w3')))})\n"
        "check = validate_history(request)\n"
        "typed_history(request)\n"
        "print(json.dumps({'ok': check.ok, 'loaded': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'numpy', 'pyarrow', 'scipy', 'sklearn'))}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Then it ran the check and loaded none of the heavy packages
    assert json.loads(done.stdout) == {"ok": True, "loaded": []}
