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
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from operator import mul, neg, sub, truediv
from typing import NamedTuple

from model_build.precision import AREA_CM2, WEEKS, complements, rounded, rounded_all

DAYS_PER_WEEK = 7.0
MILESTONE_WEEKS = (4, 8, 12, 24)
BAND = (0.1, 0.9)  # the 80 % band and interval


@dataclass(frozen=True)
class Curve:
    """Survival (not yet healed) as a function of days since the visit, up to the last edge (the horizon).

    Built once per curve: the interval rates softplus(m_k), the cumulative hazard H and S = exp(-H) at every edge;
    queries then cost at most one exp each (none at an edge). The per-interval arithmetic runs as `map`s over
    builtins: the options build dozens of shifted curves per request.
    """

    edges: tuple[float, ...]  # 0 = edge_0 < edge_1 < ... (days)
    margins: tuple[float, ...]  # one per interval
    _rates: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _hazard: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _s: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.margins) + 1:
            raise ValueError("a curve needs one margin per interval")
        margins = self.margins
        if margins and min(margins) >= -690.0 and max(margins) <= 35.0:  # above -690.8 = log(1e-300): no rate floor
            rates = tuple(map(math.log1p, map(math.exp, margins)))
        else:
            rates = tuple(map(_softplus, margins))
        hazard = tuple(accumulate(rates, initial=0.0))
        object.__setattr__(self, "_rates", rates)
        object.__setattr__(self, "_hazard", hazard)
        object.__setattr__(self, "_s", tuple(map(math.exp, map(neg, hazard))))

    @property
    def horizon_days(self) -> float:
        return self.edges[-1]

    def shifted(self, log_odds: float) -> Curve:
        """The curve with every interval's hazard logit raised by `log_odds` (a proportional-odds effect)."""
        return Curve(self.edges, tuple(map(log_odds.__add__, self.margins)))

    def survival(self, days: float) -> float:
        """P(not healed by `days`), 0 <= days <= horizon."""
        if not 0.0 <= days <= self.horizon_days:
            raise ValueError("days must lie within the model horizon")
        return self.survival_at(locate(self.edges, (days,)))[0]

    def survival_at(self, located: Sequence[tuple[int, float]]) -> list[float]:
        """P(not healed) at days already placed on this curve's edges by `locate` (one placement, many curves)."""
        s, hazard, rates, exp = self._s, self._hazard, self._rates, math.exp
        return [s[k] if frac == 0.0 else exp(-(hazard[k] + frac * rates[k])) for k, frac in located]

    def quantile(self, q: float) -> float | None:
        """Days by which a share q of such wounds has healed; None when that lies beyond the horizon."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """`quantile` for each of `qs`: where the cumulative hazard reaches -log(1 - q), linear inside an interval."""
        out: list[float | None] = []
        hazard, edges, rates = self._hazard, self.edges, self._rates
        for q in qs:
            target = -math.log1p(-q)
            k = bisect_left(hazard, target)  # the first edge by which the share q has healed
            if k == len(hazard):
                out.append(None)
            elif k == 0:
                out.append(edges[0])
            else:
                out.append(edges[k - 1] + (edges[k] - edges[k - 1]) * (target - hazard[k - 1]) / rates[k - 1])
        return out

    def restricted_mean(self, until: float) -> float:
        """Area under S(t) on [0, until]: expected days open within it (exact: hazards are piecewise constant).

        Over (part of) an interval of width w and rate r, starting at S(lo), the area is S(lo) * w * (1 - e^-r) / r
        with r scaled to the part: expm1 keeps that exact for small rates.
        """
        edges, rates, s = self.edges, self._rates, self._s
        k = min(bisect_right(edges, until) - 1, len(rates))  # the interval `until` falls in (or the horizon)
        widths = _widths(edges)[:k]
        open_shares = map(truediv, map(math.expm1, map(neg, rates[:k])), rates[:k])  # -(1 - e^-r) / r
        total = -sum(map(mul, map(mul, s[:k], widths), open_shares))
        if k < len(rates) and until > edges[k]:
            width, rate = edges[k + 1] - edges[k], rates[k]
            total -= s[k] * width * math.expm1(-rate * (until - edges[k]) / width) / rate
        return total


def _softplus(margin: float) -> float:
    """softplus(m) = log(1 + e^m), kept above zero for margins so low their hazard underflows."""
    return margin if margin > 35.0 else max(math.log1p(math.exp(margin)), 1e-300)


@lru_cache(maxsize=8)
def _widths(edges: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(map(sub, edges[1:], edges[:-1]))


def locate(edges: Sequence[float], days: Sequence[float]) -> list[tuple[int, float]]:
    """For each day, the k with edges[k] <= day < edges[k+1] (the last edge for the horizon itself) and the
    fraction of that interval elapsed: 0 exactly at an edge."""
    out = []
    last = len(edges) - 1
    for day in days:
        k = min(bisect_right(edges, day) - 1, last)
        out.append((k, 0.0 if day == edges[k] else (day - edges[k]) / (edges[k + 1] - edges[k])))
    return out


class CurveSummaries(NamedTuple):
    """Curves' survival at the days asked, the days their shares asked have healed (None beyond the horizon), and
    their restricted means (days open within the `until` asked): curve by curve, in flat lists, as the compiled
    library returns them (curve i's survival at survival[i * len(days) + d])."""

    survival: list[float]
    quantile_days: list[float | None]
    restricted_means: list[float]


class CurveQuery(NamedTuple):
    """What to read off a curve: survival at `days`, the days by which each share in `quantiles` has healed, and
    the restricted mean up to `until` (all days since the visit, within the curve's edges)."""

    days: Sequence[float]
    quantiles: Sequence[float]
    until: float


# Summaries of the curve on `edges` with hazard logits `margins`, shifted by each of `shifts`, as asked.
Summarise = Callable[[Sequence[float], Sequence[float], Sequence[float], CurveQuery], CurveSummaries]


def summarise_curves(
    edges: Sequence[float], margins: Sequence[float], shifts: Sequence[float], query: CurveQuery
) -> CurveSummaries:
    """The reference `Summarise`, on `Curve`; serving uses the compiled bundle's twin (the same quantities in C)."""
    base, located = Curve(tuple(edges), tuple(margins)), locate(edges, query.days)
    summaries = CurveSummaries([], [], [])
    for shift in shifts:
        curve = base.shifted(shift)
        summaries.survival.extend(curve.survival_at(located))
        summaries.quantile_days.extend(curve.quantiles(query.quantiles))
        summaries.restricted_means.append(curve.restricted_mean(query.until))
    return summaries


def area_series(days: Sequence[float], current_area: float, closure_days: float | None, shape: float) -> list[float]:
    """Area at each of `days` after the visit if the wound closes at `closure_days` (None: not within the horizon):
    current_area × (1 - days / closure_days) ** shape, then 0."""
    if closure_days is None:
        return [current_area] * len(days)
    return [current_area * (1.0 - day / closure_days) ** shape if day < closure_days else 0.0 for day in days]


def shown_area_series(
    days: Sequence[float], current_area: float, closure_days: float | None, shape: float
) -> list[float]:
    """`area_series` at ascending `days`, to the precision shown: only the areas before closure are computed and
    rounded (0 after it); a wound not closed within the horizon shows its current area, rounded once."""
    if closure_days is None:
        return [rounded(current_area, AREA_CM2)] * len(days)
    n_open = bisect_left(days, closure_days)
    shown = rounded_all(area_series(days[:n_open], current_area, closure_days, shape), AREA_CM2)
    return shown + [0.0] * (len(days) - n_open)


def trajectory(
    edges: Sequence[float],
    margins: Sequence[float],
    current_area: float,
    shape: float = 1.0,
    horizon_weeks: int = 52,
    summarise: Summarise = summarise_curves,
) -> dict:
    """Weekly P(healed) and median area with an 80 % band (columns by week), median weeks with an interval,
    milestones."""
    weeks = min(horizon_weeks, int(edges[-1] // DAYS_PER_WEEK))
    days = weekly_days(weeks)
    summary = summarise(edges, margins, (0.0,), CurveQuery(days, (BAND[0], 0.5, BAND[1]), 0.0))
    low_t, median, high_t = summary.quantile_days
    p_healed = complements(summary.survival)
    return {
        "horizon_weeks": weeks,
        "median_weeks": shown_weeks(median),
        "median_interval_weeks": [shown_weeks(low_t), shown_weeks(high_t)],
        "p_healed_by_week": {str(w): p_healed[w] for w in MILESTONE_WEEKS if w <= weeks},
        "weekly": {  # one value per week 0..horizon_weeks, as columns (a chart's series)
            "week": list(range(weeks + 1)),
            "p_healed": p_healed,
            "area_cm2": shown_area_series(days, current_area, median, shape),
            "area_low_cm2": shown_area_series(days, current_area, low_t, shape),
            "area_high_cm2": shown_area_series(days, current_area, high_t, shape),
        },
    }


@lru_cache(maxsize=8)
def weekly_days(weeks: int) -> tuple[float, ...]:
    """Days since the visit of weeks 0..weeks."""
    return tuple(week * DAYS_PER_WEEK for week in range(weeks + 1))


def shown_weeks(days: float | None) -> float | None:
    """Days as weeks, at the precision the answer shows (None: beyond the horizon)."""
    return None if days is None else rounded(days / DAYS_PER_WEEK, WEEKS)
