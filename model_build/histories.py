"""One wound's history as the inference API receives it (JSON-like dicts), from typed clean tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a typed clean table as the API receives them: ISO dates, None for missing, plain numbers."""

    def plain(value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.date().isoformat()
        return value.item() if hasattr(value, "item") else value

    return [{k: plain(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")]


def wound_history(clean: Mapping[str, pd.DataFrame], wound_key: str) -> tuple[dict, dict, list[dict]]:
    """(patient, wound, assessments) of one wound from clean tables, as JSON-like dicts."""
    wound = json_records(clean["wounds"][clean["wounds"]["wound_key"] == wound_key])[0]
    patient = json_records(clean["patients"][clean["patients"]["patient_key"] == wound["patient_key"]])[0]
    visits = json_records(clean["assessments"][clean["assessments"]["wound_key"] == wound_key])
    return patient, wound, visits
