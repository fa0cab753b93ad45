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


@dataclass(frozen=True)
class Curve:
    """Survival (not yet healed) as a function of days since the visit, up to the last edge (the horizon).

    Built once per curve: the interval rates softplus(m_k), log S and S at every edge; queries then cost at most one
    exp each (none at an edge).
    """

    edges: tuple[float, ...]  # 0 = edge_0 < edge_1 < ... (days)
    margins: tuple[float, ...]  # one per interval
    _rates: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _log_s: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _s: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.margins) + 1:
            raise ValueError("a curve needs one margin per interval")
        exp, log1p = math.exp, math.log1p
        rates = [m if m > 35.0 else log1p(exp(m)) for m in self.margins]  # softplus(m) = -log(1 - h_k), inlined
        log_s = [0.0]
        for rate in rates:
            log_s.append(log_s[-1] - rate)
        object.__setattr__(self, "_rates", tuple(rates))
        object.__setattr__(self, "_log_s", tuple(log_s))
        object.__setattr__(self, "_s", tuple(map(math.exp, log_s)))

    @property
    def horizon_days(self) -> float:
        return self.edges[-1]

    def shifted(self, log_odds: float) -> Curve:
        """The curve with every interval's hazard logit raised by `log_odds` (a proportional-odds effect)."""
        return Curve(self.edges, tuple(m + log_odds for m in self.margins))

    def survival(self, days: float) -> float:
        """P(not healed by `days`), 0 <= days <= horizon."""
        if not 0.0 <= days <= self.horizon_days:
            raise ValueError("days must lie within the model horizon")
        return self.survival_at(locate(self.edges, (days,)))[0]

    def survival_at(self, located: Sequence[tuple[int, float]]) -> list[float]:
        """P(not healed) at days already placed on this curve's edges by `locate` (one placement, many curves)."""
        s, log_s, rates = self._s, self._log_s, self._rates
        return [s[k] if frac == 0.0 else math.exp(log_s[k] - frac * rates[k]) for k, frac in located]

    def quantile(self, q: float) -> float | None:
        """Days by which a share q of such wounds has healed; None when that lies beyond the horizon."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """`quantile` for each of `qs` (ascending) in one pass over the intervals."""
        out: list[float | None] = [None] * len(qs)
        log_s, edges = self._log_s, self.edges
        j, targets = 0, [math.log1p(-q) for q in qs]
        for k, rate in enumerate(self._rates):
            while j < len(targets) and log_s[k + 1] <= targets[j]:
                out[j] = edges[k] + (edges[k + 1] - edges[k]) * (log_s[k] - targets[j]) / rate
                j += 1
            if j == len(targets):
                break
        return out

    def restricted_mean(self, until: float) -> float:
        """Area under S(t) on [0, until]: expected days open within it (exact: hazards are piecewise constant).

        Over a whole interval of width w and rate r the area is (S(lo) - S(hi)) * w / r; small rates and the part
        interval before `until` use expm1 instead of that difference, which would lose precision.
        """
        total, edges, s = 0.0, self.edges, self._s
        for k, rate in enumerate(self._rates):
            lo, hi = edges[k], edges[k + 1]
            if lo >= until:
                break
            width = hi - lo
            if hi <= until and rate > 1e-3:
                total += (s[k] - s[k + 1]) * width / rate
            elif rate > 0.0:
                total += s[k] * -math.expm1(-rate * (min(hi, until) - lo) / width) * width / rate
            else:
                total += s[k] * (min(hi, until) - lo)
        return total


def locate(edges: Sequence[float], days: Sequence[float]) -> list[tuple[int, float]]:
    """For each day, the k with edges[k] <= day < edges[k+1] (the last edge for the horizon itself) and the
    fraction of that interval elapsed: 0 exactly at an edge."""
    out = []
    last = len(edges) - 1
    for day in days:
        k = min(_bisect_right(edges, day) - 1, last)
        out.append((k, 0.0 if day == edges[k] else (day - edges[k]) / (edges[k + 1] - edges[k])))
    return out


def _bisect_right(values: Sequence[float], x: float) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
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
