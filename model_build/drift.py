"""Drift of a new feature frame against the production model's reference profile, and the retrain decision.

Training saves `reference_profile(frame)` beside each model; the DriftCheck stage runs `compare(reference, new)`.

Patients are the units: every patient weighs 1, shared by their wounds, then by each wound's visits, and the
tests take the number of patients as their sample size (visits of one wound, wounds of one patient, are not
independent; weighted per visit, long-followed wounds would dominate and the mix would look noisier than it is).

Per-feature rule, by type then sample size:
- fewer than `min_units` patients with a value on either side: not tested (`insufficient_data`).
- continuous numeric (more than DISCRETE_MAX_LEVELS distinct reference values): two-sample KS test for
  significance and the 1-Wasserstein distance over the reference std for size, both on the quantile sketches;
  the missing share is tested apart (chi² on present/missing, with an absolute floor).
- categorical, and numeric with few distinct values (flags, grades, scores): chi² test of homogeneity (missing
  is a level; levels with an expected count below 5 are pooled) for significance, Jensen–Shannon distance for size.
A feature drifts when its test is significant AND its effect reaches the floor: with thousands of patients every
test is significant, so the floor decides; the test keeps small samples from raising alarms on noise.
PSI over the reference bins (deciles or levels, plus missing) is reported for every feature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from model_build.features import FEATURES

PROFILE_FORMAT = 1
SKETCH_SIZE = 100  # quantiles kept per numeric feature: KS and Wasserstein run on these, not on rows
DISCRETE_MAX_LEVELS = 25  # numeric features with at most this many distinct values are compared as levels
MATURITY_DAYS = 84  # an outcome has matured when the wound's 12-week status is known
MISSING = "(missing)"
PSI_FLOOR = 1e-4  # empty bins get this share so PSI stays finite (a common convention)
# PSI bands: < 0.1 stable, 0.1-0.25 moderate shift, >= 0.25 major shift (Siddiqi, Credit Risk Scorecards, 2006).
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
NO_RETRAIN_NEEDED = "NoRetrainNeeded"

_PROBS = (np.arange(SKETCH_SIZE) + 0.5) / SKETCH_SIZE
_DECILES = np.arange(1, 10) / 10


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature, the data set and the run count as drifted; the effect floors are assumed, configurable."""

    alpha: float = 0.01  # per-feature test level; the effect floors, not alpha, decide at large samples
    wasserstein_min: float = 0.1  # W1 / reference std: a tenth of a standard deviation (Evidently's default)
    js_distance_min: float = 0.07  # Jensen–Shannon distance (base 2, 0-1): about an 8-point move of a 40 % share
    missing_shift_min: float = 0.1  # absolute change of a continuous feature's missing share
    min_units: int = 30  # fewer patients with a value on either side: not tested
    max_drifted_share: float = 0.3  # data-set drift when more than this share of the tested features drifts
    key_features: tuple[str, ...] = ("area_cm2", "wound_type", "care_setting", "age_years")  # any one: drift
    min_new_matured_outcomes: int = 200  # enough new matured outcomes to retrain without drift


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison: test, effect size, PSI and the per-bin shares behind it (for the report)."""

    name: str
    kind: str  # continuous | discrete | categorical
    method: str  # ks+wasserstein | chi2+jensen_shannon | missing_share | insufficient_data
    units_reference: float  # patients: the sample size of the tests
    units_current: float
    statistic: float | None  # KS D or chi²
    p_value: float | None
    effect: float | None  # W1 / reference std, or Jensen–Shannon distance
    missing_reference: float
    missing_current: float
    psi: float | None
    drifted: bool
    bins: tuple[str, ...] = ()
    reference_shares: tuple[float, ...] = ()
    current_shares: tuple[float, ...] = ()

    @property
    def psi_band(self) -> str | None:
        if self.psi is None:
            return None
        return "stable" if self.psi < PSI_MODERATE else "moderate" if self.psi < PSI_MAJOR else "major"


@dataclass(frozen=True)
class DriftResult:
    """Per-feature drift, the data-set verdict, new matured outcomes and whether to retrain (and why)."""

    features: tuple[FeatureDrift, ...]
    thresholds: DriftThresholds
    share_drifted: float
    drift_detected: bool
    new_matured_outcomes: int | None
    has_production_model: bool
    force: bool
    retrain_reasons: tuple[str, ...] = ()

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def key_features_drifted(self) -> tuple[str, ...]:
        return tuple(n for n in self.drifted_features if n in self.thresholds.key_features)

    @property
    def retrain_recommended(self) -> bool:
        return bool(self.retrain_reasons)

    @property
    def decision(self) -> str:
        return "Retrain" if self.retrain_recommended else NO_RETRAIN_NEEDED

    def as_dict(self) -> dict:
        """Plain JSON-able values (no NaN), the drift report's JSON."""
        features = [asdict(f) | {"psi_band": f.psi_band} for f in self.features]
        return asdict(self) | {
            "features": features,
            "drifted_features": list(self.drifted_features),
            "key_features_drifted": list(self.key_features_drifted),
            "retrain_recommended": self.retrain_recommended,
            "decision": self.decision,
        }


