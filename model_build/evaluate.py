"""Censoring-aware evaluation of healing-time predictions on held-out landmarks, overall and per subgroup.

Conventions. Healing is the event; a risk score is higher for a wound expected to heal SOONER. Times are days
from the landmark visit. Inverse-probability-of-censoring weights (IPCW) use G, the Kaplan–Meier curve of
censoring fitted on the training rows, which assumes censoring independent of the features (random censoring).
All metrics are evaluated on whatever landmarks they are given: pass all visits for the dynamic use case (a
wound seen often counts often) or first visits only (one row per wound) — `evaluate_predictions` does not choose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model_build.features_table import Landmarks
from model_build.km import kaplan_meier, km_at

TWELVE_WEEKS_DAYS = 84.0
AGE_BANDS = ((0, 65, "<65"), (65, 75, "65-74"), (75, 85, "75-84"), (85, 200, "85+"))
MIN_ROWS = 20  # smaller groups report n and None: a C-index on a handful of pairs is noise
MIN_CALIBRATION_ROWS = 100  # ten deciles of at least ten rows


# ---- splitting ----------------------------------------------------------------------------------------------


def take(landmarks: Landmarks, rows: np.ndarray) -> Landmarks:
    """The landmarks at `rows` (a boolean mask or positions), with fresh indexes."""
    return Landmarks(
        ids=landmarks.ids.iloc[rows].reset_index(drop=True),
        X=landmarks.X.iloc[rows].reset_index(drop=True),
        time_days=landmarks.time_days[rows],
        event=landmarks.event[rows],
    )


def split_by_patient(landmarks: Landmarks, test_share: float = 0.25, seed: int = 0) -> tuple[Landmarks, Landmarks]:
    """(train, test) with every patient's rows on one side only, so no patient's wounds leak across the split."""
    if not 0.0 < test_share < 1.0:
        raise ValueError("test_share must be in (0, 1)")
    patient = landmarks.ids["patient_key"].to_numpy()
    patients = np.unique(patient)
    n_test = round(test_share * len(patients))
    test_patients = np.random.default_rng(seed).choice(patients, n_test, replace=False)
    in_test = np.isin(patient, test_patients)
    return take(landmarks, ~in_test), take(landmarks, in_test)


def first_visits(landmarks: Landmarks) -> np.ndarray:
    """Mask of each wound's first assessment: the prediction made at presentation."""
    return (landmarks.X["days_since_first_assessment"] == 0).to_numpy()


def age_band(age_years: pd.Series) -> pd.Series:
    """Age bands <65, 65-74, 75-84, 85+ (90 stands for 90 or older under Safe Harbor)."""
    edges = [band[0] for band in AGE_BANDS] + [AGE_BANDS[-1][1]]
    return pd.cut(age_years, edges, right=False, labels=[band[2] for band in AGE_BANDS]).astype(object)


# ---- censoring weights --------------------------------------------------------------------------------------


def censoring_survival(train_time, train_event) -> Callable[..., np.ndarray]:
    """G(t) = P(still followed at t): Kaplan–Meier of censoring on training rows; `before=True` gives G(t-)."""
    times, surv = kaplan_meier(train_time, ~np.asarray(train_event, dtype=bool))
    steps = np.concatenate([[1.0], surv])

    def g(t, before: bool = False) -> np.ndarray:
        return steps[np.searchsorted(times, np.asarray(t, dtype=float), side="left" if before else "right")]

    return g


def _inverse(g: np.ndarray) -> np.ndarray:
    if np.any(g <= 0):
        raise ValueError("censoring survival is zero inside the evaluation window: shorten tau or the time grid")
    return 1.0 / g


# ---- concordance --------------------------------------------------------------------------------------------


def _weighted_concordance(time, event, risk, weight) -> float | None:
    """Σ w_i (#concordant + ½ #tied) / Σ w_i #comparable over events i with w_i > 0.

    A pair (i, j) is comparable when i healed and j was still open after T_i: T_j > T_i, or T_j = T_i with j
    censored (lifelines' and scikit-survival's convention). Loops over distinct event times, not rows.
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    risk, weight = np.asarray(risk, dtype=float), np.asarray(weight, dtype=float)
    if not (len(time) == len(event) == len(risk) == len(weight)):
        raise ValueError("time, event, risk and weight must have the same length")
    if np.isnan(risk).any():
        raise ValueError("risk has missing values")
    rank = np.unique(risk, return_inverse=True)[1]
    counts = np.zeros(rank.max() + 1 if len(rank) else 1)
    order = np.argsort(-time, kind="stable")
    ascending_negated = -time[order]
    inserted = 0  # rows order[:inserted], those with time > the current event time, are counted in `counts`
    numerator = denominator = 0.0
    for u in np.unique(time[event & (weight > 0)])[::-1]:
        stop = int(np.searchsorted(ascending_negated, -u, side="left"))
        np.add.at(counts, rank[order[inserted:stop]], 1.0)
        inserted = stop
        at_u = time == u
        cases = np.flatnonzero(at_u & event & (weight > 0))
        tied_censored = rank[at_u & ~event]
        below = np.cumsum(counts) - counts  # rows with a strictly lower risk, per rank
        r, w = rank[cases], weight[cases]
        less = below[r] + (tied_censored[None, :] < r[:, None]).sum(axis=1)
        same = counts[r] + (tied_censored[None, :] == r[:, None]).sum(axis=1)
        numerator += float(np.sum(w * (less + 0.5 * same)))
        denominator += float(np.sum(w * (inserted + len(tied_censored))))
    return numerator / denominator if denominator > 0 else None


def harrell_c(time, event, risk) -> float | None:
    """Harrell's C: share of comparable pairs ordered right; biased by censoring (pairs need an observed event)."""
    return _weighted_concordance(time, event, risk, np.ones(len(np.asarray(time))))


