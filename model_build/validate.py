"""Validate an extract against the contract: clean typed tables, a quarantine with reasons, warnings, a report.

Nothing is dropped silently: every input row ends in `clean` or in `quarantine` exactly once, and the report's
counts reconcile per table. A quarantined patient takes its wounds with it; a quarantined wound its assessments.
Messages name the rule and the field, never a cell value (the raw row travels beside them, not in them).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model_build.extract import RawTable, read_extract
from model_build.rules import ISO_DATE as _ISO_DATE
from model_build.rules import SafetyThresholds, column_message, latest_date_anywhere, row_messages
from model_build.schema import (
    CONTRACT_VERSION,
    LOWER_EXTREMITY_LOCATIONS,
    PI_STAGES_WITHOUT_DEPTH,
    TABLE_ORDER,
    TABLES,
    TISSUE_PCT_COLUMNS,
    Column,
    Table,
)

_TRUE, _FALSE = ("true", "1"), ("false", "0")
# Messages of rules only a table can break (a request holds one patient and one wound; see rules.row_messages).
_TABLE_ONLY_MESSAGES = {
    ("duplicate_key", "patient_key"): "patient_key is not unique",
    ("duplicate_key", "wound_key"): "wound_key is not unique",
    ("orphan", "patient_key"): "patient_key does not exist in patients",
    ("orphan", "wound_key"): "wound_key does not exist in wounds",
    ("parent_quarantined", "patient_key"): "its row in patients is quarantined",
    ("parent_quarantined", "wound_key"): "its row in wounds is quarantined",
}


@dataclass
class ValidationResult:
    """Clean typed tables, quarantined rows with reasons, kept-but-flagged warnings, and the report."""

    clean: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    warnings: pd.DataFrame
    report: dict = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write clean tables (Parquet), quarantine (JSON lines), warnings (CSV) and report (JSON) to `out_dir`."""
        out = Path(out_dir)
        (out / "clean").mkdir(parents=True, exist_ok=True)
        paths = {name: out / "clean" / f"{name}.parquet" for name in self.clean}
        for name, frame in self.clean.items():
            frame.to_parquet(paths[name], index=False)
        paths["quarantine"] = out / "quarantine.jsonl"
        self.quarantine.to_json(paths["quarantine"], orient="records", lines=True)
        paths["warnings"] = out / "warnings.csv"
        self.warnings.to_csv(paths["warnings"], index=False)
        paths["report"] = out / "report.json"
        paths["report"].write_text(json.dumps(self.report, indent=2, sort_keys=True))
        return paths


class _Findings:
    """Collects rule hits as (table, row positions, rule, field, message) without touching row values."""

    def __init__(self, messages: dict[tuple[str, str], str]) -> None:
        self.messages = messages
        self.parts: list[pd.DataFrame] = []

    def add(self, table: str, rows: pd.Index | np.ndarray, rule: str, field: str, message: str | None = None) -> None:
        """Hits of `rule` on `field`; the message defaults to the message table's entry for (rule, field)."""
        message = message or self.messages[(rule, field)]
        rows = np.asarray(rows)
        if rows.size:
            self.parts.append(
                pd.DataFrame({"table": table, "row": rows, "rule": rule, "field": field, "message": message})
            )

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in ("table", "row", "rule", "field", "message")})
        return pd.concat(self.parts, ignore_index=True)

    def rows(self, table: str) -> np.ndarray:
        """Distinct row positions of `table` with at least one finding so far."""
        hits = [p["row"].to_numpy(dtype=np.int64) for p in self.parts if p["table"].iat[0] == table]
        return np.unique(np.concatenate(hits)) if hits else np.array([], dtype=np.int64)


def validate_extract(
    folder: str | Path, extract_date: dt.date | None = None, thresholds: SafetyThresholds | None = None
) -> ValidationResult:
    """Read and validate an extract folder; whole-file problems raise `ExtractError`."""
    return validate_tables(read_extract(folder), extract_date, thresholds)


