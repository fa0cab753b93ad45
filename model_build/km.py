"""Kaplan–Meier survival estimates in plain numpy (right-censored data, no scipy or lifelines)."""

from __future__ import annotations

import numpy as np


def kaplan_meier(time, event) -> tuple[np.ndarray, np.ndarray]:
    """Event times and the survival just after each of them; censored subjects count as at risk at their time."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    if time.shape != event.shape:
        raise ValueError("time and event must have the same length")
    if time.size == 0:
        return np.empty(0), np.empty(0)
    order = np.argsort(time, kind="stable")
    times, first = np.unique(time[order], return_index=True)
    events = np.add.reduceat(event[order].astype(np.int64), first)
    at_risk = time.size - first
    has_event = events > 0
    survival = np.cumprod(1.0 - events[has_event] / at_risk[has_event])
    return times[has_event], survival


def km_at(time, event, t: float) -> float:
    """Kaplan–Meier survival S(t): the share still without the event at time t (1.0 before the first event)."""
    times, survival = kaplan_meier(time, event)
    i = np.searchsorted(times, t, side="right")
    return 1.0 if i == 0 else float(survival[i - 1])


def km_median(time, event) -> float:
    """Smallest event time at which survival falls to 0.5 or below; NaN when the curve never gets there."""
    times, survival = kaplan_meier(time, event)
    reached = np.flatnonzero(survival <= 0.5)
    return float(times[reached[0]]) if reached.size else float("nan")