def uno_c(time, event, risk, tau: float, train_time, train_event) -> float | None:
    """Uno's C truncated at tau (Uno et al., Stat Med 2011): events before tau weighted by G(T_i-)^-2.

    Consistent for P(risk_i > risk_j | T_i < T_j, T_i < tau) under random censoring; G comes from training.
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    counted = event & (time < tau)
    weight = np.zeros(len(time))
    weight[counted] = _inverse(censoring_survival(train_time, train_event)(time[counted], before=True)) ** 2
    return _weighted_concordance(time, event, risk, weight)


def time_dependent_auc(time, event, risk, t: float, train_time, train_event) -> float | None:
    """Cumulative/dynamic AUC at t (Uno et al., JASA 2007): cases healed by t (IPCW 1/G(T_i-)), controls open at t.

    The controls' common weight 1/G(t) cancels. Random censoring assumed.
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    risk = np.asarray(risk, dtype=float)
    cases = event & (time <= t)
    controls = np.sort(risk[time > t])
    if not cases.any() or not len(controls):
        return None
    w = _inverse(censoring_survival(train_time, train_event)(time[cases], before=True))
    below = np.searchsorted(controls, risk[cases], side="left")
    tied = np.searchsorted(controls, risk[cases], side="right") - below
    return float(np.sum(w * (below + 0.5 * tied)) / (np.sum(w) * len(controls)))


# ---- accuracy of the curves ---------------------------------------------------------------------------------


def brier_scores(time, event, surv_at_times, times, train_time, train_event) -> np.ndarray:
    """Brier score of S(t) at each of `times` with IPCW (Graf et al., Stat Med 1999); random censoring.

    Healed by t: (0 - S)^2 / G(T_i-); still open after t: (1 - S)^2 / G(t); censored before t: weight 0.
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    times, s = np.asarray(times, dtype=float), np.asarray(surv_at_times, dtype=float)
    g = censoring_survival(train_time, train_event)
    healed = event[:, None] & (time[:, None] <= times[None, :])
    still_open = time[:, None] > times[None, :]
    seen_heal = event & (time <= times[-1])
    w_healed = np.where(healed, _inverse(np.where(seen_heal, g(time, before=True), 1.0))[:, None], 0.0)
    w_open = np.where(still_open, _inverse(g(times))[None, :], 0.0)
    return (s**2 * w_healed + (1 - s) ** 2 * w_open).mean(axis=0)


def integrated_brier(time, event, surv_at_times, times, train_time, train_event) -> float:
    """Graf's integrated Brier score: the IPCW Brier score averaged over [times[0], times[-1]] (trapezoid)."""
    times = np.asarray(times, dtype=float)
    scores = brier_scores(time, event, surv_at_times, times, train_time, train_event)
    return float(np.trapezoid(scores, times) / (times[-1] - times[0]))


def calibration_by_decile(p_event_by_t, time, event, t: float) -> tuple[pd.DataFrame, float]:
    """Deciles of predicted P(healed by t) against the Kaplan–Meier share healed by t in each decile.

    Returns the table (decile, n, predicted, observed) and the mean absolute calibration error over deciles.
    The KM estimate inside each decile handles censoring (random censoring within the decile).
    """
    p = np.asarray(p_event_by_t, dtype=float)
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    decile = np.empty(len(p), dtype=np.int64)
    decile[np.argsort(p, kind="stable")] = np.arange(len(p)) * 10 // max(len(p), 1)
    rows = [
        {"decile": int(d) + 1, "n": int(mine.sum()), "predicted": float(p[mine].mean()),
         "observed": 1.0 - km_at(time[mine], event[mine], t)}
        for d in np.unique(decile)
        for mine in [decile == d]
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["decile", "n", "predicted", "observed"])
    error = float((table["predicted"] - table["observed"]).abs().mean()) if len(table) else float("nan")
    return table, error


def median_from_survival(surv_at_times, times) -> np.ndarray:
    """Time at which each curve first reaches 0.5 (linear between grid points); the last grid time if never."""
    s, times = np.asarray(surv_at_times, dtype=float), np.asarray(times, dtype=float)
    crossed = s <= 0.5
    k = np.where(crossed.any(axis=1), crossed.argmax(axis=1), len(times) - 1)
    rows = np.arange(len(s))
    before = np.maximum(k - 1, 0)
    drop = s[rows, before] - s[rows, k]
    frac = np.where(drop > 0, (s[rows, before] - 0.5) / np.where(drop > 0, drop, 1.0), 0.0)
    return times[before] + np.clip(frac, 0.0, 1.0) * (times[k] - times[before])


