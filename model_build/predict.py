"""Everything the API answers for one wound history, given a healing-model scorer: pure Python.

derive -> features -> the latest visit's interval hazards -> trajectory, progress, ranked treatment options (the
options reuse the latest visit's hazards, shifted per plan by the model's treatment effects).
The scorer is any `margins(rows) -> list[list[float]]` (compiled in serving, scikit-learn as the reference), and
`meta` is the model's serving metadata (`HealingModel.serving_meta()`, stored in the bundle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from model_build.costs import CostCatalog
from model_build.derive import is_closed
from model_build.features import history_features
from model_build.progress import ProgressWeights, progress
from model_build.recommend import Margins, RuleTable, TreatmentEffects, treatment_options
from model_build.trajectory import Summarise, summarise_curves, trajectory

# Ends after which a wound can no longer heal under care: no prediction, the status says why.
FINAL_ENDS = ("healed", "died", "amputated")
# Ends of the course of care here, the wound perhaps still open elsewhere: predicted from its last visit.
CARE_ENDS = ("discharged", "transferred")


@dataclass(frozen=True)
class OptionsRequest:
    """What the caller asks of the treatment options."""

    objective: str = "fastest"
    min_p_healed_12w: float = 0.0
    horizon_weeks: int = 52
    max_options: int = 5  # how many of the ranked plans the answer describes


@dataclass(frozen=True)
class Scorer:
    """A healing model ready to answer: its margins function, serving metadata and curve arithmetic."""

    version: str
    margins: Margins
    meta: Mapping[str, Any]
    summarise: Summarise = summarise_curves

    @cached_property
    def treatment_effects(self) -> TreatmentEffects:
        """The model's treatment effects, read once per model (`model_build.recommend.TreatmentEffects`)."""
        return TreatmentEffects(self.meta["treatment_effects"])

    @property
    def edges(self) -> list[float]:
        return list(self.meta["interval_edges_days"])

    @property
    def horizon_weeks(self) -> int:
        """The longest horizon the model can answer for: whole weeks within its last interval edge."""
        return int(self.meta["interval_edges_days"][-1] // 7)


def predict_history(
    patient: Mapping[str, Any],
    wound: Mapping[str, Any],
    assessments: Sequence[Mapping[str, Any]],
    scorer: Scorer,
    catalog: CostCatalog,
    rules: RuleTable,
    ask: OptionsRequest,
) -> dict[str, Any]:
    """Prediction, trajectory, progress and ranked options at the wound's latest visit."""
    rows = history_features(patient, wound, assessments)
    return predict_features(rows, scorer, catalog, rules, ask, wound.get("end_reason"))


def predict_features(
    rows: Sequence[dict[str, Any]],
    scorer: Scorer,
    catalog: CostCatalog,
    rules: RuleTable,
    ask: OptionsRequest,
    end_reason: str | None = None,
) -> dict[str, Any]:
    """`predict_history` from the history's feature rows (`history_features`) and the wound's end_reason.

    No prediction when the latest visit is closed (length = width = 0: status "healed") or the wound's record
    ends it for good (`FINAL_ENDS`: the status is its end_reason). A discharged or transferred wound may still be
    open elsewhere: it is predicted from its last visit.
    """
    latest = rows[-1]
    weights = ProgressWeights(**scorer.meta["progress"])
    result: dict[str, Any] = {"model_version": scorer.version, "progress": progress(rows, weights)}
    ended = "healed" if is_closed(latest) else end_reason if end_reason in FINAL_ENDS else None
    if ended:
        result["status"] = ended
        return result
    margins = scorer.margins([latest])[0]
    edges = scorer.edges
    horizon = min(ask.horizon_weeks, scorer.horizon_weeks)
    result["status"] = "open"
    result["prediction"] = trajectory(
        edges, margins, latest["area_cm2"], scorer.meta["area_shape"], horizon, scorer.summarise
    )

    def margins_of(rows: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        """The options score the latest visit as recorded (already scored above) unless its plan is incomplete."""
        return [margins] if rows == [latest] else scorer.margins(rows)

    result["options"] = treatment_options(
        latest,
        margins_of,
        edges,
        catalog,
        rules,
        scorer.meta["support"],
        scorer.treatment_effects,
        objective=ask.objective,
        min_p_healed_12w=ask.min_p_healed_12w,
        horizon_weeks=horizon,
        max_options=ask.max_options,
        summarise=scorer.summarise,
    )
    return result
