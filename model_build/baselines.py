"""Reference predictors the healing model must beat or approach: clinical rules, a Cox model and the oracle.

Each returns `evaluate.Predictions` for landmark rows (feature frames in the spec's columns): a risk score that is
higher for a wound expected to heal sooner, plus probabilities where the published rule gives them. Rules read
the values known at the landmark visit; a missing input earns no risk point (the rule's authors had no value
to score either).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model_build.evaluate import Predictions
from model_build.features import CATEGORICAL_FEATURES
from model_build.features_table import Landmarks

# Sheehan et al., Diabetes Care 2003 (DFU, n = 203): percent area reduction at 4 weeks >= 53 % -> 58 % healed by
# 12 weeks, below -> 9 %. Scored at any landmark from the PAR on record; it was validated at about 4 weeks after
# the first visit (SHEEHAN_WINDOW_DAYS), and earlier landmarks apply it to a shorter window (PAR 0 at the first).
SHEEHAN_PAR_CUTOFF = 53.0
SHEEHAN_P_HEALED_12W = (0.09, 0.58)
SHEEHAN_WINDOW_DAYS = (21.0, 35.0)
# Margolis et al., Diabetes Care 2003 (DFU, n = 27,630): one point each for wound age > 2 months, area > 2 cm²,
# Wagner grade >= 3; P(not healed by week 20) for 0..3 points.
MARGOLIS_DFU_P_OPEN_20W = (0.35, 0.47, 0.66, 0.81)
MARGOLIS_DFU_DAYS = 140.0
# Margolis et al., 2000 (VLU): one point each for area > 5 cm² and duration > 6 months (probabilities for one
# point are not in domain-facts.md, so this rule is evaluated as a ranking only).
SIX_MONTHS_DAYS = 182.0
TWO_MONTHS_DAYS = 60.0


def _numeric(X: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(X[name]).to_numpy(dtype=np.float64, na_value=np.nan)


def _above(X: pd.DataFrame, name: str, threshold: float) -> np.ndarray:
    """1 where the value exceeds the threshold; 0 where it does not or is missing (NaN compares false)."""
    return (_numeric(X, name) > threshold).astype(np.int64)


def sheehan(X: pd.DataFrame) -> Predictions:
    """Sheehan's 4-week rule: P(healed by 12 weeks) = 0.58 if PAR >= 53 %, else 0.09 (missing PAR: below)."""
    meets = _numeric(X, "percent_area_reduction") >= SHEEHAN_PAR_CUTOFF
    p = np.where(meets, SHEEHAN_P_HEALED_12W[1], SHEEHAN_P_HEALED_12W[0])
    return Predictions(risk=p, p_event=p)


def percent_area_reduction(X: pd.DataFrame) -> Predictions:
    """PAR since the first visit as a continuous ranking (the quantity behind Sheehan and Gelfand); missing = 0."""
    return Predictions(risk=np.nan_to_num(_numeric(X, "percent_area_reduction"), nan=0.0))


def margolis_dfu_points(X: pd.DataFrame) -> np.ndarray:
    """0-3 points: wound age > 2 months at the visit, area > 2 cm², Wagner grade >= 3."""
    return _above(X, "wound_age_days", TWO_MONTHS_DAYS) + _above(X, "area_cm2", 2.0) + _above(X, "wagner_grade", 2.5)


def margolis_dfu(X: pd.DataFrame) -> Predictions:
    """Margolis 2003 DFU score: more points heal later; P(healed by 20 weeks) = 1 - the published P(open)."""
    points = margolis_dfu_points(X)
    p_healed = 1.0 - np.asarray(MARGOLIS_DFU_P_OPEN_20W)[points]
    return Predictions(risk=-points.astype(np.float64), p_event=p_healed, p_event_days=MARGOLIS_DFU_DAYS)


def margolis_vlu_points(X: pd.DataFrame) -> np.ndarray:
    """0-2 points: area > 5 cm², wound age (duration) > 6 months at the visit."""
    return _above(X, "area_cm2", 5.0) + _above(X, "wound_age_days", SIX_MONTHS_DAYS)


