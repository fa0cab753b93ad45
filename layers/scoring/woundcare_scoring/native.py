"""Scores a compiled model bundle through ctypes with the stdlib only, so inference never imports numpy or sklearn."""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import threading
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BUNDLE_FORMAT = 1
BUNDLE_JSON = "bundle.json"
LIBRARY = "model.so"


class BundleError(Exception):
    """A model bundle is incomplete, altered since it was built, or inconsistent with its library."""


class _Entry(ctypes.Union):
    """TL2cgen's `union Entry`: the generated code reads a feature as missing when `missing == -1`."""

    _fields_ = (("missing", ctypes.c_int), ("fvalue", ctypes.c_double), ("qvalue", ctypes.c_int))


def _missing_marker() -> float:
    """A NaN whose `missing` bytes read -1: storing it as a plain double marks the entry missing, on any endianness."""
    entry = _Entry()
    entry.fvalue = math.nan
    entry.missing = -1
    return entry.fvalue


_MISSING = _missing_marker()
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
# Union members share offset 0, so every (entry size / int size)-th int of the buffer is an entry's `missing`.
_FLAG_STRIDE = ctypes.sizeof(_Entry) // ctypes.sizeof(ctypes.c_int)


class _Buffers(threading.local):
    """Per-thread input/output buffers (threading.local re-runs __init__ in each thread): the library is pure."""

    def __init__(self, n_features: int, n_outputs: int) -> None:
        self.entries = (ctypes.c_double * n_features)()
        self.flags = (ctypes.c_int * (n_features * _FLAG_STRIDE)).from_buffer(self.entries)
        self.result = (ctypes.c_double * n_outputs)()


class NativeModel:
    """A TL2cgen-compiled tree ensemble and its bundle spec; one instance can serve many threads at once."""

    def __init__(self, lib: ctypes.CDLL, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.feature_names: list[str] = list(spec["feature_names"])
        self.n_features = len(self.feature_names)
        self.output_names: list[str] = list(spec["outputs"]["names"])
        self.n_outputs = len(self.output_names)
        self.metadata: dict[str, Any] = spec.get("metadata", {})
        self._predict = lib.predict
        self._predict.argtypes = (_DOUBLE_P, ctypes.c_int, _DOUBLE_P)
        self._predict.restype = None
        self._float32 = spec["input"]["dtype"] == "float32"
        self._accepts_missing = bool(spec["input"]["accepts_missing"])
        index = {name: i for i, name in enumerate(self.feature_names)}
        categories = spec["input"].get("categories", {})
        self._categories = [(index[name], frozenset(float(c) for c in known)) for name, known in categories.items()]
        self._buffers = _Buffers(self.n_features, self.n_outputs)

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
        buffers = self._buffers
        self._fill(buffers, values)
        result = buffers.result
        # The generated predict() ADDS each tree's leaf into result: it must start at zero on every call.
        ctypes.memset(result, 0, ctypes.sizeof(result))
        self._predict(buffers.entries, 1 if raw_margin else 0, result)
        return result[:]

    def predict_rows(self, rows: Iterable[Sequence[float | None]], *, raw_margin: bool = False) -> list[list[float]]:
        """predict_row over many rows, reusing this thread's buffers."""
        return [self.predict_row(row, raw_margin=raw_margin) for row in rows]

    def _fill(self, buffers: _Buffers, values: Sequence[float | None]) -> None:
        if len(values) != self.n_features:
            raise ValueError(f"expected {self.n_features} feature values, got {len(values)}")
        try:
            if self._float32:  # sklearn.tree casts X to float32 before comparing with its float64 thresholds
                values = array("f", [math.nan if v is None else v for v in values]).tolist()
            row: list[Any] = [_MISSING if v is None or v != v else float(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError("feature values must be numbers or None") from None  # never echo a row value
        for i, known in self._categories:
            if row[i] not in known:
                row[i] = _MISSING  # sklearn maps unseen (or negative, fractional) categories to missing
        n_missing = row.count(_MISSING)  # by identity: every missing entry is that one object
        if n_missing and not self._accepts_missing:
            raise ValueError("this model does not accept missing values (as its scikit-learn estimator)")
        entries = buffers.entries
        entries[:] = row
        flags = buffers.flags[::_FLAG_STRIDE]
        if flags.count(-1) != n_missing:
            # A present double whose low 32 bits are all ones (e.g. the one just below 1.5) reads as missing
            # to the generated code: move it one ulp toward zero, which flips a split only if a threshold
            # sits exactly on that ulp.
            for i, flag in enumerate(flags):
                if flag == -1 and row[i] is not _MISSING:
                    entries[i] = math.nextafter(row[i], 0.0)


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