def validate_tables(
    raw: dict[str, RawTable], extract_date: dt.date | None = None, thresholds: SafetyThresholds | None = None
) -> ValidationResult:
    """Validate text tables as read by `read_extract` (the extract date defaults to `latest_date_anywhere()`)."""
    thresholds = thresholds or SafetyThresholds()
    extract_date = extract_date or latest_date_anywhere()
    messages = row_messages(thresholds) | _TABLE_ONLY_MESSAGES
    errors, warnings = _Findings(messages), _Findings(messages)
    typed = {name: _parse_table(raw[name].frame, TABLES[name], errors) for name in TABLE_ORDER}
    for name in TABLE_ORDER:
        _duplicate_keys(typed[name], TABLES[name], errors)
    _wound_rules(typed["wounds"], pd.Timestamp(extract_date), errors)
    _assessment_rules(typed["assessments"], typed["wounds"], pd.Timestamp(extract_date), thresholds, errors, warnings)
    _wound_vs_assessments(typed["wounds"], typed["assessments"], errors)
    _cascade(typed, errors)
    return _assemble(raw, typed, errors, warnings, extract_date, thresholds)


# --- per column -------------------------------------------------------------------------------------------


def _parse_table(text: pd.DataFrame, table: Table, errors: _Findings) -> pd.DataFrame:
    """Typed columns from text cells; each unparseable, missing-required or out-of-range cell is a finding."""
    return pd.DataFrame({c.name: _parse_column(text[c.name], c, table.name, errors) for c in table.columns})


def _parse_column(text: pd.Series, column: Column, table: str, errors: _Findings) -> pd.Series:
    # Values are taken exactly as written (" foam" is not an enum value); only keys forgive surrounding spaces.
    cells = text.astype(str)
    if column.kind == "key":
        cells = cells.str.strip()
    present = cells != ""
    if column.required:
        errors.add(
            table, cells.index[~present], "missing_required", column.name, column_message("missing_required", column)
        )
    if column.kind == "key":
        return cells.where(present, None)
    if column.kind == "enum":
        ok = cells.isin(column.values)
        errors.add(table, cells.index[present & ~ok], "bad_enum", column.name, column_message("bad_enum", column))
        return cells.where(present & ok, None)
    if column.kind == "bool":
        lowered = cells.str.lower()
        ok = lowered.isin(_TRUE + _FALSE)
        errors.add(table, cells.index[present & ~ok], "bad_type", column.name, column_message("bad_type", column))
        return lowered.isin(_TRUE).astype("boolean").where(present & ok, pd.NA)
    if column.kind == "date":
        well_formed = cells.str.match(_ISO_DATE)
        values = pd.to_datetime(cells.where(well_formed, None), format="%Y-%m-%d", errors="coerce")
        bad = present & values.isna()
        errors.add(table, cells.index[bad], "bad_type", column.name, column_message("bad_type", column))
        return values
    return _parse_number(cells, present, column, table, errors)


def _parse_number(cells: pd.Series, present: pd.Series, column: Column, table: str, errors: _Findings) -> pd.Series:
    values = pd.to_numeric(cells.where(present, None), errors="coerce").astype(float)
    not_a_number = present & values.isna()
    if column.kind == "int":
        not_a_number |= present & np.isfinite(values) & (values != np.round(values))
    errors.add(table, cells.index[not_a_number], "bad_type", column.name, column_message("bad_type", column))
    values = values.where(~not_a_number)
    out_of_range = values.notna() & ~values.between(column.low, column.high)
    errors.add(table, cells.index[out_of_range], "out_of_range", column.name, column_message("out_of_range", column))
    values = values.where(~out_of_range)
    return values.round().astype("Int64") if column.kind == "int" else values


# --- per table --------------------------------------------------------------------------------------------


