/* Survival-curve summaries compiled into every model library beside TL2cgen's generated code: the serving twin of
   model_build/trajectory.py's Curve for many shifted curves per call: the same quantities, with one exp per interval
   where Curve spends three (the two agree to rounding; tests hold them within 1e-12). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define WOUNDCARE_OK 0
#define WOUNDCARE_BAD_SHAPE 2
#define WOUNDCARE_NO_MEMORY 3

/* The first k with values[k] > x (values ascending), as Python's bisect_right. */
static int32_t bisect_right(const double* values, int32_t n, double x) {
  int32_t lo = 0, hi = n;
  while (lo < hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (x < values[mid]) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

/* The first k with values[k] >= x (values ascending), as Python's bisect_left. */
static int32_t bisect_left(const double* values, int32_t n, double x) {
  int32_t lo = 0, hi = n;
  while (lo < hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (values[mid] < x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/* Curves on n_intervals intervals (edges[0] = 0 < ... < edges[n_intervals], days), one per shift: interval k's
   hazard logit is margins[k] + shifts[i]. For curve i writes survival at each of `days` (0 <= day <= last edge)
   into survival[i * n_days ...], the day each share in `quantiles` has healed (NAN beyond the last edge) into
   quantile_days[i * n_quantiles ...], and the area under survival on [0, until] into areas[i].
   Returns WOUNDCARE_OK or an error code. Pure: safe to call from many threads. */
int32_t woundcare_curve_summaries(const double* edges, int32_t n_intervals, const double* margins,
                                  const double* shifts, int32_t n_shifts, const double* days, int32_t n_days,
                                  const double* quantiles, int32_t n_quantiles, double until, double* survival,
                                  double* quantile_days, double* areas) {
  if (n_intervals < 1 || n_shifts < 0 || n_days < 0 || n_quantiles < 0 || edges[0] != 0.0 ||
      !(until >= 0.0 && until <= edges[n_intervals])) {
    return WOUNDCARE_BAD_SHAPE;
  }
  for (int32_t d = 0; d < n_days; ++d) {
    if (!(days[d] >= 0.0 && days[d] <= edges[n_intervals])) { /* also NaN */
      return WOUNDCARE_BAD_SHAPE;
    }
  }
  const int32_t n_edges = n_intervals + 1;
  double* work = malloc(sizeof(double) * (size_t)(4 * n_edges));
  if (work == NULL) {
    return WOUNDCARE_NO_MEMORY;
  }
  double* rates = work;               /* n_intervals */
  double* hazard = work + n_edges;    /* cumulative hazard at each edge */
  double* open = work + 2 * n_edges;  /* survival at each edge */
  double* open_share = work + 3 * n_edges;
  int32_t until_k = bisect_right(edges, n_edges, until) - 1; /* the interval `until` falls in (or the last edge) */
  until_k = until_k < n_intervals ? until_k : n_intervals;
  for (int32_t i = 0; i < n_shifts; ++i) {
    hazard[0] = 0.0;
    open[0] = 1.0;
    for (int32_t k = 0; k < n_intervals; ++k) {
      /* One exp per interval: the odds e^m give the rate softplus(m) = log1p(odds) (kept above zero where the
         hazard underflows), survival falls by 1 / (1 + odds), and the hazard odds / (1 + odds) gives the share of
         the interval's width a wound open at its start stays open, (1 - e^-rate) / rate. */
      double margin = shifts[i] + margins[k], odds = exp(margin);
      double rate = margin > 35.0 ? margin : log1p(odds);
      if (rate < 1e-300) {
        rate = 1e-300;
      }
      rates[k] = rate;
      hazard[k + 1] = hazard[k] + rate;
      open[k + 1] = open[k] / (1.0 + odds);
      if (margin > 35.0) {
        open_share[k] = 1.0 / rate; /* the hazard is 1 to double precision (and odds may be infinite) */
      } else {
        open_share[k] = rate < 1e-9 ? -expm1(-rate) / rate : odds / (1.0 + odds) / rate;
      }
    }
    for (int32_t d = 0; d < n_days; ++d) {
      int32_t k = bisect_right(edges, n_edges, days[d]) - 1;
      k = k < n_intervals ? k : n_intervals;
      double frac = days[d] == edges[k] ? 0.0 : (days[d] - edges[k]) / (edges[k + 1] - edges[k]);
      survival[(size_t)i * n_days + d] = frac == 0.0 ? open[k] : open[k] * exp(-frac * rates[k]);
    }
    for (int32_t q = 0; q < n_quantiles; ++q) {
      double target = -log1p(-quantiles[q]);
      int32_t k = bisect_left(hazard, n_edges, target);
      double day = NAN;
      if (k == 0) {
        day = edges[0];
      } else if (k < n_edges) {
        day = edges[k - 1] + (edges[k] - edges[k - 1]) * (target - hazard[k - 1]) / rates[k - 1];
      }
      quantile_days[(size_t)i * n_quantiles + q] = day;
    }
    double area = 0.0;
    for (int32_t k = 0; k < until_k; ++k) {
      area += open[k] * (edges[k + 1] - edges[k]) * open_share[k];
    }
    if (until_k < n_intervals && until > edges[until_k]) {
      double width = edges[until_k + 1] - edges[until_k], rate = rates[until_k];
      area -= open[until_k] * width * expm1(-rate * (until - edges[until_k]) / width) / rate;
    }
    areas[i] = area;
  }
  free(work);
  return WOUNDCARE_OK;
}
