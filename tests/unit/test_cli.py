"""The woundcare CLI as an engineer uses it: synth an extract, validate it, read the summary and the files."""

from __future__ import annotations

import json

from woundcare_shared.cli import main


def test_synth_then_validate_writes_a_clean_reconciled_result(tmp_path, capsys):
    # Given a small synthetic extract with some dirty rows
    assert (
        main(["synth", "--patients", "150", "--seed", "3", "--dirty-share", "0.02", "--out", str(tmp_path / "x")]) == 0
    )
    written = {p.name for p in (tmp_path / "x").iterdir()}
    assert written >= {"patients.csv", "wounds.csv", "assessments.csv", "cost_catalog.csv", "synth.json"}
    # When it is validated
    code = main(["validate", str(tmp_path / "x"), "--out", str(tmp_path / "v"), "--extract-date", "2025-12-31"])
    # Then the terminal shows the reconciled counts and the files are written
    out = capsys.readouterr().out
    assert code == 0
    assert "counts reconciled" in out and "assessments" in out
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert report["reconciled"] and report["quarantined_rows"] > 0
    assert (tmp_path / "v" / "clean" / "assessments.parquet").is_file()
    assert len((tmp_path / "v" / "quarantine.jsonl").read_text().splitlines()) == report["quarantined_rows"]


def test_validate_reports_a_whole_file_problem_as_one_line_and_exit_code_2(tmp_path, tiny_extract, capsys):
    (tiny_extract / "wounds.csv").write_text("wound_key\nw1\n")
    code = main(["validate", str(tiny_extract), "--out", str(tmp_path / "v")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: wounds.csv, column 'patient_key': required column is missing [missing_column]")
    assert "Traceback" not in err