def _duplicate_keys(frame: pd.DataFrame, table: Table, errors: _Findings) -> None:
    """Every row sharing a key is quarantined: which one is right cannot be known."""
    keys = frame[table.key]
    dup = keys.notna() & keys.duplicated(keep=False)
    errors.add(table.name, frame.index[dup], "duplicate_key", table.key)


def _wound_rules(wounds: pd.DataFrame, extract_date: pd.Timestamp, errors: _Findings) -> None:
    """Required-iff fields per wound type and the end date limit."""
    is_pi = wounds["wound_type"] == "pressure_injury"
    is_dfu = wounds["wound_type"] == "diabetic_foot_ulcer"
    typed = wounds["wound_type"].notna()
    stage, grade = wounds["pi_stage"].notna(), wounds["wagner_grade"].notna()
    errors.add("wounds", wounds.index[is_pi & ~stage], "missing_required", "pi_stage")
    errors.add("wounds", wounds.index[typed & ~is_pi & stage], "not_applicable", "pi_stage")
    errors.add("wounds", wounds.index[is_dfu & ~grade], "missing_required", "wagner_grade")
    errors.add("wounds", wounds.index[typed & ~is_dfu & grade], "not_applicable", "wagner_grade")
    late = wounds["end_date"] > extract_date
    errors.add("wounds", wounds.index[late], "end_after_extract_date", "end_date")


def _assessment_rules(
    assessments: pd.DataFrame,
    wounds: pd.DataFrame,
    extract_date: pd.Timestamp,
    limits: SafetyThresholds,
    errors: _Findings,
    warnings: _Findings,
) -> None:
    """Consistency and clinical-safety rules of one assessment, using its wound's fields and the extract date."""
    a = assessments
    wound = _wound_fields(a, wounds)
    length, width = a["length_cm"], a["width_cm"]
    closed = (length == 0) & (width == 0)
    one_zero = ((length == 0) | (width == 0)) & ~closed
    errors.add("assessments", a.index[one_zero], "zero_dimension_open", "length_cm")

    depth_optional = wound["pi_stage"].isin(PI_STAGES_WITHOUT_DEPTH).to_numpy()
    wound_known = wound["wound_type"].notna().to_numpy()
    no_depth = a["depth_cm"].isna().to_numpy() & ~depth_optional & wound_known
    errors.add("assessments", a.index[no_depth], "missing_required", "depth_cm")

    too_big = a["area_cm2"] > length * width * (1 + limits.area_tolerance) + 1e-9
    errors.add("assessments", a.index[too_big], "area_exceeds_dimensions", "area_cm2")

    tissue_sum = a[list(TISSUE_PCT_COLUMNS)].sum(axis=1, min_count=len(TISSUE_PCT_COLUMNS))
    off = tissue_sum.notna() & ~tissue_sum.between(limits.tissue_sum_low, limits.tissue_sum_high) & ~closed
    errors.add("assessments", a.index[off], "tissue_sum", "granulation_pct")

    bmi_calc = a["weight_kg"] / (a["height_cm"] / 100) ** 2
    mismatch = (a["bmi"] - bmi_calc).abs() > limits.bmi_tolerance
    errors.add("assessments", a.index[mismatch], "bmi_mismatch", "bmi")

    visit = a["wound_key"].notna() & a["assessed_on"].notna()
    same_day = visit & a.duplicated(["wound_key", "assessed_on"], keep=False)
    errors.add("assessments", a.index[same_day], "duplicate_visit_day", "assessed_on")
    warnings.add("assessments", a.index[a["assessed_on"] > extract_date], "assessed_after_extract_date", "assessed_on")

    healed_by_then = (wound["end_reason"] == "healed").to_numpy() & ~(wound["end_date"] > a["assessed_on"]).to_numpy()
    not_healed = closed & wound_known & ~healed_by_then
    errors.add("assessments", a.index[not_healed], "closed_but_not_healed", "length_cm")

    _compression_rules(a, wound, limits, errors, warnings)
    npwt_eschar = (a["npwt"] == True) & (a["eschar_pct"] > 0)  # noqa: E712 (nullable boolean)
    warnings.add("assessments", a.index[npwt_eschar.fillna(False)], "npwt_with_eschar", "npwt")


