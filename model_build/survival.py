"""Censoring-aware survival learner: a discrete-time hazard model boosted with scikit-learn trees.

Each training row is expanded into one row per interval it was at risk in (person-period data); a
HistGradientBoostingClassifier learns the interval hazard h_k(x) = P(T in interval k | T > start_k, x)
with the interval start as a feature. The survival curve is plain arithmetic on the tree margins m_k,
so a Treelite/TL2cgen build of `estimator_` can be scored without numpy:

    log(1 - h_k) = -softplus(m_k) = -(max(m_k, 0) + log1p(exp(-|m_k|)))
    log S(edge_k) = sum over j < k of -softplus(m_j)
    S(t) = exp(log S(edge_k) - frac * softplus(m_k)),  frac = (t - edge_k) / width_k  (constant hazard inside)

Why this method rather than the alternatives is measured in docs/survival-methods.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

INTERVAL_COLUMN = "interval_start"
# A categorical column that had missing values in training gets this level (see `_encode`).
MISSING_CATEGORY = "__missing__"
_MAX_CATEGORIES = 254  # HistGradientBoosting bins a categorical into at most 255 bins, one kept for NaN
_PREDICT_CHUNK = 1_000_000  # person-period rows scored at once, to bound memory


def _softplus(m: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.logaddexp(0.0, m)


def person_periods(
    t: NDArray[np.float64], d: NDArray[np.bool_], edges: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int8], NDArray[np.float64]]:
    """Expand rows into (row, interval, label, weight) over intervals (edges[k], edges[k+1]]; edges[0] = 0.

    A row censored part-way through its last interval counts the share of it at risk (actuarial idea); rows
    with nothing at risk are dropped.
    """
    n_int = len(edges) - 1
    last = np.clip(np.searchsorted(edges, t, side="left") - 1, 0, None)  # t in (edge_k, edge_k+1]
    beyond = t > edges[-1]
    last[beyond] = n_int - 1
    counts = last + 1
    rows = np.repeat(np.arange(len(t)), counts)
    starts = np.cumsum(counts) - counts
    interval = np.arange(len(rows)) - np.repeat(starts, counts)
    is_last = interval == last[rows]
    label = (is_last & d[rows] & ~beyond[rows]).astype(np.int8)
    weight = np.ones(len(rows))
    partial = is_last & ~d[rows] & ~beyond[rows]
    k = interval[partial]
    weight[partial] = (t[rows[partial]] - edges[k]) / (edges[k + 1] - edges[k])
    keep = weight > 0
    return rows[keep], interval[keep], label[keep], weight[keep]


class DiscreteTimeSurvival(BaseEstimator):
    """Right-censored time-to-event learner on any tabular DataFrame; compilable by Treelite.

    `interval_edges`: increasing positive upper edges of the intervals (the last one is the horizon);
    when None, `n_intervals` edges are placed at quantiles of the observed event times. Times are in
    any unit, as long as fit and predict agree. At most `max_person_periods` person-period rows are
    trained on: beyond that, non-event rows are subsampled and reweighted by 1/p (events are all kept),
    which leaves the expected log-loss, hence the hazards, unbiased. Object, string and category columns
    are categorical (native HistGradientBoosting splits on integer codes); bool and numeric columns
    are numeric; NaN is allowed anywhere. Early stopping is patient (30 rounds on a 20 % validation split):
    stopping sooner shrinks hazards toward the pooled baseline, which biases sparse, heavily censored
    groups toward shorter times (measured in docs/survival-methods.md).
    """

    def __init__(
        self,
        interval_edges: Sequence[float] | None = None,
        n_intervals: int = 32,
        max_person_periods: int = 2_000_000,
        max_iter: int = 300,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.2,
        n_iter_no_change: int = 30,
        native_categorical: bool = True,
        random_state: int | None = None,
    ):
        self.interval_edges = interval_edges
        self.n_intervals = n_intervals
        self.max_person_periods = max_person_periods
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.native_categorical = native_categorical
        self.random_state = random_state

    # ---- fitting -------------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, time: ArrayLike, event: ArrayLike) -> DiscreteTimeSurvival:
        """Learn interval hazards from rows followed for `time`, with `event` true if the event was seen."""
        t = np.asarray(time, dtype=np.float64)
        d = np.asarray(event, dtype=bool)
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a pandas DataFrame")
        if not (len(X) == len(t) == len(d)):
            raise ValueError("X, time and event must have the same length")
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError("time must be finite and non-negative")
        if not d.any():
            raise ValueError("no events: a hazard cannot be learned")
        if INTERVAL_COLUMN in X.columns:
            raise ValueError(f"column name '{INTERVAL_COLUMN}' is reserved")

        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_ = self._learn_categories(X)
        self.interval_edges_ = self._learn_edges(t[d])
        self.design_columns_ = [*self.feature_names_in_, INTERVAL_COLUMN]

        rows, interval, label, weight = self._person_periods(t, d, check_random_state(self.random_state))
        design = np.column_stack([self._encode(X)[rows], self.interval_edges_[interval]])
        is_cat = [c in self.categories_ and self.native_categorical for c in self.design_columns_]
        self.estimator_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            categorical_features=np.asarray(is_cat, dtype=bool),
            random_state=self.random_state,
        ).fit(design, label, sample_weight=weight)
        self.n_person_periods_ = len(label)
        return self

    def _learn_categories(self, X: pd.DataFrame) -> dict[str, list[Any]]:
        categories: dict[str, list[Any]] = {}
        for name in X.columns:
            col = X[name]
            if isinstance(col.dtype, pd.CategoricalDtype):
                levels = list(col.cat.categories)
            elif pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
                levels = sorted(col.dropna().unique(), key=str)
            else:
                continue
            # Treelite's importer cannot carry NaN inside a categorical (it casts the levels to int), so a
            # column that had missing values in training gets an explicit level for them instead.
            if col.isna().any():
                levels.append(MISSING_CATEGORY)
            if len(levels) > _MAX_CATEGORIES:
                raise ValueError(f"column '{name}' has {len(levels)} categories; at most {_MAX_CATEGORIES}")
            categories[str(name)] = levels
        return categories

    def _learn_edges(self, event_times: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.interval_edges is None:
            quantiles = np.linspace(0.0, 1.0, self.n_intervals + 1)[1:]
            upper = np.unique(np.quantile(event_times, quantiles))
            upper = upper[upper > 0]
        else:
            upper = np.asarray(self.interval_edges, dtype=np.float64)
            if upper.ndim != 1 or len(upper) == 0 or upper[0] <= 0 or np.any(np.diff(upper) <= 0):
                raise ValueError("interval_edges must be positive and strictly increasing")
        return np.concatenate([[0.0], upper])

    def _person_periods(
        self, t: NDArray[np.float64], d: NDArray[np.bool_], rng: np.random.RandomState
    ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int8], NDArray[np.float64]]:
        """`person_periods`, then non-event rows subsampled (and reweighted) down to `max_person_periods`."""
        rows, interval, label, weight = person_periods(t, d, self.interval_edges_)
        n_events = int(label.sum())
        if len(rows) > self.max_person_periods and self.max_person_periods > n_events:
            p = (self.max_person_periods - n_events) / (len(rows) - n_events)
            keep = (label == 1) | (rng.random_sample(len(rows)) < p)
            weight[label == 0] /= p
            return rows[keep], interval[keep], label[keep], weight[keep]
        return rows, interval, label, weight

    # ---- the matrix the inner model sees -------------------------------------------------------------

    def _encode(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """Features in `feature_names_in_` order: numerics as floats, categoricals as `encode_value` codes."""
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"missing columns: {missing}")
        out = np.empty((len(X), self.n_features_in_), dtype=np.float64)
        for j, name in enumerate(self.feature_names_in_):
            col = X[name]
            levels = self.categories_.get(str(name))
            if levels is None:
                out[:, j] = pd.to_numeric(col).to_numpy(dtype=np.float64, na_value=np.nan)
                continue
            codes = pd.Categorical(col.astype(object), categories=levels).codes.astype(np.float64)
            fallback = levels.index(MISSING_CATEGORY) if MISSING_CATEGORY in levels else np.nan
            codes[codes < 0] = fallback
            out[:, j] = codes
        return out

    def encode_value(self, column: str, value: Any) -> float:
        """Code of one categorical value: its level's position; missing or unseen → missing level or NaN."""
        check_is_fitted(self)
        levels = self.categories_[column]
        fallback = levels.index(MISSING_CATEGORY) if MISSING_CATEGORY in levels else float("nan")
        if value is None or (isinstance(value, float) and np.isnan(value)) or value not in levels:
            return float(fallback)
        return float(levels.index(value))

    def design_matrix(self, X: pd.DataFrame, interval: int) -> NDArray[np.float64]:
        """The exact rows `estimator_` scores for interval `interval` (columns = `design_columns_`)."""
        check_is_fitted(self)
        if not 0 <= interval < len(self.interval_edges_) - 1:
            raise ValueError("interval out of range")
        return np.column_stack([self._encode(X), np.full(len(X), self.interval_edges_[interval])])

    # ---- prediction ----------------------------------------------------------------------------------

    def hazard_margins(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """Raw tree margins m[i, k] (logit of the hazard of interval k): what a compiled model outputs."""
        check_is_fitted(self)
        encoded = self._encode(X)
        starts = self.interval_edges_[:-1]
        n, n_int = len(encoded), len(starts)
        margins = np.empty((n, n_int))
        step = max(1, _PREDICT_CHUNK // n_int)
        for lo in range(0, n, step):
            block = encoded[lo : lo + step]
            design = np.column_stack([np.tile(block, (n_int, 1)), np.repeat(starts, len(block))])
            margins[lo : lo + step] = self.estimator_.decision_function(design).reshape(n_int, -1).T
        return margins

    def predict_hazard(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """Interval hazards h[i, k] = P(event in interval k | at risk at its start)."""
        return 1.0 / (1.0 + np.exp(-self.hazard_margins(X)))

    def _log_survival_at_edges(self, margins: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.concatenate([np.zeros((len(margins), 1)), -np.cumsum(_softplus(margins), axis=1)], axis=1)

    def predict_survival(self, X: pd.DataFrame, times: ArrayLike) -> NDArray[np.float64]:
        """S(t | x) for each row and each of `times` (within [0, horizon]), shape [n, len(times)]."""
        check_is_fitted(self)
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        edges = self.interval_edges_
        if np.any(~np.isfinite(t)) or np.any(t < 0) or np.any(t > edges[-1]):
            raise ValueError(f"times must lie in [0, {edges[-1]:g}] (the horizon); no extrapolation")
        margins = self.hazard_margins(X)
        log_s = self._log_survival_at_edges(margins)
        k = np.clip(np.searchsorted(edges, t, side="left") - 1, 0, len(edges) - 2)
        frac = (t - edges[k]) / (edges[k + 1] - edges[k])
        return np.exp(log_s[:, k] - frac * _softplus(margins[:, k]))

    def predict_quantiles(self, X: pd.DataFrame, q: ArrayLike) -> NDArray[np.float64]:
        """Time by which a fraction q of such rows has had the event, [n, len(q)]; inf if past the horizon."""
        check_is_fitted(self)
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if np.any((qs <= 0) | (qs >= 1)):
            raise ValueError("quantiles must lie in (0, 1)")
        edges = self.interval_edges_
        margins = self.hazard_margins(X)
        log_s = self._log_survival_at_edges(margins)
        rows = np.arange(len(margins))
        out = np.full((len(margins), len(qs)), np.inf)
        for j, target in enumerate(np.log1p(-qs)):
            crossed = log_s[:, 1:] <= target
            reached = crossed.any(axis=1)
            k = crossed.argmax(axis=1)  # first interval whose end is at or below the target
            rate = _softplus(margins[rows, k])
            t = edges[k] + (edges[k + 1] - edges[k]) * (log_s[rows, k] - target) / rate
            out[reached, j] = t[reached]
        return out

    def predict_median(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """Median time to event per row; inf when more than half are predicted event-free at the horizon."""
        return self.predict_quantiles(X, [0.5])[:, 0]