def matured_outcomes(wounds: pd.DataFrame, assessments: pd.DataFrame, horizon_days: int = MATURITY_DAYS) -> dict:
    """Assessed wounds whose 12-week outcome is known: healed (event) or censored after `horizon_days` of follow-up.

    Follow-up runs from the first assessment to end_date, or to the last assessment when end_date is empty.
    """
    visits = assessments.groupby("wound_key")["assessed_on"].agg(["min", "max"])
    outcome = wounds.set_index("wound_key")[["end_date", "end_reason"]].reindex(visits.index)
    follow_up_days = (outcome["end_date"].fillna(visits["max"]) - visits["min"]).dt.days
    events = outcome["end_reason"].eq("healed")
    censored = ~events & (follow_up_days >= horizon_days)
    return {
        "horizon_days": horizon_days,
        "events": int(events.sum()),
        "censored_beyond_horizon": int(censored.sum()),
        "matured": int(events.sum() + censored.sum()),
    }


def reference_profile(frame: pd.DataFrame, outcomes: dict | None = None) -> dict:
    """A compact JSON-able summary of a feature frame (counts, bins, quantile sketches; no rows, no keys).

    `outcomes` (from `matured_outcomes`) lets a later run count the matured outcomes that arrived since.
    """
    absent = [f.name for f in FEATURES if f.name not in frame]
    if absent:
        raise ValueError(f"feature frame lacks features {absent}")
    weights = _patient_weights(frame)
    return {
        "format": PROFILE_FORMAT,
        "rows": len(frame),
        "patients": _count_units(frame, "patient_key"),
        "wounds": _count_units(frame, "wound_key"),
        "outcomes": dict(outcomes) if outcomes is not None else None,
        "features": {f.name: _profile_feature(frame[f.name], weights, f.kind) for f in FEATURES},
    }


def compare(
    reference: dict,
    current: pd.DataFrame | dict,
    thresholds: DriftThresholds | None = None,
    *,
    current_outcomes: dict | None = None,
    has_production_model: bool = True,
    force: bool = False,
) -> DriftResult:
    """Drift of `current` (a feature frame or its profile) against `reference`, and the retrain decision.

    `current_outcomes` is used when `current` is a frame. New matured outcomes are the difference of the two
    profiles' counts: extracts are cumulative snapshots, so every earlier outcome is in the new one too.
    """
    th = thresholds or DriftThresholds()
    profile = current if isinstance(current, dict) else reference_profile(current, current_outcomes)
    absent = [name for name in reference["features"] if name not in profile["features"]]
    if absent:
        raise ValueError(f"current data lacks features {absent}")
    features = tuple(
        _compare_feature(name, entry, profile["features"][name], th) for name, entry in reference["features"].items()
    )
    tested = [f for f in features if f.method != "insufficient_data"]
    share = sum(f.drifted for f in tested) / len(tested) if tested else 0.0
    key_drift = any(f.drifted and f.name in th.key_features for f in features)
    drift = share > th.max_drifted_share or key_drift
    new_outcomes = _new_matured(reference.get("outcomes"), profile.get("outcomes"))
    reasons = retrain_reasons(
        has_production_model=has_production_model,
        drift_detected=drift,
        new_matured_outcomes=new_outcomes,
        force=force,
        min_new_matured_outcomes=th.min_new_matured_outcomes,
    )
    return DriftResult(features, th, share, drift, new_outcomes, has_production_model, force, reasons)