def _compression_rules(
    a: pd.DataFrame, wound: pd.DataFrame, limits: SafetyThresholds, errors: _Findings, warnings: _Findings
) -> None:
    """Compression against the wound's latest ankle-brachial index on record at that visit."""
    compression = (a["compression"] == True).fillna(False).to_numpy()  # noqa: E712
    order = a.sort_values(["wound_key", "assessed_on"]).index
    latest_abi = a.loc[order].groupby("wound_key", dropna=False)["ankle_brachial_index"].ffill().reindex(a.index)
    no_abi = compression & latest_abi.isna().to_numpy()
    lower_limb = wound["location"].isin(LOWER_EXTREMITY_LOCATIONS).to_numpy()
    contraindicated = compression & (latest_abi < limits.abi_contraindicated_below).to_numpy()
    reduced = (
        compression
        & latest_abi.between(limits.abi_contraindicated_below, limits.abi_reduced_below, inclusive="left").to_numpy()
    )
    errors.add("assessments", a.index[contraindicated], "compression_contraindicated", "compression")
    warnings.add("assessments", a.index[no_abi & lower_limb], "compression_without_abi", "compression")
    warnings.add("assessments", a.index[reduced], "compression_reduced_abi", "compression")


def _wound_fields(assessments: pd.DataFrame, wounds: pd.DataFrame) -> pd.DataFrame:
    """The wound columns each assessment row needs, aligned to the assessments' index (unique wounds only)."""
    unique = wounds.drop_duplicates("wound_key", keep=False).set_index("wound_key")
    cols = ["wound_type", "location", "pi_stage", "end_date", "end_reason"]
    return unique.reindex(assessments["wound_key"].to_numpy())[cols].set_index(assessments.index)


def _wound_vs_assessments(wounds: pd.DataFrame, assessments: pd.DataFrame, errors: _Findings) -> None:
    """Onset not after, and end not before, the wound's first assessment (among assessments without errors)."""
    sound = assessments.drop(index=errors.rows("assessments"))
    first = sound.groupby("wound_key")["assessed_on"].min()
    first_visit = first.reindex(wounds["wound_key"].to_numpy()).to_numpy()
    onset_late = (wounds["onset_date"].to_numpy() > first_visit) & wounds["onset_date"].notna().to_numpy()
    end_early = (wounds["end_date"].to_numpy() < first_visit) & wounds["end_date"].notna().to_numpy()
    errors.add("wounds", wounds.index[onset_late], "onset_after_first_assessment", "onset_date")
    errors.add("wounds", wounds.index[end_early], "end_before_first_assessment", "end_date")


def _cascade(typed: dict[str, pd.DataFrame], errors: _Findings) -> None:
    """Children of missing parents are orphans; children of quarantined parents follow them into quarantine."""
    for child in ("wounds", "assessments"):
        table = TABLES[child]
        assert table.parent is not None and table.parent_key is not None  # wounds and assessments have parents
        parent = typed[table.parent]
        parent_key = TABLES[table.parent].key
        bad_parents = parent.loc[errors.rows(table.parent), parent_key].dropna()
        fk = typed[child][table.parent_key]
        known = fk.isin(parent[parent_key].dropna())
        errors.add(child, fk.index[fk.notna() & ~known], "orphan", table.parent_key)
        errors.add(child, fk.index[fk.isin(bad_parents)], "parent_quarantined", table.parent_key)


# --- output -----------------------------------------------------------------------------------------------