def margolis_vlu(X: pd.DataFrame) -> Predictions:
    """Margolis 2000 VLU score as a ranking: more points heal later."""
    return Predictions(risk=-margolis_vlu_points(X).astype(np.float64))


def push_total(X: pd.DataFrame) -> Predictions:
    """PUSH 3.0 total (0-17, higher is worse) as a ranking; a missing total ranks with the median."""
    push = _numeric(X, "push_total")
    return Predictions(risk=-np.where(np.isnan(push), np.nanmedian(push), push))


def oracle_survival(test: Landmarks, ground_truth: pd.DataFrame, times) -> np.ndarray:
    """True S(s + t) / S(s) at each landmark, s = days since the wound's first assessment, under the plan given.

    The synthetic Weibull's time origin is the first assessment (synth: "T, days from the first assessment"),
    and a landmark exists only while the wound is open, hence conditioning on T > s. The plan is fixed per wound.
    It knows the true scale (frailty included) but not the draw of T, which later measurements partly reveal.
    """
    truth = ground_truth.set_index("wound_key").loc[test.ids["wound_key"].to_numpy()]
    scale = np.exp(truth["log_scale_given"].to_numpy(dtype=np.float64))[:, None]
    shape = truth["weibull_shape"].to_numpy(dtype=np.float64)[:, None]
    s = test.X["days_since_first_assessment"].to_numpy(dtype=np.float64)[:, None]
    t = np.asarray(times, dtype=np.float64)[None, :]
    return np.exp((s / scale) ** shape - ((s + t) / scale) ** shape)


class CoxBaseline:
    """Cox proportional hazards on the same landmark features (lifelines, ridge-penalised), as a linear reference.

    Numerics: median-filled, with a missing flag where training had gaps, then standardised; categoricals:
    one indicator per level seen at least `min_level_rows` times (the penalty makes the full set identifiable).
    """

    def __init__(self, penalizer: float = 0.01, min_level_rows: int = 10):
        self.penalizer = penalizer
        self.min_level_rows = min_level_rows

    def fit(self, X: pd.DataFrame, time, event) -> CoxBaseline:
        from lifelines import CoxPHFitter  # training-only dependency

        self.median_, self.center_, self.scale_, self.flagged_ = {}, {}, {}, []
        for name in (c for c in X.columns if c not in CATEGORICAL_FEATURES):
            values = _numeric(X, name)
            if np.isnan(values).all():
                continue
            self.median_[name] = float(np.nanmedian(values))
            if np.isnan(values).any():
                self.flagged_.append(name)
            filled = np.where(np.isnan(values), self.median_[name], values)
            self.center_[name], self.scale_[name] = float(filled.mean()), float(filled.std())
        self.levels_ = {
            name: [level for level, n in X[name].value_counts().items() if n >= self.min_level_rows]
            for name in X.columns
            if name in CATEGORICAL_FEATURES
        }
        design = self._design(X)
        self.columns_ = [c for c in design.columns if design[c].std() > 0]
        frame = design[self.columns_].assign(_time=np.asarray(time, float), _event=np.asarray(event, int))
        self.fitter_ = CoxPHFitter(penalizer=self.penalizer).fit(frame, duration_col="_time", event_col="_event")
        return self

    def _design(self, X: pd.DataFrame) -> pd.DataFrame:
        columns: dict[str, np.ndarray] = {}
        for name, median in self.median_.items():
            values = _numeric(X, name)
            if name in self.flagged_:
                columns[f"{name}:missing"] = np.isnan(values).astype(np.float64)
            filled = np.where(np.isnan(values), median, values)
            columns[name] = (filled - self.center_[name]) / (self.scale_[name] or 1.0)
        for name, levels in self.levels_.items():
            values = X[name].astype(object).to_numpy()
            for level in levels:
                columns[f"{name}={level}"] = (values == level).astype(np.float64)
        return pd.DataFrame(columns, index=X.index)

    def predict_survival(self, X: pd.DataFrame, times) -> np.ndarray:
        """S(t | x) for each row and each of `times`, shape [n, len(times)]."""
        design = self._design(X)[self.columns_]
        return self.fitter_.predict_survival_function(design, times=np.asarray(times, float)).T.to_numpy()
