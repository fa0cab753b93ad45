/* Batch entry point compiled into every model library beside TL2cgen's generated code: scores many rows in one
   call and applies the input rules scikit-learn's predict applies (see woundcare_scoring/native.py). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

#define WOUNDCARE_OK 0
#define WOUNDCARE_MISSING_REFUSED 1
#define WOUNDCARE_BAD_SHAPE 2
#define WOUNDCARE_NO_MEMORY 3

/* One input column: the category values seen in training, ascending, or n_known < 0 for a numeric column. */
struct woundcare_column {
  int32_t n_known;
  const double* known;
};

static int is_known(double value, const struct woundcare_column* column) {
  int32_t lo = 0, hi = column->n_known;
  while (lo < hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (column->known[mid] < value) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < column->n_known && column->known[lo] == value;
}

/* Fills one row of entries; returns 0, or WOUNDCARE_MISSING_REFUSED for a missing value the model refuses. */
static int fill_row(const double* x, int32_t n_cols, int32_t as_float32, int32_t accepts_missing,
                    const struct woundcare_column* columns, union Entry* row) {
  for (int32_t j = 0; j < n_cols; ++j) {
    /* sklearn.tree casts X to float32 before comparing with its float64 thresholds. */
    double value = as_float32 ? (double)(float)x[j] : x[j];
    /* sklearn maps unseen (or negative, fractional) categories to missing. */
    if (isnan(value) || (columns[j].n_known >= 0 && !is_known(value, &columns[j]))) {
      if (!accepts_missing) {
        return WOUNDCARE_MISSING_REFUSED;
      }
      row[j].missing = -1;
      continue;
    }
    row[j].fvalue = value;
    if (row[j].missing == -1) {
      /* A present double whose `missing` bytes read -1 (e.g. the one just below 1.5) would look missing to the
         generated code: move it one ulp toward zero, which flips a split only if a threshold sits on that ulp. */
      row[j].fvalue = nextafter(value, 0.0);
    }
  }
  return WOUNDCARE_OK;
}

/* Scores n_rows rows of n_cols values (row-major, NaN = missing) into out (n_rows x outputs, row-major).
   Returns WOUNDCARE_OK, or an error code and then out is incomplete. Pure: safe to call from many threads. */
int32_t woundcare_predict_batch(const double* X, int64_t n_rows, int32_t n_cols, int32_t pred_margin,
                                int32_t as_float32, int32_t accepts_missing,
                                const struct woundcare_column* columns, double* out) {
  const size_t n_out = (size_t)N_TARGET * MAX_N_CLASS;
  if (n_cols != get_num_feature() || n_rows < 0) {
    return WOUNDCARE_BAD_SHAPE;
  }
  union Entry* row = malloc(sizeof(union Entry) * (size_t)(n_cols > 0 ? n_cols : 1));
  if (row == NULL) {
    return WOUNDCARE_NO_MEMORY;
  }
  int status = WOUNDCARE_OK;
  for (int64_t r = 0; r < n_rows && status == WOUNDCARE_OK; ++r) {
    status = fill_row(X + r * n_cols, n_cols, as_float32, accepts_missing, columns, row);
    if (status == WOUNDCARE_OK) {
      double* result = out + (size_t)r * n_out;
      memset(result, 0, n_out * sizeof(double)); /* the generated predict() ADDS each tree's leaf into result */
      predict(row, pred_margin, result);
    }
  }
  free(row);
  return status;
}
