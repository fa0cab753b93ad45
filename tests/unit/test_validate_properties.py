"""Property: for ANY corruption of an extract, every input row ends in clean or quarantine exactly once."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from woundcare_testing import tiny_extract_rows, write_rows

from model_build.schema import TABLE_ORDER, TABLES
from model_build.validate import validate_extract

NASTY = ["", " ", "nan", "NaN", "inf", "-inf", "1e309", "-0", "NULL", "None", "true", "TRUE", "1", "0", "3,5",
         " 3 ", "１２", "2026-02-29", "2026-13-01", "0001-01-01", "9999-12-31", "2026-01-05T00:00", "💥", "'", '"',
         "a\nb", "x" * 300, "60.0000001", "-1e-300", "0x10", "1_000"]  # fmt: skip

cell_values = st.one_of(
    st.sampled_from(NASTY),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 1, 1)).map(str),
)


@st.composite
def corrupted_extracts(draw):
    """The tiny extract with random cells overwritten, rows duplicated and rows deleted."""
    rows = tiny_extract_rows()
    for _ in range(draw(st.integers(0, 12))):
        table = draw(st.sampled_from(TABLE_ORDER))
        if not rows[table]:
            continue
        row = draw(st.sampled_from(rows[table]))
        row[draw(st.sampled_from(list(TABLES[table].column_names)))] = draw(cell_values)
    for table in TABLE_ORDER:
        if rows[table] and draw(st.booleans()):
            rows[table].append(dict(draw(st.sampled_from(rows[table]))))
        if len(rows[table]) > 1 and draw(st.integers(0, 4)) == 0:
            rows[table].pop(draw(st.integers(0, len(rows[table]) - 1)))
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=corrupted_extracts())
def test_every_row_ends_in_clean_or_quarantine_exactly_once(rows):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_rows(Path(tmp) / "x", rows)
        result = validate_extract(folder, extract_date=dt.date(2026, 3, 1))
    assert result.report["reconciled"] is True
    for table in TABLE_ORDER:
        key = TABLES[table].key
        q = result.quarantine[result.quarantine["table"] == table]
        numbers = list(q["row_number"])
        # no row is quarantined twice, and every quarantined row exists in the input
        assert len(numbers) == len(set(numbers))
        assert all(1 <= n <= len(rows[table]) for n in numbers)
        # the clean rows are exactly the input rows that were not quarantined
        kept_keys = [r[key].strip() for i, r in enumerate(rows[table], start=1) if i not in set(numbers)]
        assert list(result.clean[table][key]) == kept_keys
        counts = result.report["tables"][table]
        assert counts["input_rows"] == len(rows[table]) == counts["clean_rows"] + counts["quarantined_rows"]
        # every quarantined row carries at least one reason naming a rule and a field
        assert all(r and all(x["rule"] and x["field"] for x in r) for r in q["reasons"])
    # no clean child points at a missing or quarantined parent
    clean = result.clean
    assert set(clean["wounds"]["patient_key"]) <= set(clean["patients"]["patient_key"])
    assert set(clean["assessments"]["wound_key"]) <= set(clean["wounds"]["wound_key"])
