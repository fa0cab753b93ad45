"""A wound's healing trajectory from its interval hazard margins: pure Python, for the inference Lambda.

The healing model gives, for the latest visit, one logit margin m_k per interval (edges in days from that
visit). As in `model_build.survival`, the hazard is constant inside an interval:

    log S(edge_k) = -sum_{j<k} softplus(m_j);   S(t) = exp(log S(edge_k) - frac * softplus(m_k))

Area assumes the wound closes along area(t | T) = A_now * (1 - t/T)^shape for t < T (0 after), with T the
time to closure. area(t | T) rises with T, so the median and the 10th/90th percentiles of the area at t are
the areas under the median and 10th/90th percentiles of T: the band always contains the line. A wound not
closed by the horizon keeps its current area (conservative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

DAYS_PER_WEEK = 7.0
MILESTONE_WEEKS = (4, 8, 12, 24)
BAND = (0.1, 0.9)  # the 80 % band and interval


def softplus(m: float) -> float:
    """log(1 + e^m), computed without overflow."""
    return max(m, 0.0) + math.log1p(math.exp(-abs(m)))


@dataclass(frozen=True)
class Curve:
    """Survival (not yet healed) as a function of days since the visit, up to the last edge (the horizon)."""

    edges: tuple[float, ...]  # 0 = edge_0 < edge_1 < ... (days)
    margins: tuple[float, ...]  # one per interval
    _rates: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _log_s: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.margins) + 1:
            raise ValueError("a curve needs one margin per interval")
        rates = tuple(softplus(m) for m in self.margins)  # -log(1 - h_k)
        log_s = [0.0]
        for rate in rates:
            log_s.append(log_s[-1] - rate)
        object.__setattr__(self, "_rates", rates)
        object.__setattr__(self, "_log_s", tuple(log_s))

    @property
    def horizon_days(self) -> float:
        return self.edges[-1]

    def survival(self, days: float) -> float:
        """P(not healed by `days`), 0 <= days <= horizon."""
        if not 0.0 <= days <= self.horizon_days:
            raise ValueError("days must lie within the model horizon")
        edges = self.edges
        k = min(max(_bisect_left(edges, days) - 1, 0), len(edges) - 2)
        frac = (days - edges[k]) / (edges[k + 1] - edges[k])
        return math.exp(self._log_s[k] - frac * self._rates[k])

    def quantile(self, q: float) -> float | None:
        """Days by which a share q of such wounds has healed; None when that lies beyond the horizon."""
        target = math.log1p(-q)
        log_s = self._log_s
        for k, rate in enumerate(self._rates):
            if log_s[k + 1] <= target:
                width = self.edges[k + 1] - self.edges[k]
                return self.edges[k] + width * (log_s[k] - target) / rate
        return None


def _bisect_left(values: Sequence[float], x: float) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def area_at(days: float, current_area: float, closure_days: float | None, shape: float) -> float:
    """Area `days` after the visit if the wound closes at `closure_days` (None: not within the horizon)."""
    if closure_days is None:
        return current_area
    if days >= closure_days:
        return 0.0
    return current_area * (1.0 - days / closure_days) ** shape


def trajectory(curve: Curve, current_area: float, shape: float = 1.0, horizon_weeks: int = 52) -> dict:
    """Weekly P(healed) and median area with an 80 % band, median weeks with an interval, milestones."""
    weeks = min(horizon_weeks, int(curve.horizon_days // DAYS_PER_WEEK))
    low_t, high_t = (curve.quantile(q) for q in BAND)
    median = curve.quantile(0.5)
    points = []
    for week in range(weeks + 1):
        days = week * DAYS_PER_WEEK
        points.append(
            {
                "week": week,
                "p_healed": 1.0 - curve.survival(days),
                "area_cm2": area_at(days, current_area, median, shape),
                "area_low_cm2": area_at(days, current_area, low_t, shape),
                "area_high_cm2": area_at(days, current_area, high_t, shape),
            }
        )
    return {
        "horizon_weeks": weeks,
        "median_weeks": _weeks(median),
        "median_interval_weeks": [_weeks(low_t), _weeks(high_t)],
        "p_healed_by_week": {str(w): 1.0 - curve.survival(w * DAYS_PER_WEEK) for w in MILESTONE_WEEKS if w <= weeks},
        "points": points,
    }


def _weeks(days: float | None) -> float | None:
    return None if days is None else days / DAYS_PER_WEEK
