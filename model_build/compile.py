"""Native build of a fitted scikit-learn tree ensemble: Treelite import, TL2cgen C, gcc -O3 shared library, bundle."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import tl2cgen
import treelite
import treelite.sklearn
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, HistGradientBoostingRegressor

from woundcare_scoring.native import BUNDLE_FORMAT, BUNDLE_JSON, LIBRARY, NativeModel

PARITY_TOLERANCE = 1e-9
TOOLCHAIN = "gcc"
NODES_PER_UNIT = 500
LOG_LINK_LOSSES = frozenset({"poisson", "gamma"})  # HistGradientBoostingRegressor: predict = exp(margin)
# What tl2cgen's gcc recipe runs (tl2cgen/contrib/gcc.py); recorded, not chosen: -O3 is its default.
BUILD_FLAGS = ("-O3", "-fPIC", "-std=c99", "-lm")
# Our C compiled into the library beside the generated code: woundcare_predict_batch, woundcare_curve_summaries.
EXTRA_SOURCES = ("native_batch.c", "native_curves.c")


class CompileError(Exception):
    """The estimator cannot be compiled faithfully, or the compiled library disagrees with it."""


def compile_model(
    estimator: Any,
    out_dir: str | Path,
    feature_names: Sequence[str],
    metadata: dict[str, Any],
    *,
    parity_rows: np.ndarray | None = None,
) -> Path:
    """Compile a fitted tree ensemble into a new bundle dir (model.so + bundle.json); gate on parity if rows given.

    The bundle is built beside out_dir and moved into place whole: a failed build leaves nothing there.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise CompileError(f"bundle directory is not empty: {out}")
    names = list(feature_names)
    _check_features(estimator, names)
    tl_model = _import(estimator)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as work:
        staged = Path(work) / "bundle"
        staged.mkdir()
        n_units = _build_library(tl_model, _tree_sizes(estimator), Path(work) / "src", staged / LIBRARY)
        spec = {
            "format": BUNDLE_FORMAT,
            "estimator": type(estimator).__name__,
            "feature_names": names,
            "n_features": len(names),
            "threshold_type": tl_model.input_type,
            "outputs": _output_spec(estimator, tl_model),
            "input": _input_spec(estimator, names),
            "build": {
                "treelite": treelite.__version__,
                "tl2cgen": tl2cgen.__version__,
                "compiler": _compiler_version(),
                "flags": list(BUILD_FLAGS),
                "parallel_comp": n_units,
                "machine": platform.machine(),
            },
            "metadata": metadata,
            "sha256": {LIBRARY: _sha256(staged / LIBRARY)},
        }
        _write_spec(staged, spec)
        if parity_rows is not None:
            spec["parity"] = _parity(estimator, staged, parity_rows)
            _write_spec(staged, spec)
        staged.replace(out)
    return out


def reference_outputs(estimator: Any, X: np.ndarray, *, raw_margin: bool = False) -> np.ndarray:
    """The scikit-learn output the bundle reproduces, shaped (rows, outputs) like NativeModel.predict_rows."""
    if raw_margin and hasattr(estimator, "decision_function"):
        out = estimator.decision_function(X)
    elif raw_margin and getattr(estimator, "loss", None) in LOG_LINK_LOSSES:
        out = np.log(estimator.predict(X))
    elif hasattr(estimator, "predict_proba"):
        out = estimator.predict_proba(X)
        if _single_score(estimator):
            out = out[:, 1]
    else:
        out = estimator.predict(X)
    return np.asarray(out, dtype=np.float64).reshape(len(X), -1)


def max_parity_error(estimator: Any, bundle_dir: str | Path, X: np.ndarray, *, raw_margin: bool = False) -> float:
    """Largest absolute difference between the compiled bundle and scikit-learn over the rows of X (NaN = missing)."""
    native = np.array(NativeModel.load(bundle_dir).predict_rows(X.tolist(), raw_margin=raw_margin))
    expected = reference_outputs(estimator, X, raw_margin=raw_margin)
    if native.shape != expected.shape:
        raise CompileError(f"compiled output shape {native.shape} != scikit-learn {expected.shape}")
    return float(np.max(np.abs(native - expected), initial=0.0))


def _import(estimator: Any) -> treelite.Model:
    try:
        tl_model = treelite.sklearn.import_model(estimator)
    except (treelite.TreeliteError, NotImplementedError) as exc:
        raise CompileError(f"Treelite cannot import {type(estimator).__name__}: {exc}") from exc
    if isinstance(estimator, GradientBoostingClassifier) and estimator.loss == "exponential":
        # sklearn's exponential loss reads P(classes_[1]) = expit(2·margin); Treelite's importer assumes expit(margin).
        tl_model.get_header_accessor().set_field("sigmoid_alpha", np.array([2.0], dtype=np.float32))
    return tl_model


def _build_library(tl_model: treelite.Model, tree_sizes: list[int], src: Path, library: Path) -> int:
    """TL2cgen C code in translation units, compiled in parallel into `library`; returns the number of units."""
    cores = os.cpu_count() or 1
    # gcc -O3 slows super-linearly on big functions (one per unit): ~500 nodes a unit cut a 300-tree build's
    # CPU time from 17 s (2 units) to 8 s (32 units) on 2 cores.
    n_units = min(len(tree_sizes), max(cores, math.ceil(sum(tree_sizes) / NODES_PER_UNIT)))
    src.mkdir()
    tl2cgen.generate_c_code(tl_model, src, params={"parallel_comp": n_units})
    _add_sources(src)
    built = tl2cgen.create_shared(TOOLCHAIN, src, nthread=cores, options=[], long_build_time_warning=False)
    os.replace(built, library)
    return n_units


