"""The feature specification applied to whole clean tables (training), plus each landmark's censored target.

The vectorised twin of `model_build.features.history_features`; the parity test holds them identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model_build.derive_table import derive_assessments
from model_build.features import FEATURES

ID_COLUMNS = ("patient_key", "wound_key", "assessment_key", "assessed_on")


@dataclass
class Landmarks:
    """Training rows: ids, features (spec order), days from the visit to closure or censoring, and the event."""

    ids: pd.DataFrame
    X: pd.DataFrame
    time_days: np.ndarray
    event: np.ndarray


def feature_frame(patients: pd.DataFrame, wounds: pd.DataFrame, assessments: pd.DataFrame) -> pd.DataFrame:
    """One row per assessment, sorted by wound and date: ID_COLUMNS then every feature of the spec."""
    derived = derive_assessments(assessments, wounds)
    record = derived.merge(wounds, on="wound_key", how="left", suffixes=("", "_wound")).merge(
        patients, on="patient_key", how="left", suffixes=("", "_patient")
    )
    record = record.sort_values(["wound_key", "assessed_on"], kind="stable").reset_index(drop=True)
    group = record["wound_key"]
    first_row = np.flatnonzero(~group.duplicated().to_numpy())
    first_of = first_row[np.searchsorted(first_row, np.arange(len(record)), side="right") - 1]
    columns = {c: record[c] for c in ID_COLUMNS}
    for feature in FEATURES:
        values = _as_model_values(record[feature.source], feature.kind)
        if feature.rule == "carried":
            values = values.groupby(group.to_numpy(), sort=False).ffill()
        elif feature.rule == "first":
            values = pd.Series(values.to_numpy()[first_of], index=values.index)
        columns[feature.name] = values
    return pd.DataFrame(columns)


def _as_model_values(values: pd.Series, kind: str) -> pd.Series:
    """Floats with NaN for numerics (booleans 1/0); Python strings with None for categoricals."""
    if kind == "categorical":
        text = values if values.dtype == object else values.astype(str)
        return text.astype(object).where(values.notna(), None)
    return pd.Series(pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan), index=values.index)


def landmarks(patients: pd.DataFrame, wounds: pd.DataFrame, assessments: pd.DataFrame) -> Landmarks:
    """Landmark rows with their target: time from the visit to healing (event) or to censoring.

    Contract outcome: healed at end_date is the event; any other end is censored at end_date, or at the
    last assessment when end_date is empty. Visits at or after the end carry no follow-up and are left out.
    """
    frame = feature_frame(patients, wounds, assessments)
    last_visit = frame.groupby("wound_key")["assessed_on"].max()
    outcome = wounds.set_index("wound_key")[["end_date", "end_reason"]].reindex(frame["wound_key"])
    end = outcome["end_date"].fillna(last_visit.reindex(frame["wound_key"])).to_numpy()
    time_days = (end - frame["assessed_on"].to_numpy()) / np.timedelta64(1, "D")
    event = (outcome["end_reason"] == "healed").to_numpy()
    keep = time_days > 0
    kept = frame[keep].reset_index(drop=True)
    return Landmarks(
        ids=kept[list(ID_COLUMNS)],
        X=kept[[f.name for f in FEATURES]],
        time_days=time_days[keep].astype(np.float64),
        event=event[keep],
    )