def mae_weeks_on_closures(pred_median_days, time, event) -> float | None:
    """Mean |predicted median - observed time| in weeks over wounds seen to heal; censored rows are left out.

    Observed closures are the quicker ones (the slow ones are censored more), so this flatters short predictions.
    """
    event = np.asarray(event, dtype=bool)
    if not event.any():
        return None
    error = np.abs(np.asarray(pred_median_days, dtype=float)[event] - np.asarray(time, dtype=float)[event])
    return float(error.mean() / 7.0)


# ---- predictions and the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Predictions:
    """One predictor's output on test rows: a risk score (higher = heals sooner) and what else it predicts.

    `surv` is S(t) on the grid `times` (Brier, median, calibration); a rule without a curve may still give
    `p_event`, its probability of healing by `p_event_days` (calibration only).
    """

    risk: np.ndarray
    surv: np.ndarray | None = None
    times: np.ndarray | None = None
    p_event: np.ndarray | None = None
    p_event_days: float = TWELVE_WEEKS_DAYS

    @classmethod
    def from_survival(cls, surv: np.ndarray, times: np.ndarray, t: float = TWELVE_WEEKS_DAYS) -> Predictions:
        """Curves on a grid containing 0 and t: risk = minus the restricted mean time to healing over the grid."""
        times = np.asarray(times, dtype=float)
        if times[0] != 0 or t not in times:
            raise ValueError("the time grid must start at 0 and contain t")
        rmst = np.trapezoid(surv, times, axis=1)
        return cls(-rmst, surv, times, 1.0 - surv[:, np.flatnonzero(times == t)[0]], t)

    def take(self, rows: np.ndarray) -> Predictions:
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return Predictions(self.risk[rows], pick(self.surv), self.times, pick(self.p_event), self.p_event_days)


def group_metrics(
    time, event, predictions: Predictions, train_time, train_event, tau: float = TWELVE_WEEKS_DAYS, deciles=False
) -> dict[str, Any]:
    """Every metric the predictor supports on these rows; n and None where the rows are too few or one-sided."""
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    out: dict[str, Any] = {"n": len(time), "events": int(event.sum())}
    names = ("harrell_c", "uno_c", "auc_12w", "ibs", "calibration_mace", "mae_weeks")
    out |= dict.fromkeys(names)
    if len(time) < MIN_ROWS or not event.any():
        return out
    r = predictions.risk
    out["harrell_c"] = harrell_c(time, event, r)
    out["uno_c"] = uno_c(time, event, r, tau, train_time, train_event)
    out["auc_12w"] = time_dependent_auc(time, event, r, TWELVE_WEEKS_DAYS, train_time, train_event)
    surv, times = predictions.surv, predictions.times
    if surv is not None and times is not None:
        window = times <= tau
        out["ibs"] = integrated_brier(time, event, surv[:, window], times[window], train_time, train_event)
        out["mae_weeks"] = mae_weeks_on_closures(median_from_survival(surv, times), time, event)
    if predictions.p_event is not None and len(time) >= MIN_CALIBRATION_ROWS:
        table, error = calibration_by_decile(predictions.p_event, time, event, predictions.p_event_days)
        out["calibration_mace"] = error
        if deciles:
            out["calibration"] = table.to_dict(orient="records")
    return out


def evaluate_predictions(
    test: Landmarks, predictions: Predictions, train_time, train_event, tau: float = TWELVE_WEEKS_DAYS
) -> dict[str, Any]:
    """All metrics overall (with calibration deciles) and per wound type, care setting, sex, age band and visit
    (`first`: the prediction at presentation, or `later`), JSON-able.

    `train_time`/`train_event` are the training rows of the same landmark selection (they give G for IPCW);
    Uno's C and the integrated Brier score stop at `tau` (12 weeks: by then about two thirds of the landmarks
    are censored in the synthetic cohort, and 1/G grows quickly after).
    """
    if len(predictions.risk) != len(test.time_days):
        raise ValueError("predictions and test rows differ in length")
    metric = lambda rows, deciles=False: group_metrics(  # noqa: E731
        test.time_days[rows], test.event[rows], predictions.take(rows), train_time, train_event, tau, deciles
    )
    groups = {name: test.X[name] for name in ("wound_type", "care_setting", "sex")}
    groups["age_band"] = age_band(test.X["age_years"])
    groups["visit"] = pd.Series(np.where(first_visits(test), "first", "later"), index=test.X.index)
    by = {
        name: {str(level): metric(np.flatnonzero((values == level).to_numpy())) for level in _levels(values)}
        for name, values in groups.items()
    }
    return {"overall": metric(np.arange(len(test.time_days)), deciles=True), "by": by}


def _levels(values: pd.Series) -> list[Any]:
    return sorted(values.dropna().unique(), key=str)