def _add_sources(src: Path) -> None:
    """Put EXTRA_SOURCES beside the generated sources (native_batch.c includes their header.h) and in the recipe."""
    recipe_path = src / "recipe.json"
    recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
    for name in EXTRA_SOURCES:
        code = (resources.files("model_build") / name).read_text(encoding="utf-8")
        (src / name).write_text(code, encoding="utf-8")
        recipe["sources"].append({"name": Path(name).stem, "length": code.count("\n")})
    recipe_path.write_text(json.dumps(recipe), encoding="utf-8")


def _parity(estimator: Any, bundle: Path, rows: np.ndarray) -> dict[str, Any]:
    """Both outputs (linked and raw margin) must match scikit-learn on the rows, or the build fails."""
    error = max(max_parity_error(estimator, bundle, rows, raw_margin=raw) for raw in (False, True))
    if not error <= PARITY_TOLERANCE:
        raise CompileError(f"compiled model differs from scikit-learn by {error:.3g} (> {PARITY_TOLERANCE})")
    return {"rows": len(rows), "max_abs_error": error, "tolerance": PARITY_TOLERANCE}


def _check_features(estimator: Any, names: list[str]) -> None:
    if len(names) != estimator.n_features_in_:
        raise CompileError(f"{len(names)} feature names for a model of {estimator.n_features_in_} features")
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None and list(fitted_names) != names:
        raise CompileError("feature names differ from the names the estimator was fitted with")


def _single_score(estimator: Any) -> bool:
    """Boosted binary classifiers compile to one score, P(classes_[1]); forests keep one column per class."""
    boosted = isinstance(estimator, GradientBoostingClassifier | HistGradientBoostingClassifier)
    return boosted and len(estimator.classes_) == 2


def _tree_sizes(estimator: Any) -> list[int]:
    """Node count of every tree, in the order Treelite imports them."""
    predictors = getattr(estimator, "_predictors", None)  # HistGradientBoosting: a list of trees per iteration
    if predictors is not None:
        return [len(tree.nodes) for trees in predictors for tree in trees]
    return [tree.tree_.node_count for tree in np.ravel(estimator.estimators_)]


def _output_spec(estimator: Any, tl_model: treelite.Model) -> dict[str, Any]:
    """What each output is and which scikit-learn call it equals, so a caller needs no scikit-learn to read it."""
    header = tl_model.get_header_accessor()
    spec: dict[str, Any] = {"link": header.get_field("postprocessor")}  # applied unless raw_margin=True
    if spec["link"] == "sigmoid":
        spec["sigmoid_alpha"] = float(header.get_field("sigmoid_alpha")[0])
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return spec | {"kind": "value", "names": ["prediction"], "method": "predict"}
    labels = [str(c) for c in classes]
    if _single_score(estimator):
        spec |= {"kind": "probability", "names": [f"P({labels[1]})"], "method": "predict_proba[:, 1]"}
    else:
        spec |= {"kind": "probability", "names": [f"P({c})" for c in labels], "method": "predict_proba"}
    if hasattr(estimator, "decision_function"):
        spec["raw_margin_method"] = "decision_function"
    return spec


def _input_spec(estimator: Any, names: list[str]) -> dict[str, Any]:
    """How the scorer must present a row so the trees see what scikit-learn's predict sees."""
    hist = isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor)
    # sklearn.tree casts X to float32 before comparing with its float64 thresholds; HistGradientBoosting keeps float64.
    spec: dict[str, Any] = {"dtype": "float64" if hist else "float32", "accepts_missing": _accepts_missing(estimator)}
    categorical = getattr(estimator, "is_categorical_", None) if hist else None
    if categorical is not None and categorical.any():
        spec["categories"] = _known_categories(estimator, names)
    return spec


def _accepts_missing(estimator: Any) -> bool:
    """Ask scikit-learn itself: some ensembles (GradientBoosting*) reject NaN at predict time."""
    try:
        estimator.predict(np.full((1, estimator.n_features_in_), np.nan))
    except ValueError:
        return False
    return True


def _known_categories(estimator: Any, names: list[str]) -> dict[str, list[int]]:
    """Raw category values seen in training per categorical feature; scikit-learn treats any other value as missing."""
    encoder = estimator._preprocessor.named_transformers_["encoder"]
    index = np.flatnonzero(estimator.is_categorical_)
    known: dict[str, list[int]] = {}
    for i, values in zip(index, encoder.categories_, strict=True):
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]
        # Treelite truncates category values to integers; anything else would silently change the splits.
        if not np.all((values >= 0) & (values == np.floor(values))):
            raise CompileError(f"categorical feature {names[i]!r} has values that are not non-negative integers")
        known[names[i]] = [int(v) for v in values]
    return known


def _compiler_version() -> str:
    result = subprocess.run([TOOLCHAIN, "-dumpfullversion"], capture_output=True, text=True, check=True)
    return f"{TOOLCHAIN} {result.stdout.strip()}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_spec(out: Path, spec: dict[str, Any]) -> None:
    (out / BUNDLE_JSON).write_text(json.dumps(spec, indent=2, allow_nan=False) + "\n", encoding="utf-8")
