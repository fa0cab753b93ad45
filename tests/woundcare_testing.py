"""Test support: a tiny hand-written extract that follows the contract to the letter, and one wound's history as
JSON (`wound_history`, from model_build.histories, which the demo shares)."""

from __future__ import annotations

import csv
from pathlib import Path

from model_build.histories import wound_history
from model_build.schema import TABLES

__all__ = ["tiny_extract_rows", "wound_history", "write_rows"]

_PATIENT_FLAGS = {c.name: "false" for c in TABLES["patients"].columns if c.kind == "bool"}


def tiny_extract_rows() -> dict[str, list[dict[str, str]]]:
    """Two patients, three wounds (PI stage 2 healed, DFU open, VLU under compression), six assessments."""
    patients = [
        {"patient_key": "p1", "age_years": "84", "sex": "female", "care_setting": "snf", "mobility": "bedbound",
         **_PATIENT_FLAGS},
        {"patient_key": "p2", "age_years": "67", "sex": "male", "care_setting": "home_health",
         "mobility": "ambulatory", **_PATIENT_FLAGS, "diabetes": "true"},
    ]  # fmt: skip
    wounds = [
        {"wound_key": "w1", "patient_key": "p1", "wound_type": "pressure_injury", "location": "sacrum_coccyx",
         "onset_date": "2026-01-01", "pi_stage": "2", "wagner_grade": "", "end_date": "2026-01-22",
         "end_reason": "healed"},
        {"wound_key": "w2", "patient_key": "p2", "wound_type": "diabetic_foot_ulcer", "location": "foot_plantar",
         "onset_date": "", "pi_stage": "", "wagner_grade": "2", "end_date": "", "end_reason": ""},
        {"wound_key": "w3", "patient_key": "p2", "wound_type": "venous_leg_ulcer", "location": "lower_leg",
         "onset_date": "2025-12-01", "pi_stage": "", "wagner_grade": "", "end_date": "2026-02-01",
         "end_reason": "discharged"},
    ]  # fmt: skip
    base = {"undermining_cm": "", "tunneling_cm": "", "exudate_type": "serous", "odor": "false", "infection": "false",
            "pain_score": "2", "periwound": "intact", "weight_kg": "", "height_cm": "", "bmi": "", "hba1c_pct": "",
            "albumin_g_dl": "", "ankle_brachial_index": "", "primary_dressing": "foam",
            "dressing_changes_per_week": "3", "debridement": "none", "compression": "false", "offloading": "false",
            "npwt": "false", "skin_substitute": "false", "hyperbaric_oxygen": "false", "area_cm2": ""}  # fmt: skip

    def visit(key, wound, day, length, width, depth, tissue=(80, 20, 0, 0), exudate="light", **extra):
        return {**base, "assessment_key": key, "wound_key": wound, "assessed_on": day, "length_cm": str(length),
                "width_cm": str(width), "depth_cm": str(depth), "granulation_pct": str(tissue[0]),
                "slough_pct": str(tissue[1]), "eschar_pct": str(tissue[2]), "epithelial_pct": str(tissue[3]),
                "exudate_amount": exudate, **extra}  # fmt: skip

    assessments = [
        visit("a1", "w1", "2026-01-08", 2.0, 1.5, 0.2),
        visit("a2", "w1", "2026-01-15", 1.0, 0.8, 0.1, tissue=(30, 0, 0, 70)),
        visit("a3", "w1", "2026-01-22", 0, 0, 0, tissue=(0, 0, 0, 0), exudate="none"),
        visit("a4", "w2", "2026-01-10", 3.0, 2.0, 0.5, weight_kg="80", height_cm="175", bmi="26.1",
              offloading="true"),
        visit("a5", "w3", "2026-01-05", 5.0, 4.0, 0.3, ankle_brachial_index="0.9", compression="true",
              area_cm2="15.0"),
        visit("a6", "w3", "2026-01-12", 4.5, 3.5, 0.3, compression="true"),
    ]  # fmt: skip
    return {"patients": patients, "wounds": wounds, "assessments": assessments}


def write_rows(folder: Path, tables: dict[str, list[dict[str, str]]]) -> Path:
    """Write text rows as an extract folder of CSV files (header from the first row of each table)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        columns = list(rows[0]) if rows else list(TABLES[name].column_names)
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return folder