def _assemble(
    raw: dict[str, RawTable],
    typed: dict[str, pd.DataFrame],
    errors: _Findings,
    warnings: _Findings,
    extract_date: dt.date,
    thresholds: SafetyThresholds,
) -> ValidationResult:
    found = errors.frame()
    flagged = warnings.frame()
    clean, quarantine_parts, warning_parts, tables = {}, [], [], {}
    for name in TABLE_ORDER:
        hits = found[found["table"] == name]
        bad_rows = np.unique(hits["row"].to_numpy(dtype=np.int64))
        frame = typed[name]
        kept = frame.drop(index=bad_rows)
        if name == "wounds":
            kept["end_reason"] = kept["end_reason"].fillna("open")  # contract: empty means open
        clean[name] = kept.reset_index(drop=True)
        quarantine_parts.append(_quarantine_rows(raw[name], frame, hits, bad_rows))
        kept_warnings = flagged[(flagged["table"] == name) & ~flagged["row"].isin(bad_rows)]
        warning_parts.append(kept_warnings)
        tables[name] = {
            "file": raw[name].file,
            "input_rows": len(frame),
            "clean_rows": len(kept),
            "quarantined_rows": len(bad_rows),
            "rows_with_warnings": int(kept_warnings["row"].nunique()),
            "unknown_columns": raw[name].unknown_columns,
            "errors_by_rule": _counts(hits),
            "warnings_by_rule": _counts(kept_warnings),
        }
    quarantine = pd.concat(quarantine_parts, ignore_index=True)
    warning_rows = _with_keys(pd.concat(warning_parts, ignore_index=True), typed)
    return ValidationResult(clean, quarantine, warning_rows, _report(tables, extract_date, thresholds))


def _quarantine_rows(raw: RawTable, typed: pd.DataFrame, hits: pd.DataFrame, bad_rows: np.ndarray) -> pd.DataFrame:
    """One quarantine row per bad input row: its first reason, all reasons, and the original cells."""
    columns = ["table", "row_number", "key", "rule", "field", "message", "reasons", "raw"]
    if not len(bad_rows):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    hits = hits.sort_values("row", kind="stable")
    rows = hits["row"].to_numpy(dtype=np.int64)
    records = hits[["rule", "field", "message"]].to_dict("records")
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # rows[starts] == bad_rows (sorted, unique)
    reasons = [records[a:b] for a, b in zip(starts, [*starts[1:], len(rows)], strict=True)]
    return pd.DataFrame(
        {
            "table": raw.name,
            "row_number": bad_rows + 1,  # 1-based data row, header excluded
            "key": typed[TABLES[raw.name].key].to_numpy()[bad_rows],
            "rule": [r[0]["rule"] for r in reasons],
            "field": [r[0]["field"] for r in reasons],
            "message": [r[0]["message"] for r in reasons],
            "reasons": reasons,
            "raw": raw.frame.iloc[bad_rows].to_dict("records"),
        }
    )


def _with_keys(flags: pd.DataFrame, typed: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = flags["row"].to_numpy(dtype=np.int64)
    keys = np.empty(len(flags), dtype=object)
    for name, frame in typed.items():
        mine = (flags["table"] == name).to_numpy()
        keys[mine] = frame[TABLES[name].key].to_numpy()[rows[mine]]
    out = flags.assign(row_number=rows + 1, key=keys)
    return out[["table", "row_number", "key", "rule", "field", "message"]].reset_index(drop=True)


def _counts(hits: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in hits["rule"].value_counts().sort_index().items()}


def _report(tables: dict[str, dict], extract_date: dt.date, thresholds: SafetyThresholds) -> dict:
    totals = {k: sum(t[k] for t in tables.values()) for k in ("input_rows", "clean_rows", "quarantined_rows")}
    return {
        "contract_version": CONTRACT_VERSION,
        "extract_date": extract_date.isoformat(),
        "thresholds": asdict(thresholds),
        "tables": tables,
        **totals,
        "quarantined_share": totals["quarantined_rows"] / totals["input_rows"] if totals["input_rows"] else 0.0,
        "reconciled": all(t["input_rows"] == t["clean_rows"] + t["quarantined_rows"] for t in tables.values()),
    }
