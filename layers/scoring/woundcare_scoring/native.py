"""Scores a compiled model bundle through ctypes with the stdlib only, so inference never imports numpy or sklearn."""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

# 2: the library carries woundcare_predict_batch (model_build/native_batch.c);
# 3: and woundcare_curve_summaries (model_build/native_curves.c).
BUNDLE_FORMAT = 3
BUNDLE_JSON = "bundle.json"
LIBRARY = "model.so"
BATCH_ENTRY = "woundcare_predict_batch"
CURVES_ENTRY = "woundcare_curve_summaries"

# woundcare_predict_batch's return codes (model_build/native_batch.c).
_OK, _MISSING_REFUSED = 0, 1
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_ADDRESS = ctypes.c_void_p


class BundleError(Exception):
    """A model bundle is incomplete, altered since it was built, or inconsistent with its library."""


class _Column(ctypes.Structure):
    """native_batch.c's `struct woundcare_column`: known category values ascending, or n_known < 0 if numeric."""

    _fields_ = (("n_known", ctypes.c_int32), ("known", _DOUBLE_P))


class NativeModel:
    """A TL2cgen-compiled tree ensemble and its bundle spec; one instance can serve many threads at once."""

    def __init__(self, lib: ctypes.CDLL, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.feature_names: list[str] = list(spec["feature_names"])
        self.n_features = len(self.feature_names)
        self.output_names: list[str] = list(spec["outputs"]["names"])
        self.n_outputs = len(self.output_names)
        self.metadata: dict[str, Any] = spec.get("metadata", {})
        self._batch = getattr(lib, BATCH_ENTRY)
        self._batch.argtypes = (
            _DOUBLE_P, ctypes.c_int64, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
            ctypes.POINTER(_Column), _DOUBLE_P,
        )  # fmt: skip
        self._batch.restype = ctypes.c_int32
        self._curves = getattr(lib, CURVES_ENTRY)
        # double arrays passed by address (`_address`)
        self._curves.argtypes = (
            _ADDRESS, ctypes.c_int32, _ADDRESS, _ADDRESS, ctypes.c_int32, _ADDRESS, ctypes.c_int32,
            _ADDRESS, ctypes.c_int32, ctypes.c_double, _ADDRESS, _ADDRESS, _ADDRESS,
        )  # fmt: skip
        self._curves.restype = ctypes.c_int32
        self._float32 = int(spec["input"]["dtype"] == "float32")
        self._accepts_missing = int(bool(spec["input"]["accepts_missing"]))
        categories = spec["input"].get("categories", {})
        self._known = {name: (ctypes.c_double * len(v))(*sorted(map(float, v))) for name, v in categories.items()}
        self._columns = (_Column * self.n_features)(
            *(
                _Column(len(self._known[n]), self._known[n]) if n in self._known else _Column(-1)
                for n in self.feature_names
            )
        )

    @classmethod
    def load(cls, bundle_dir: str | Path, verify: bool = True) -> NativeModel:
        """Open a bundle; with verify, refuse a library whose sha256 differs from the one recorded at build.

        dlopen keeps one library per path for the process: a rebuilt library at an already-loaded path is
        not reloaded, so give every build its own directory.
        """
        root = Path(bundle_dir)
        try:
            spec = json.loads((root / BUNDLE_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot read {BUNDLE_JSON} in {root}: {exc}") from exc
        if spec.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"unsupported bundle format {spec.get('format')!r} (expected {BUNDLE_FORMAT})")
        if verify:
            _verify_checksums(root, spec.get("sha256", {}))
        try:
            lib = ctypes.CDLL(str((root / LIBRARY).resolve()))
        except OSError as exc:
            raise BundleError(f"cannot load {LIBRARY} from {root}: {exc}") from exc
        _check_library(lib, spec)
        return cls(lib, spec)

    def predict_row(self, values: Sequence[float | None], *, raw_margin: bool = False) -> list[float]:
        """Outputs for one row in feature order (None or NaN = missing), as bundle.json's outputs describe them.

        raw_margin=True skips the link (sigmoid/softmax/exp) and returns the margin, e.g. decision_function.
        """
        if len(values) != self.n_features:
            raise ValueError(f"expected {self.n_features} feature values, got {len(values)}")
        return self.predict_batch(values, 1, raw_margin=raw_margin)

    def predict_rows(self, rows: Iterable[Sequence[float | None]], *, raw_margin: bool = False) -> list[list[float]]:
        """Outputs for many rows, one list per row, scored in one native call."""
        rows = list(rows)
        if any(len(row) != self.n_features for row in rows):
            raise ValueError(f"expected {self.n_features} feature values in every row")
        flat = self.predict_batch(_doubles(chain.from_iterable(rows)), len(rows), raw_margin=raw_margin)
        k = self.n_outputs
        return [flat[i : i + k] for i in range(0, len(flat), k)]

    def predict_batch(
        self, values: array | Sequence[float | None], n_rows: int, *, raw_margin: bool = False
    ) -> list[float]:
        """Outputs of n_rows rows given as one flat row-major sequence (array('d') is used without copying).

        Returns n_rows × n_outputs values, row-major, from ONE native call: per-row Python work is what makes
        scoring slow, not the trees.
        """
        flat = values if isinstance(values, array) and values.typecode == "d" else _doubles(values)
        if len(flat) != n_rows * self.n_features:
            raise ValueError(f"expected {n_rows} rows of {self.n_features} feature values, got {len(flat)} values")
        out = array("d", bytes(8 * n_rows * self.n_outputs))
        self._score_into(flat, n_rows, out, raw_margin=raw_margin)
        return out.tolist()

    def _score_into(self, flat: array, n_rows: int, out: array, *, raw_margin: bool) -> None:
        # from_buffer pins both arrays (no resize) while the call runs without the GIL.
        status = self._batch(
            (ctypes.c_double * len(flat)).from_buffer(flat), n_rows, self.n_features, int(raw_margin),
            self._float32, self._accepts_missing, self._columns, (ctypes.c_double * len(out)).from_buffer(out),
        )  # fmt: skip
        if status == _MISSING_REFUSED:
            raise ValueError("this model does not accept missing values (as its scikit-learn estimator)")
        if status != _OK:
            raise BundleError(f"{BATCH_ENTRY} failed with status {status}")

    def curve_summaries(
        self,
        edges: Sequence[float],
        margins: Sequence[float],
        shifts: Sequence[float],
        days: Sequence[float],
        quantiles: Sequence[float],
        until: float,
    ) -> tuple[list[float], list[float], list[float]]:
        """Survival curves on `edges` with hazard logits `margins` shifted by each of `shifts`, in one native call:
        (survival at `days` per shift, row-major; days each share in `quantiles` has healed, NaN beyond the last
        edge; area under survival on [0, until] per shift). The formulas are model_build.trajectory.Curve's."""
        if len(edges) != len(margins) + 1 or not margins:
            raise ValueError("a curve needs one margin per interval")
        checked_days = (*days, until)
        if (
            edges[0] != 0.0
            or not 0.0 <= min(checked_days) <= max(checked_days) <= edges[-1]
            or any(map(math.isnan, checked_days))  # NaN passes the comparisons above
        ):
            raise ValueError("days must lie within the interval edges")
        if not all(0.0 <= q < 1.0 for q in quantiles):
            raise ValueError("quantiles must lie in [0, 1)")
        if not all(map(math.isfinite, (*margins, *shifts))):
            raise ValueError("margins and shifts must be finite")
        n_shifts = len(shifts)
        survival, quantile_days, areas = (
            array("d", bytes(8 * n)) for n in (n_shifts * len(days), n_shifts * len(quantiles), n_shifts)
        )
        given = (edges, margins, shifts, days, quantiles)
        edges_in, margins_in, shifts_in, days_in, quantiles_in = converted = [array("d", values) for values in given]
        if list(map(len, converted)) != list(map(len, given)):  # bytes: array() would read them as raw doubles
            raise ValueError("edges, margins, shifts, days and quantiles must be sequences of numbers")
        status = self._curves(
            _address(edges_in), len(margins), _address(margins_in), _address(shifts_in), n_shifts,
            _address(days_in), len(days), _address(quantiles_in), len(quantiles), until,
            _address(survival), _address(quantile_days), _address(areas),
        )  # fmt: skip
        if status != _OK:
            raise BundleError(f"{CURVES_ENTRY} failed with status {status}")
        return survival.tolist(), quantile_days.tolist(), areas.tolist()


def _address(values: array) -> int:
    """Where a double array's items start, for the library: only for arrays the caller alone holds, so that none
    can be resized (moved) while the library runs without the GIL."""
    return values.buffer_info()[0]


def _doubles(values: Iterable[float | None]) -> array:
    """Feature values as a C double array, None read as NaN (missing)."""
    try:
        return array("d", [math.nan if v is None else v for v in values])
    except (TypeError, OverflowError):
        raise ValueError("feature values must be numbers or None") from None  # never echo a row value


def _verify_checksums(root: Path, recorded: dict[str, str]) -> None:
    if LIBRARY not in recorded:
        raise BundleError(f"{BUNDLE_JSON} records no checksum for {LIBRARY}")
    for name, expected in recorded.items():
        try:
            actual = hashlib.sha256((root / name).read_bytes()).hexdigest()
        except OSError as exc:
            raise BundleError(f"bundle file {name} is unreadable: {exc}") from exc
        if actual != expected:
            raise BundleError(f"checksum mismatch for {name}: the bundle was altered after it was built")


def _check_library(lib: ctypes.CDLL, spec: dict[str, Any]) -> None:
    """The library must agree with bundle.json, and use the double-precision layout this scorer writes."""
    for entry in (BATCH_ENTRY, CURVES_ENTRY):
        if not hasattr(lib, entry):
            raise BundleError(f"library has no {entry}: rebuild the bundle")
    for name, restype in (
        ("get_num_feature", ctypes.c_int32),
        ("get_num_target", ctypes.c_int32),
        ("get_threshold_type", ctypes.c_char_p),
        ("get_leaf_output_type", ctypes.c_char_p),
    ):
        getattr(lib, name).restype = restype
    n_target = lib.get_num_target()
    num_class = (ctypes.c_int32 * n_target)()
    lib.get_num_class(num_class)
    found = {
        "features": lib.get_num_feature(),
        "threshold type": lib.get_threshold_type().decode(),
        "leaf output type": lib.get_leaf_output_type().decode(),
        "outputs": n_target * max(num_class),
    }
    expected = {
        "features": len(spec["feature_names"]),
        "threshold type": spec["threshold_type"],
        "leaf output type": "float64",
        "outputs": len(spec["outputs"]["names"]),
    }
    if spec["threshold_type"] != "float64":
        raise BundleError(f"threshold type {spec['threshold_type']!r} unsupported: entries are written as float64")
    for key, value in expected.items():
        if found[key] != value:
            raise BundleError(f"library {key} {found[key]!r} != {value!r} recorded in {BUNDLE_JSON}")
