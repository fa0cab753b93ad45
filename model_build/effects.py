"""Treatment effects for contrasts between plans, estimated with an explicit severity adjustment.

The boosted healing model predicts a wound's prognosis under its current plan, but it barely splits on the treatment
features (they are confounded with strong severity splits), so substituting another plan into it recovers about a
tenth of the true contrasts (docs/recommender.md). The recommender therefore shifts the boosted margins by

    tau(plan, wound type) - tau(current plan, wound type),  tau(plan, type) = sum of its components' effects

with the effects estimated here: an L2-penalised discrete-time logistic model (the healing model's link, so an
effect adds to its margins) on FIRST-VISIT landmarks only, since later visits carry mediators such as the area
reduction so far, which would absorb the effect. Terms: interval dummies and a per-wound-type log-time slope (the
baseline hazard and its shape), every other feature as a severity covariate (numerics standardised, with missing
indicators; categoricals one-hot; not the wound-bed composition, which the plan changes at once), and the plan
components: each intervention with a pooled effect plus a wound-type deviation where enough wounds of that type had
it (shrunk harder, so rare cells borrow the pooled effect), debridement kinds against none and dressing classes
against the most used one (pooled). Assumptions (no unmeasured confounding, positivity, proportional effects) are in
docs/recommender.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import expit

from model_build.features import CATEGORICAL_FEATURES, FEATURE_NAMES, TREATMENT_FEATURE_NAMES
from model_build.features_table import Landmarks
from model_build.plans import INTERVENTIONS
from model_build.survival import person_periods

# Not adjusted for: the wound-bed composition recorded at the visit a plan starts is already changed by it (eschar
# is removed before NPWT, debridement clears slough), so it is partly an outcome of the plan; conditioning on it
# biased the NPWT effect towards harm in the synthetic cohorts (docs/recommender.md).
NOT_ADJUSTED: tuple[str, ...] = ("eschar_pct", "slough_pct", "granulation_pct", "epithelial_pct", "dominant_tissue")
NOT_ADJUSTED += ("push_tissue_score", "push_total")
# Skewed non-negative sizes and durations enter on the log scale (healing slows per doubling, not per cm²).
LOG_SCALE = ("area_cm2", "volume_cm3", "first_area_cm2", "wound_age_days", "length_cm", "width_cm", "depth_cm")
# Ridge penalties (prior precision) per kind of term: interventions and debridement get a prior SD of 0.5 on the log
# odds ratio, a wound type's deviation from the pooled effect 0.22, so components few wounds received stay near no
# effect; dressing classes 0.14, as healing barely differs between moist dressings (domain-facts.md).
PENALTY = {"baseline": 1e-3, "covariate": 1.0, "effect": 4.0, "deviation": 20.0, "dressing": 50.0}
MIN_WOUNDS_PER_CELL = 10  # a wound type gets its own deviation for an intervention with this many exposed wounds
# A component fewer wounds received gets no effect (0: predicted as the plan without it); its options carry the
# low-support caveat. Its term stays in the fit, so its wounds do not blur the other effects.
MIN_EXPOSED_WOUNDS = 20
METHOD = (
    "L2-penalised discrete-time logistic model on first-visit landmarks (interval dummies, per-wound-type "
    "log-time slope, severity covariates with missing indicators, plan components); effects are log odds ratios "
    "of the interval hazard of healing, added to the healing model's margins."
)


def fit_treatment_effects(train: Landmarks, edges: Sequence[float] | NDArray[np.float64]) -> dict[str, Any]:
    """Severity-adjusted effects of the plan components on healing, JSON-able for the serving metadata."""
    known_plan = train.X[list(TREATMENT_FEATURE_NAMES)].notna().all(axis=1).to_numpy()
    first = (train.X["days_since_first_assessment"] == 0).to_numpy() & known_plan
    X = train.X[first].reset_index(drop=True)
    time, event = train.time_days[first], train.event[first].astype(bool)
    edge_array = np.asarray(edges, dtype=np.float64)
    rows, interval, label, weight = person_periods(time, event, edge_array)

    design = _Design(X)
    wound_matrix, names, penalties = design.wound_columns()
    baseline, baseline_names = _baseline(X["wound_type"].astype(str).to_numpy(), interval, edge_array, rows)
    matrix = np.hstack([baseline, wound_matrix[rows]])
    penalty = np.concatenate([np.full(len(baseline_names), PENALTY["baseline"]), penalties])
    beta, covariance = _penalised_logistic(matrix, label.astype(np.float64), weight, penalty)
    coef = dict(zip([*baseline_names, *names], range(len(penalty)), strict=True))
    effects, errors = design.report(beta, covariance, coef)
    return {
        "method": METHOD,
        "scale": "log odds ratio of the interval hazard of healing (per component, vs its reference)",
        "references": {"interventions": "absent", "debridement": "none", "dressing": design.dressing_reference},
        "effects": effects,
        "standard_errors": errors,
        "exposed_wounds": design.exposed,
        "min_exposed_wounds": MIN_EXPOSED_WOUNDS,
        "n_wounds": len(X),
        "n_events": int(event.sum()),
        "n_person_periods": len(label),
        "penalties": dict(PENALTY),
    }


class _Design:
    """Per-wound columns (severity covariates, plan components) with their penalties, and how to report them."""

    def __init__(self, X: pd.DataFrame) -> None:
        self.X = X
        self.wound_type = X["wound_type"].astype(str).to_numpy()
        dressing = X["primary_dressing"].astype(str)
        self.dressing_reference = str(dressing.value_counts().sort_index().idxmax())
        self.exposed: dict[str, dict[str, int]] = {}

    def wound_columns(self) -> tuple[NDArray[np.float64], list[str], NDArray[np.float64]]:
        """Severity covariates then plan components, one column per term, with each term's penalty."""
        terms = [*self._covariates(), *self._components()]
        names = [name for name, _, _ in terms]
        penalties = np.asarray([PENALTY[kind] for _, _, kind in terms])
        return np.column_stack([values for _, values, _ in terms]), names, penalties

    def _covariates(self) -> list[tuple[str, NDArray[np.float64], str]]:
        out = []
        for feature in FEATURE_NAMES:
            if feature in TREATMENT_FEATURE_NAMES or feature in NOT_ADJUSTED:
                continue
            if feature in CATEGORICAL_FEATURES:
                out += [(f"{feature}={level}", v, "covariate") for level, v in _one_hot(self.X[feature])]
            else:
                pieces = _standardised(self.X[feature], log=feature in LOG_SCALE)
                out += [(feature + suffix, v, "covariate") for suffix, v in pieces]
        return out

    def _components(self) -> list[tuple[str, NDArray[np.float64], str]]:
        out = []
        for name in INTERVENTIONS:
            exposed = self.X[name].to_numpy(dtype=np.float64) > 0
            counts = pd.Series(self.wound_type[exposed], dtype=object).value_counts().sort_index()
            self.exposed[name] = {"*": int(exposed.sum()), **{str(t): int(n) for t, n in counts.items()}}
            if not exposed.any() or exposed.all():
                continue
            out.append((name, exposed.astype(np.float64), "effect"))
            for wound_type, n in counts.items():
                of_type = self.wound_type == wound_type
                if min(n, int((of_type & ~exposed).sum())) >= MIN_WOUNDS_PER_CELL:
                    out.append((f"{name}|{wound_type}", (exposed & of_type).astype(np.float64), "deviation"))
        for feature, component, kind in (
            ("debridement", "debridement", "effect"),
            ("primary_dressing", "dressing", "dressing"),
        ):
            for level, indicator in _one_hot(self.X[feature], drop_single=False):
                out.append((f"{component}:{level}", indicator, kind))
                self.exposed[f"{component}:{level}"] = {"*": int(indicator.sum())}
        return out

    def report(
        self, beta: NDArray[np.float64], covariance: NDArray[np.float64], coef: dict[str, int]
    ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        """Each component's effect against its reference, pooled ("*") and per wound type, with standard errors;
        components fewer than MIN_EXPOSED_WOUNDS wounds received are left out."""
        effects: dict[str, dict[str, float]] = {}
        errors: dict[str, dict[str, float]] = {}

        def put(component: str, key: str, plus: Sequence[str], minus: Sequence[str] = ()) -> None:
            c = np.zeros(len(beta))
            for name in plus:
                c[coef[name]] += 1.0
            for name in minus:
                c[coef[name]] -= 1.0
            effects.setdefault(component, {})[key] = float(c @ beta)
            errors.setdefault(component, {})[key] = float(np.sqrt(c @ covariance @ c))

        supported = {c for c, by_type in self.exposed.items() if by_type["*"] >= MIN_EXPOSED_WOUNDS}
        for name in INTERVENTIONS:
            if name in coef and name in supported:
                put(name, "*", [name])
                for wound_type in sorted({k.split("|")[1] for k in coef if k.startswith(f"{name}|")}):
                    put(name, wound_type, [name, f"{name}|{wound_type}"])
        for component, reference in (("debridement", "none"), ("dressing", self.dressing_reference)):
            levels = sorted(k for k in coef if k.startswith(f"{component}:"))
            if f"{component}:{reference}" not in coef:
                continue
            for level in levels:
                if level != f"{component}:{reference}" and level in supported:
                    put(level, "*", [level], [f"{component}:{reference}"])
        return effects, errors


def _one_hot(column: pd.Series, drop_single: bool = True) -> list[tuple[str, NDArray[np.float64]]]:
    """Indicator per level (missing as its own level); nothing for a column with a single level."""
    values = column.astype(object).where(column.notna(), "__missing__").astype(str).to_numpy()
    levels = sorted(set(values))
    if drop_single and len(levels) < 2:
        return []
    return [(level, (values == level).astype(np.float64)) for level in levels]


def _standardised(column: pd.Series, log: bool) -> list[tuple[str, NDArray[np.float64]]]:
    """The numeric standardised (missing -> 0) and, if some values are missing, a missing indicator."""
    values = pd.to_numeric(column).to_numpy(dtype=np.float64, na_value=np.nan)
    if log:
        values = np.log1p(np.clip(values, 0.0, None))
    missing = np.isnan(values)
    out = []
    if (~missing).sum() > 1 and np.nanstd(values) > 0:
        out.append(("", np.where(missing, 0.0, (values - np.nanmean(values)) / np.nanstd(values))))
    if missing.any() and not missing.all():
        out.append((":missing", missing.astype(np.float64)))
    return out


def _baseline(
    wound_type: NDArray[np.str_], interval: NDArray[np.intp], edges: NDArray[np.float64], rows: NDArray[np.intp]
) -> tuple[NDArray[np.float64], list[str]]:
    """Interval dummies (the baseline hazard) and a log-time slope per wound type (its shape, as a Weibull's)."""
    n_int = len(edges) - 1
    dummies = np.zeros((len(interval), n_int))
    dummies[np.arange(len(interval)), interval] = 1.0
    log_mid = np.log((edges[:-1] + edges[1:]) / 2.0)
    centred = log_mid[interval] - log_mid.mean()
    types = sorted(set(wound_type))
    slopes = np.column_stack([(wound_type[rows] == t) * centred for t in types])
    names = [f"interval={k}" for k in range(n_int)] + [f"log_time|{t}" for t in types]
    return np.hstack([dummies, slopes]), names


def _penalised_logistic(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    weight: NDArray[np.float64],
    penalty: NDArray[np.float64],
    max_iter: int = 50,
    tol: float = 1e-7,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Newton's method on the weighted log-likelihood minus penalty·β²/2; returns β and the inverse of the
    penalised information (the coefficients' approximate covariance)."""
    beta = np.zeros(X.shape[1])

    def objective(b: NDArray[np.float64]) -> float:
        eta = X @ b
        return float(weight @ (y * eta - np.logaddexp(0.0, eta)) - 0.5 * penalty @ (b * b))

    current = objective(beta)
    for _ in range(max_iter):
        mu = expit(X @ beta)
        gradient = X.T @ (weight * (y - mu)) - penalty * beta
        information = (X.T * (weight * mu * (1.0 - mu))) @ X + np.diag(penalty)
        step = np.linalg.solve(information, gradient)
        scale = 1.0
        while (candidate := objective(beta + scale * step)) < current and scale > 1e-4:
            scale /= 2.0
        beta, current = beta + scale * step, candidate
        if np.max(np.abs(scale * step)) < tol:
            break
    mu = expit(X @ beta)
    information = (X.T * (weight * mu * (1.0 - mu))) @ X + np.diag(penalty)
    return beta, np.linalg.inv(information)
