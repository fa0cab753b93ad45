"""The progress metric: PUSH 3.0 and its trend, plus a learned score of weighted wound-level changes.

Each visit's change since the wound's first assessment in a few wound-level variables is standardised and
weighted; the weights are learned (at training) from how those changes relate to healing within 12 weeks, so
a positive score means "changing the way wounds that heal change". Pure Python: the inference Lambda imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model_build.precision import SCORE, rounded

# Variable name -> feature it is computed from; log area so that halving counts the same at any size.
PROGRESS_VARIABLES = {
    "log_area": "area_cm2",
    "depth_cm": "depth_cm",
    "granulation_pct": "granulation_pct",
    "slough_pct": "slough_pct",
    "eschar_pct": "eschar_pct",
    "epithelial_pct": "epithelial_pct",
    "push_exudate_score": "push_exudate_score",
    "infection": "infection",
}


def variable_values(row: Mapping[str, Any]) -> dict[str, float | None]:
    """Every progress variable at one visit, from that visit's feature row; None where missing or NaN."""
    values: dict[str, float | None] = {}
    for name, source in PROGRESS_VARIABLES.items():
        value = row.get(source)
        if value is None or value != value:  # missing or NaN
            values[name] = None
        else:
            values[name] = math.log1p(value) if name == "log_area" else float(value)
    return values


def changes_since_first(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    """Per visit (date order), each variable's change since the first visit; None where either is missing."""
    visits = [variable_values(row) for row in rows]
    out = []
    for values in visits:
        change = {}
        for name, now in values.items():
            then = visits[0][name]
            change[name] = None if now is None or then is None else now - then
        out.append(change)
    return out


@dataclass(frozen=True)
class ProgressWeights:
    """Learned weights on standardised changes (positive weight: that change goes with healing)."""

    weights: dict[str, float]
    scales: dict[str, float]  # standard deviation of each change in training

    def score(self, change: Mapping[str, float | None]) -> float:
        """Weighted standardised change; a missing change counts as no change."""
        total: float = 0
        for name, weight in self.weights.items():
            scale = self.scales[name]
            if scale > 0:
                total += weight * (change[name] or 0.0) / scale
        return total

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {"weights": self.weights, "scales": self.scales}


def progress(rows: Sequence[Mapping[str, Any]], weights: ProgressWeights) -> dict[str, Any]:
    """PUSH total and trend, and the learned score per visit and its change, for one wound's feature rows."""
    changes = changes_since_first(rows)
    visits = []
    for row, change in zip(rows, changes, strict=True):
        visits.append(
            {
                "days_since_first_assessment": _whole(row.get("days_since_first_assessment")),
                "push_total": _whole(row.get("push_total")),
                "progress_score": rounded(weights.score(change), SCORE),
            }
        )
    latest = visits[-1] if visits else {}
    previous = visits[-2] if len(visits) > 1 else None
    return {
        "push_total": latest.get("push_total"),
        "push_change_since_first": _difference(latest, visits[0] if visits else None, "push_total"),
        "push_change_since_previous": _difference(latest, previous, "push_total"),
        "progress_score": latest.get("progress_score"),
        "progress_change_since_previous": _difference(latest, previous, "progress_score"),
        "visits": visits,
    }


def _difference(now: Mapping[str, Any], before: Mapping[str, Any] | None, key: str) -> int | float | None:
    """The change in `key`: PUSH points as an integer, scores at their precision; None without both values."""
    if before is None or now.get(key) is None or before.get(key) is None:
        return None
    change = now[key] - before[key]
    return change if isinstance(change, int) else rounded(change, SCORE)


def _whole(value: float | None) -> int | None:
    """A feature that counts (days, PUSH points) as the integer it is; feature rows hold floats."""
    return None if value is None else int(value)
