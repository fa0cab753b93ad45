"""Everything the API answers for one wound history, given a healing-model scorer: pure Python.

derive -> features -> the latest visit's interval hazards -> trajectory, progress, ranked treatment options (the
options reuse the latest visit's hazards, shifted per plan by the model's treatment effects).
The scorer is any `margins(rows) -> list[list[float]]` (compiled in serving, scikit-learn as the reference), and
`meta` is the model's serving metadata (`HealingModel.serving_meta()`, stored in the bundle).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model_build.costs import CostCatalog
from model_build.features import history_features
from model_build.progress import ProgressWeights, progress
from model_build.recommend import RuleTable, treatment_options
from model_build.trajectory import Curve, trajectory

Margins = Callable[[list[dict[str, Any]]], list[list[float]]]


@dataclass(frozen=True)
class OptionsRequest:
    """What the caller asks of the treatment options."""

    objective: str = "fastest"
    min_p_healed_12w: float = 0.0
    horizon_weeks: int = 52


@dataclass(frozen=True)
class Scorer:
    """A healing model ready to answer: its margins function and serving metadata."""

    version: str
    margins: Margins
    meta: Mapping[str, Any]

    @property
    def edges(self) -> list[float]:
        return list(self.meta["interval_edges_days"])


def predict_history(
    patient: Mapping[str, Any],
    wound: Mapping[str, Any],
    assessments: Sequence[Mapping[str, Any]],
    scorer: Scorer,
    catalog: CostCatalog,
    rules: RuleTable,
    ask: OptionsRequest,
) -> dict[str, Any]:
    """Prediction, trajectory, progress and ranked options at the wound's latest visit.

    A wound whose latest visit is closed (length = width = 0) gets no prediction: it has healed.
    """
    rows = history_features(patient, wound, assessments)
    latest = rows[-1]
    weights = ProgressWeights(**scorer.meta["progress"])
    result: dict[str, Any] = {"model_version": scorer.version, "progress": progress(rows, weights)}
    if latest["area_cm2"] == 0:
        result["status"] = "healed"
        return result
    margins = scorer.margins([latest])[0]
    curve = Curve(tuple(scorer.edges), tuple(margins))
    horizon = min(ask.horizon_weeks, int(curve.horizon_days // 7))
    result["status"] = "open"
    result["prediction"] = trajectory(curve, latest["area_cm2"], scorer.meta["area_shape"], horizon)

    def margins_of(rows: list[dict[str, Any]]) -> list[list[float]]:
        """The options score the latest visit as recorded (already scored above) unless its plan is incomplete."""
        return [margins] if rows == [latest] else scorer.margins(rows)

    result["options"] = treatment_options(
        latest,
        margins_of,
        scorer.edges,
        catalog,
        rules,
        scorer.meta["support"],
        scorer.meta["treatment_effects"],
        objective=ask.objective,
        min_p_healed_12w=ask.min_p_healed_12w,
        horizon_weeks=horizon,
    )
    return result