def retrain_reasons(
    *,
    has_production_model: bool,
    drift_detected: bool,
    new_matured_outcomes: int | None,
    force: bool,
    min_new_matured_outcomes: int,
) -> tuple[str, ...]:
    """Why a retrain is worth running; empty means NoRetrainNeeded (unknown new outcomes count as none)."""
    conditions = {
        "forced": force,
        "no_production_model": not has_production_model,
        "drift": drift_detected,
        "new_outcomes": (new_matured_outcomes or 0) >= min_new_matured_outcomes,
    }
    return tuple(reason for reason, holds in conditions.items() if holds)


def psi(reference_counts, current_counts) -> float:
    """Population stability index, sum of (c - r) * ln(c / r) over the bins' shares (empty bins floored)."""
    r = np.asarray(reference_counts, dtype=float)
    c = np.asarray(current_counts, dtype=float)
    r = np.maximum(r / r.sum(), PSI_FLOOR)
    c = np.maximum(c / c.sum(), PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


# --- profile ---------------------------------------------------------------------------------------------


def _count_units(frame: pd.DataFrame, key: str) -> int:
    return int(frame[key].nunique()) if key in frame else len(frame)


def _patient_weights(frame: pd.DataFrame) -> np.ndarray:
    """Row weights under which every patient weighs 1, shared equally by their wounds and then by the visits.

    Patients are the independent units (wounds of one patient share age, labs and comorbidities; visits of one
    wound share almost everything). Weighted per visit, a wound followed for 30 weeks would count ten times more
    than one followed for 3, and the mix would look far noisier than its number of patients suggests.
    """
    if "patient_key" not in frame or "wound_key" not in frame:
        return np.ones(len(frame))
    visits = frame.groupby("wound_key")["wound_key"].transform("size")
    wounds = frame.groupby("patient_key")["wound_key"].transform("nunique")
    return 1.0 / (visits * wounds).to_numpy(dtype=float)


def _profile_feature(values: pd.Series, weights: np.ndarray, kind: str) -> dict:
    """Weighted level counts (categorical, few-valued numeric) or decile bins and std; a quantile sketch."""
    present = values.notna().to_numpy()
    entry: dict = {"units": _round(weights.sum()), "missing": _round(weights[~present].sum())}
    if kind == "categorical":
        levels = pd.Series(weights[present]).groupby(values[present].astype(str).to_numpy()).sum()
        return {"kind": "categorical", **entry, "levels": {str(k): _round(v) for k, v in levels.items()}}
    x = pd.to_numeric(values[present]).to_numpy(dtype=float)
    order = np.argsort(x)
    x, w = x[order], weights[present][order]
    entry["quantiles"] = _weighted_quantiles(x, w, _PROBS)
    distinct, inverse = np.unique(x, return_inverse=True)
    if len(distinct) <= DISCRETE_MAX_LEVELS:
        counts = np.bincount(inverse, weights=w, minlength=len(distinct))
        return {
            "kind": "discrete",
            **entry,
            "levels": {_label(v): _round(n) for v, n in zip(distinct, counts, strict=True)},
        }
    edges = np.unique(_weighted_quantiles(x, w, _DECILES))
    mean = np.average(x, weights=w)
    return {
        "kind": "continuous",
        **entry,
        "std": _round(np.sqrt(np.average((x - mean) ** 2, weights=w))),
        "edges": edges.tolist(),
        "counts": [_round(v) for v in np.bincount(np.searchsorted(edges, x), weights=w, minlength=len(edges) + 1)],
    }


def _weighted_quantiles(x: np.ndarray, w: np.ndarray, probs: np.ndarray) -> list[float]:
    """Inverse of the weighted empirical CDF of sorted `x` at `probs` (observed values, no interpolation)."""
    if len(x) == 0:
        return []
    cumulative = np.cumsum(w)
    at = np.minimum(np.searchsorted(cumulative, probs * cumulative[-1]), len(x) - 1)
    return [_round(v) for v in x[at]]


def _round(value: float) -> float:
    """Six significant digits: plenty for drift, and it keeps the profile small."""
    return float(f"{value:.6g}")


def _label(value: float) -> str:
    return f"{value:g}"


# --- comparison ------------------------------------------------------------------------------------------


def _compare_feature(name: str, ref: dict, cur: dict, th: DriftThresholds) -> FeatureDrift:
    if (ref["kind"] == "categorical") != (cur["kind"] == "categorical"):
        raise ValueError(f"feature {name} is categorical on one side only")
    if ref["kind"] == "continuous":
        return _continuous(name, ref, cur, th)
    return _levels(name, ref, cur, th)


def _levels(name: str, ref: dict, cur: dict, th: DriftThresholds) -> FeatureDrift:
    """Categorical or discrete numeric: chi² for significance, Jensen–Shannon distance for size."""
    ref_counts = ref["levels"] | {MISSING: ref["missing"]}
    cur_counts = _level_counts(cur) | {MISSING: cur["missing"]}
    labels = [*ref_counts, *(k for k in cur_counts if k not in ref_counts)]
    r = np.array([ref_counts.get(k, 0) for k in labels], dtype=float)
    c = np.array([cur_counts.get(k, 0) for k in labels], dtype=float)
    common = _common(name, ref, cur, labels, r, c)
    if min(ref["units"], cur["units"]) < th.min_units:
        return FeatureDrift(
            **common, method="insufficient_data", statistic=None, p_value=None, effect=None, drifted=False
        )
    p_ref, p_cur = r / r.sum(), c / c.sum()
    statistic, p_value = _chi2(p_ref * ref["units"], p_cur * cur["units"])
    effect = float(jensenshannon(p_ref, p_cur, base=2))
    drifted = p_value < th.alpha and effect >= th.js_distance_min
    method = "chi2+jensen_shannon"
    return FeatureDrift(**common, method=method, statistic=statistic, p_value=p_value, effect=effect, drifted=drifted)


def _continuous(name: str, ref: dict, cur: dict, th: DriftThresholds) -> FeatureDrift:
    """KS on the sketches for significance, W1 over the reference std for size; the missing share apart."""
    edges = np.asarray(ref["edges"])
    q_ref, q_cur = np.asarray(ref["quantiles"]), np.asarray(cur["quantiles"])
    present_cur = cur["units"] - cur["missing"]
    cur_bins = np.bincount(np.searchsorted(edges, q_cur), minlength=len(edges) + 1) * present_cur / max(len(q_cur), 1)
    r = np.append(ref["counts"], ref["missing"]).astype(float)
    c = np.append(cur_bins, cur["missing"]).astype(float)
    common = _common(name, ref, cur, _bin_labels(edges), r, c)
    missing_drift = _missing_drift(
        ref["units"], common["missing_reference"], cur["units"], common["missing_current"], th
    )
    n_ref = ref["units"] * (1 - common["missing_reference"])
    n_cur = cur["units"] * (1 - common["missing_current"])
    if min(n_ref, n_cur) < th.min_units:
        enough = min(ref["units"], cur["units"]) >= th.min_units
        method = "missing_share" if enough else "insufficient_data"
        return FeatureDrift(**common, method=method, statistic=None, p_value=None, effect=None, drifted=missing_drift)
    # A sketch of Q quantiles pins its CDF to within 1 / (2Q): test the smallest D the rows could give.
    d = max(float(stats.ks_2samp(q_ref, q_cur).statistic) - 0.5 / len(q_ref) - 0.5 / len(q_cur), 0.0)
    # Two-sample KS, asymptotic: D is distributed as the one-sample statistic at n = n1 n2 / (n1 + n2).
    p_value = float(stats.kstwo.sf(d, max(round(n_ref * n_cur / (n_ref + n_cur)), 1)))
    # W1 between two distributions is the mean absolute gap of their quantile functions.
    effect = float(np.mean(np.abs(q_ref - q_cur)) / ref["std"])
    drifted = (p_value < th.alpha and effect >= th.wasserstein_min) or missing_drift
    return FeatureDrift(**common, method="ks+wasserstein", statistic=d, p_value=p_value, effect=effect, drifted=drifted)


def _missing_drift(units_ref: int, missing_ref: float, units_cur: int, missing_cur: float, th: DriftThresholds) -> bool:
    """A significant change of the missing share by at least the floor (e.g. a measurement no longer taken)."""
    if min(units_ref, units_cur) < th.min_units or abs(missing_cur - missing_ref) < th.missing_shift_min:
        return False
    _, p_value = _chi2(
        units_ref * np.array([1 - missing_ref, missing_ref]),
        units_cur * np.array([1 - missing_cur, missing_cur]),
    )
    return p_value < th.alpha


def _common(name: str, ref: dict, cur: dict, labels: list[str], r: np.ndarray, c: np.ndarray) -> dict:
    """Fields every comparison reports: units, missing shares, PSI and the per-bin shares."""
    return {
        "name": name,
        "kind": ref["kind"],
        "units_reference": ref["units"],
        "units_current": cur["units"],
        "missing_reference": ref["missing"] / ref["units"] if ref["units"] else 0.0,
        "missing_current": cur["missing"] / cur["units"] if cur["units"] else 0.0,
        "psi": psi(r, c) if r.sum() > 0 and c.sum() > 0 else None,
        "bins": tuple(labels),
        "reference_shares": tuple(float(v) for v in r / max(r.sum(), 1.0)),
        "current_shares": tuple(float(v) for v in c / max(c.sum(), 1.0)),
    }


def _level_counts(entry: dict) -> dict[str, float]:
    """Level counts; for a numeric feature profiled as continuous, estimated from its quantile sketch."""
    if "levels" in entry:
        return entry["levels"]
    q = entry["quantiles"]
    weight = (entry["units"] - entry["missing"]) / len(q)
    labels, counts = np.unique([_label(v) for v in q], return_counts=True)
    return {str(k): float(n * weight) for k, n in zip(labels, counts, strict=True)}


def _bin_labels(edges: np.ndarray) -> list[str]:
    inner = [f"({lo:g}, {hi:g}]" for lo, hi in pairwise(edges)]
    return [f"≤ {edges[0]:g}", *inner, f"> {edges[-1]:g}", MISSING]


def _chi2(expected_like: np.ndarray, observed_like: np.ndarray) -> tuple[float, float]:
    """Chi² test of homogeneity of two count vectors; cells with an expected count below 5 are pooled."""
    table = np.vstack([expected_like, observed_like])
    table = table[:, table.sum(axis=0) > 0]
    expected_min = table.sum(axis=0) * table.sum(axis=1).min() / table.sum()
    rare = expected_min < 5
    if rare.any():
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _new_matured(reference: dict | None, current: dict | None) -> int | None:
    if not reference or not current:
        return None
    return max(int(current["matured"]) - int(reference["matured"]), 0)
