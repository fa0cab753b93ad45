"""Validation against the extract contract: each rule, the cascade, reconciliation and whole-file errors."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from woundcare_testing import write_rows

from model_build.extract import ExtractError, read_extract, write_extract
from model_build.validate import SafetyThresholds, validate_extract

EXTRACT_DATE = dt.date(2026, 3, 1)


def _validate(tmp_path, rows, **kwargs):
    return validate_extract(write_rows(tmp_path / "x", rows), extract_date=EXTRACT_DATE, **kwargs)


def _reasons(result, table, key):
    hit = result.quarantine[(result.quarantine["table"] == table) & (result.quarantine["key"] == key)]
    assert len(hit) == 1, f"{table}/{key} is not quarantined exactly once"
    return {(r["rule"], r["field"]) for r in hit.iloc[0]["reasons"]}


def test_contract_conformant_extract_is_entirely_clean(tmp_path, tiny_rows):
    result = _validate(tmp_path, tiny_rows)
    assert result.report["quarantined_rows"] == 0
    assert {n: len(f) for n, f in result.clean.items()} == {"patients": 2, "wounds": 3, "assessments": 6}
    assert result.report["reconciled"] is True


def test_clean_tables_are_typed_and_empty_end_reason_means_open(tmp_path, tiny_rows):
    result = _validate(tmp_path, tiny_rows)
    wounds, assessments = result.clean["wounds"], result.clean["assessments"]
    assert wounds.set_index("wound_key").loc["w2", "end_reason"] == "open"
    assert pd.api.types.is_datetime64_any_dtype(assessments["assessed_on"])
    assert str(assessments["compression"].dtype) == "boolean"
    assert str(result.clean["patients"]["age_years"].dtype) == "Int64"
    assert assessments["length_cm"].dtype == float


CELL_RULES = [
    ("patients", 0, "age_years", "91", "out_of_range"),
    ("patients", 0, "age_years", "84.5", "bad_type"),
    ("patients", 0, "sex", "F", "bad_enum"),
    ("patients", 0, "diabetes", "yes", "bad_type"),
    ("patients", 0, "mobility", "", "missing_required"),
    ("wounds", 1, "wound_type", "Diabetic Foot Ulcer", "bad_enum"),
    ("wounds", 1, "onset_date", "01/02/2026", "bad_type"),
    ("wounds", 1, "wagner_grade", "6", "out_of_range"),
    ("assessments", 3, "length_cm", "61", "out_of_range"),
    ("assessments", 3, "width_cm", "-1", "out_of_range"),
    ("assessments", 3, "depth_cm", "abc", "bad_type"),
    ("assessments", 3, "assessed_on", "2026-02-30", "bad_type"),
    ("assessments", 3, "granulation_pct", "101", "out_of_range"),
    ("assessments", 3, "exudate_amount", "", "missing_required"),
    ("assessments", 3, "infection", "", "missing_required"),
    ("assessments", 3, "pain_score", "11", "out_of_range"),
    ("assessments", 3, "weight_kg", "inf", "out_of_range"),
    ("assessments", 3, "hba1c_pct", "nan", "bad_type"),
    ("assessments", 3, "ankle_brachial_index", "0.1", "out_of_range"),
    ("assessments", 3, "dressing_changes_per_week", "22", "out_of_range"),
]


@pytest.mark.parametrize(("table", "index", "column", "value", "rule"), CELL_RULES)
def test_a_bad_cell_quarantines_its_row_with_rule_and_field(tmp_path, tiny_rows, table, index, column, value, rule):
    # Given one cell broken in an otherwise valid extract
    tiny_rows[table][index][column] = value
    key = tiny_rows[table][index][f"{table[:-1]}_key" if table != "patients" else "patient_key"]
    # When it is validated
    result = _validate(tmp_path, tiny_rows)
    # Then that row is quarantined for that rule and field, and nothing is lost
    assert (rule, column) in _reasons(result, table, key)
    assert result.report["reconciled"] is True
    assert value not in result.quarantine["message"].str.cat(sep=" ") or value == ""


ROW_RULES = [
    # (table, index, changes, rule, field)
    ("wounds", 0, {"pi_stage": ""}, "missing_required", "pi_stage"),
    ("wounds", 1, {"pi_stage": "2"}, "not_applicable", "pi_stage"),
    ("wounds", 1, {"wagner_grade": ""}, "missing_required", "wagner_grade"),
    ("wounds", 2, {"wagner_grade": "1"}, "not_applicable", "wagner_grade"),
    ("wounds", 2, {"end_date": "2026-03-02"}, "end_after_extract_date", "end_date"),
    ("wounds", 2, {"onset_date": "2026-01-06"}, "onset_after_first_assessment", "onset_date"),
    ("wounds", 2, {"end_date": "2026-01-04"}, "end_before_first_assessment", "end_date"),
    ("assessments", 3, {"depth_cm": ""}, "missing_required", "depth_cm"),
    ("assessments", 3, {"width_cm": "0"}, "zero_dimension_open", "length_cm"),
    ("assessments", 4, {"area_cm2": "21.1"}, "area_exceeds_dimensions", "area_cm2"),
    ("assessments", 3, {"granulation_pct": "70"}, "tissue_sum", "granulation_pct"),
    ("assessments", 3, {"bmi": "28"}, "bmi_mismatch", "bmi"),
    ("assessments", 4, {"ankle_brachial_index": "0.45"}, "compression_contraindicated", "compression"),
    ("assessments", 1, {"length_cm": "0", "width_cm": "0"}, "closed_but_not_healed", "length_cm"),
]


@pytest.mark.parametrize(("table", "index", "changes", "rule", "field"), ROW_RULES)
def test_cross_field_rules_quarantine_the_offending_row(tmp_path, tiny_rows, table, index, changes, rule, field):
    tiny_rows[table][index].update(changes)
    key = tiny_rows[table][index]["wound_key" if table == "wounds" else "assessment_key"]
    result = _validate(tmp_path, tiny_rows)
    assert (rule, field) in _reasons(result, table, key)


def test_edges_that_the_contract_allows_stay_clean(tmp_path, tiny_rows):
    # area exactly 5 % over length x width, tissue summing to 95, BMI off by exactly 1, depth absent for stage 1
    tiny_rows["assessments"][4]["area_cm2"] = "21.0"
    tiny_rows["assessments"][3].update(granulation_pct="75", bmi="27.12")
    tiny_rows["wounds"][0]["pi_stage"] = "1"
    for a in tiny_rows["assessments"][:3]:
        a["depth_cm"] = ""
    result = _validate(tmp_path, tiny_rows)
    assert result.report["quarantined_rows"] == 0, result.quarantine[["key", "rule"]].to_dict("records")


def test_duplicate_keys_quarantine_every_copy(tmp_path, tiny_rows):
    tiny_rows["assessments"].append(dict(tiny_rows["assessments"][3], assessed_on="2026-01-17"))
    result = _validate(tmp_path, tiny_rows)
    dup = result.quarantine[result.quarantine["rule"] == "duplicate_key"]
    assert list(dup["key"]) == ["a4", "a4"]
    assert result.report["tables"]["assessments"]["input_rows"] == 7


def test_two_assessments_of_a_wound_on_one_day_are_both_quarantined(tmp_path, tiny_rows):
    tiny_rows["assessments"].append(dict(tiny_rows["assessments"][3], assessment_key="a7"))
    result = _validate(tmp_path, tiny_rows)
    assert ("duplicate_visit_day", "assessed_on") in _reasons(result, "assessments", "a7")
    assert ("duplicate_visit_day", "assessed_on") in _reasons(result, "assessments", "a4")


def test_a_quarantined_patient_takes_its_wounds_and_their_assessments(tmp_path, tiny_rows):
    # Given patient p2 (wounds w2, w3; assessments a4-a6) is broken
    tiny_rows["patients"][1]["sex"] = "x"
    result = _validate(tmp_path, tiny_rows)
    # Then everything below it is quarantined with the reason
    assert ("parent_quarantined", "patient_key") in _reasons(result, "wounds", "w2")
    assert ("parent_quarantined", "wound_key") in _reasons(result, "assessments", "a6")
    assert set(result.clean["assessments"]["assessment_key"]) == {"a1", "a2", "a3"}
    assert result.report["reconciled"] is True


def test_orphans_are_quarantined(tmp_path, tiny_rows):
    tiny_rows["wounds"][2]["patient_key"] = "nobody"
    tiny_rows["assessments"][0]["wound_key"] = "nowhere"
    result = _validate(tmp_path, tiny_rows)
    assert ("orphan", "patient_key") in _reasons(result, "wounds", "w3")
    assert ("orphan", "wound_key") in _reasons(result, "assessments", "a1")
    assert ("parent_quarantined", "wound_key") in _reasons(result, "assessments", "a5")


def test_clinical_safety_warnings_keep_the_row_and_flag_it(tmp_path, tiny_rows):
    # compression with no ABI on a lower-limb wound; reduced ABI; NPWT over eschar
    tiny_rows["assessments"][4]["ankle_brachial_index"] = ""
    tiny_rows["assessments"][5]["ankle_brachial_index"] = "0.7"
    tiny_rows["assessments"][3].update(npwt="true", granulation_pct="70", eschar_pct="10")
    result = _validate(tmp_path, tiny_rows)
    assert result.report["quarantined_rows"] == 0
    flags = set(zip(result.warnings["key"], result.warnings["rule"], strict=True))
    assert flags == {
        ("a5", "compression_without_abi"),
        ("a6", "compression_reduced_abi"),
        ("a4", "npwt_with_eschar"),
    }
    assert result.report["tables"]["assessments"]["warnings_by_rule"]["npwt_with_eschar"] == 1


def test_an_assessment_after_the_extract_date_is_kept_and_flagged(tmp_path, tiny_rows):
    # Given the open DFU visited again on the extract date and on the day after it
    tiny_rows["assessments"] += [
        dict(tiny_rows["assessments"][3], assessment_key="a7", assessed_on="2026-03-01"),
        dict(tiny_rows["assessments"][3], assessment_key="a8", assessed_on="2026-03-02"),
    ]
    # When validated
    result = _validate(tmp_path, tiny_rows)
    # Then both rows are kept, only the later one is flagged, and the counts reconcile
    assert result.report["quarantined_rows"] == 0
    assert {"a7", "a8"} <= set(result.clean["assessments"]["assessment_key"])
    assert result.warnings[["key", "rule", "field"]].to_dict("records") == [
        {"key": "a8", "rule": "assessed_after_extract_date", "field": "assessed_on"}
    ]
    report = result.report["tables"]["assessments"]
    assert (report["input_rows"], report["clean_rows"], report["rows_with_warnings"]) == (8, 8, 1)
    assert report["warnings_by_rule"] == {"assessed_after_extract_date": 1}
    assert result.report["reconciled"] is True


def test_latest_abi_on_record_decides_compression_safety(tmp_path, tiny_rows):
    # ABI 0.9 at a5 is the latest on record at a6: a6 is safe; a low ABI at a6 makes a6 (not a5) an error
    tiny_rows["assessments"][5]["ankle_brachial_index"] = "0.4"
    result = _validate(tmp_path, tiny_rows)
    assert set(result.quarantine["key"]) == {"a6"}


def test_safety_thresholds_are_configurable(tmp_path, tiny_rows):
    tiny_rows["assessments"][4]["ankle_brachial_index"] = "0.55"
    strict = SafetyThresholds(abi_contraindicated_below=0.6)
    assert _validate(tmp_path, tiny_rows).report["quarantined_rows"] == 0
    # a5 and a6 both compress on the latest ABI of 0.55
    assert set(_validate(tmp_path, tiny_rows, thresholds=strict).quarantine["key"]) == {"a5", "a6"}


def test_unknown_columns_are_ignored_and_reported(tmp_path, tiny_rows):
    for p in tiny_rows["patients"]:
        p["favourite_colour"] = "blue"
    result = _validate(tmp_path, tiny_rows)
    assert result.report["tables"]["patients"]["unknown_columns"] == ["favourite_colour"]
    assert "favourite_colour" not in result.clean["patients"].columns


def test_optional_columns_may_be_absent_from_the_file(tmp_path, tiny_rows):
    for a in tiny_rows["assessments"]:
        del a["hba1c_pct"], a["periwound"]
    result = _validate(tmp_path, tiny_rows)
    assert result.report["quarantined_rows"] == 0
    assert result.clean["assessments"]["hba1c_pct"].isna().all()


@pytest.mark.parametrize(
    ("breakage", "code", "column"),
    [
        (lambda d: (d / "wounds.csv").unlink(), "missing_table", None),
        (lambda d: (d / "wounds.csv").write_text(""), "empty_file", None),
        (lambda d: (d / "wounds.csv").write_bytes(b"wound_key,patient_key\n\xff\xfe,x\n"), "bad_encoding", None),
        (lambda d: (d / "wounds.csv").write_text("wound_key,patient_key,location\nw1,p1,heel\n"), "missing_column",
         "wound_type"),
        (lambda d: (d / "patients.parquet").write_bytes(b"PAR1 not really"), "ambiguous_table", None),
    ],
)  # fmt: skip
def test_whole_file_problems_are_one_clear_error_naming_file_and_column(tiny_extract, breakage, code, column):
    breakage(tiny_extract)
    with pytest.raises(ExtractError) as caught:
        validate_extract(tiny_extract, extract_date=EXTRACT_DATE)
    assert caught.value.code == code
    assert caught.value.column == column
    assert caught.value.file.endswith((".csv", ".parquet"))


def test_duplicate_header_is_a_whole_file_error(tiny_extract):
    text = (tiny_extract / "patients.csv").read_text().splitlines()
    (tiny_extract / "patients.csv").write_text("\n".join([text[0] + ",sex"] + [t + ",female" for t in text[1:]]))
    with pytest.raises(ExtractError) as caught:
        read_extract(tiny_extract)
    assert (caught.value.code, caught.value.column) == ("duplicate_column", "sex")


def test_parquet_and_csv_extracts_validate_identically(tmp_path, tiny_extract):
    # Given the same extract as typed Parquet files
    csv_result = validate_extract(tiny_extract, extract_date=EXTRACT_DATE)
    write_extract(csv_result.clean, tmp_path / "pq", fmt="parquet")
    # When validated
    pq_result = validate_extract(tmp_path / "pq", extract_date=EXTRACT_DATE)
    # Then the clean tables are identical
    for name, frame in csv_result.clean.items():
        pd.testing.assert_frame_equal(frame, pq_result.clean[name])


def test_result_is_written_as_clean_tables_quarantine_warnings_and_report(tmp_path, tiny_rows):
    tiny_rows["patients"][0]["sex"] = "x"
    result = _validate(tmp_path, tiny_rows)
    paths = result.write(tmp_path / "out")
    report = json.loads(paths["report"].read_text())
    assert report["tables"]["patients"]["errors_by_rule"] == {"bad_enum": 1}
    lines = paths["quarantine"].read_text().splitlines()
    assert len(lines) == report["quarantined_rows"] == 1 + 1 + 3  # p1, w1, a1-a3
    assert json.loads(lines[0])["raw"]["sex"] == "x"
    assert len(pd.read_parquet(paths["assessments"])) == 3
    # Given/when: the written clean tables are a valid extract themselves
    again = validate_extract(tmp_path / "out" / "clean", extract_date=EXTRACT_DATE)
    assert again.report["quarantined_rows"] == 0
