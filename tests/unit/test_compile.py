"""Native compilation: the ctypes scorer reproduces each scikit-learn tree ensemble, and bundles guard themselves."""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import shutil
import struct
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import ensemble
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits

from model_build import compile as compile_module
from model_build.compile import PARITY_TOLERANCE, CompileError, compile_model, max_parity_error, reference_outputs
from woundcare_scoring.native import BUNDLE_JSON, LIBRARY, BundleError, NativeModel

N_TRAIN = 2000
N_RANDOM = 2000
NAMES = ("f0", "f1", "f2", "f3", "cat")
CATEGORY = 4  # column index of the integer-coded category


@dataclass(frozen=True)
class Case:
    estimator: Any
    target: str
    missing: bool  # NaN in scoring rows (GradientBoosting* rejects NaN)
    trained_with_missing: bool = True  # else sklearn sends NaN to the child that saw more samples


CASES = {
    "hgb_binary_native_categorical": Case(
        ensemble.HistGradientBoostingClassifier(max_iter=25, categorical_features=[CATEGORY], random_state=0),
        "binary",
        True,
    ),
    "hgb_multiclass": Case(ensemble.HistGradientBoostingClassifier(max_iter=10, random_state=0), "multiclass", True),
    "hgb_regressor": Case(ensemble.HistGradientBoostingRegressor(max_iter=25, random_state=0), "value", True),
    "hgb_poisson": Case(ensemble.HistGradientBoostingRegressor(max_iter=25, loss="poisson"), "count", True),
    "hgb_trained_without_missing": Case(ensemble.HistGradientBoostingRegressor(max_iter=25), "value", True, False),
    "gb_binary": Case(ensemble.GradientBoostingClassifier(n_estimators=25, random_state=0), "binary", False),
    "gb_binary_exponential_loss": Case(
        ensemble.GradientBoostingClassifier(n_estimators=25, loss="exponential", random_state=0), "binary", False
    ),
    "gb_multiclass": Case(ensemble.GradientBoostingClassifier(n_estimators=8, random_state=0), "multiclass", False),
    "gb_regressor": Case(ensemble.GradientBoostingRegressor(n_estimators=25, random_state=0), "value", False),
    "rf_regressor": Case(ensemble.RandomForestRegressor(n_estimators=8, max_depth=8, random_state=0), "value", True),
    "rf_trained_without_missing": Case(
        ensemble.RandomForestRegressor(n_estimators=8, max_depth=8, random_state=0), "value", True, False
    ),
    "rf_classifier": Case(
        ensemble.RandomForestClassifier(n_estimators=8, max_depth=8, random_state=0), "multiclass", True
    ),
    "extra_trees_regressor": Case(
        ensemble.ExtraTreesRegressor(n_estimators=8, max_depth=8, random_state=0), "value", True
    ),
}


def _features(rng: np.random.Generator, n: int, *, missing: bool, unseen_categories: bool) -> np.ndarray:
    """Four numeric columns and an integer category (0..4; scoring also gets unseen, negative and fractional codes)."""
    X = rng.normal(size=(n, len(NAMES)))
    if unseen_categories:
        X[:, CATEGORY] = rng.integers(-1, 8, n) + np.where(rng.random(n) < 0.1, 0.5, 0.0)
    else:
        X[:, CATEGORY] = rng.integers(0, 5, n)
    if missing:
        for column, rate in ((0, 0.15), (1, 0.1), (CATEGORY, 0.1)):
            X[rng.random(n) < rate, column] = np.nan
    return X


def _target(X: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    f0 = np.nan_to_num(X[:, 0], nan=1.5)  # missing f0 behaves like a high value: NaN routing matters
    score = f0 + X[:, 1] * X[:, 2] + (X[:, CATEGORY] == 2) + rng.normal(scale=0.3, size=len(X))
    score = np.nan_to_num(score)
    if kind == "binary":
        return (score > 0.5).astype(int)
    if kind == "multiclass":
        return np.digitize(score, np.quantile(score, [0.33, 0.66]))
    if kind == "count":
        return rng.poisson(np.exp(np.clip(score, -3, 3) / 2))
    return score


def _split_points(estimator: Any) -> tuple[np.ndarray, np.ndarray]:
    """(input column, threshold) of every finite numeric split the fitted ensemble makes."""
    if hasattr(estimator, "_predictors"):
        nodes = np.concatenate([tree.nodes for trees in estimator._predictors for tree in trees])
        keep = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
        column, threshold = nodes["feature_idx"][keep], nodes["num_threshold"][keep]
        if getattr(estimator, "_preprocessor", None) is not None:  # categorical columns are moved first
            order = np.r_[np.flatnonzero(estimator.is_categorical_), np.flatnonzero(~estimator.is_categorical_)]
            column = order[column]
    else:
        trees = [est.tree_ for est in np.ravel(estimator.estimators_)]
        column = np.concatenate([t.feature for t in trees])
        threshold = np.concatenate([t.threshold for t in trees])
        keep = column >= 0
        column, threshold = column[keep], threshold[keep]
    finite = np.isfinite(threshold)
    return column[finite], threshold[finite]


def _scoring_rows(estimator: Any, case: Case, rng: np.random.Generator) -> np.ndarray:
    """Random rows (with NaN when the model takes it) plus rows sitting exactly on, and one ulp around, splits."""
    random_rows = _features(rng, N_RANDOM, missing=case.missing, unseen_categories=case.missing)
    column, threshold = _split_points(estimator)
    edges = []
    for shifted in (threshold, np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf)):
        rows = _features(rng, len(column), missing=False, unseen_categories=False)
        rows[np.arange(len(column)), column] = shifted
        edges.append(rows)
    return np.vstack([random_rows, *edges])


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread():
    """HistGradientBoosting's OpenMP fit slows 50x on a busy 2-core machine; these models are tiny anyway."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Fits and compiles a case once per module: (estimator, bundle dir, rows to score, case)."""
    cache: dict[str, tuple[Any, Path, np.ndarray, Case]] = {}

    def get(name: str) -> tuple[Any, Path, np.ndarray, Case]:
        if name not in cache:
            case = CASES[name]
            rng = np.random.default_rng(7)
            X = _features(rng, N_TRAIN, missing=case.missing and case.trained_with_missing, unseen_categories=False)
            estimator = clone(case.estimator).fit(X, _target(X, case.target, rng))
            bundle = compile_model(estimator, tmp_path_factory.mktemp(name) / "bundle", NAMES, {"case": name})
            cache[name] = (estimator, bundle, _scoring_rows(estimator, case, rng), case)
        return cache[name]

    return get


@pytest.fixture(scope="module", params=sorted(CASES))
def built(request, build):
    return build(request.param)


@pytest.fixture(scope="module")
def hgb_regressor(tmp_path_factory):
    """A float64-input model whose missing f0 goes another way than any present value near 1.0."""
    rng = np.random.default_rng(3)
    X = _features(rng, N_TRAIN, missing=True, unseen_categories=False)
    y = np.where(np.isnan(X[:, 0]), 10.0, np.nan_to_num(X[:, 0]))
    estimator = ensemble.HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y)
    return estimator, compile_model(estimator, tmp_path_factory.mktemp("hgbr") / "bundle", NAMES, {})


@pytest.mark.parametrize("raw_margin", [False, True], ids=["output", "raw_margin"])
def test_compiled_scorer_equals_sklearn_on_every_output(built, raw_margin):
    # Given a compiled ensemble and rows with NaN, unseen categories and values on the split thresholds
    estimator, bundle, X, case = built
    assert np.isnan(X).any(axis=1).sum() > 500 or not case.missing
    assert len(X) > N_RANDOM + 100  # rows on and around the split thresholds
    # When both score them
    native = np.array(NativeModel.load(bundle).predict_rows(X.tolist(), raw_margin=raw_margin))
    expected = reference_outputs(estimator, X, raw_margin=raw_margin)
    # Then every output agrees to 1e-9, in the layout bundle.json names
    n_outputs = len(json.loads((bundle / BUNDLE_JSON).read_text())["outputs"]["names"])
    assert native.shape == expected.shape == (len(X), n_outputs)
    np.testing.assert_allclose(native, expected, rtol=0, atol=PARITY_TOLERANCE)


def test_repeated_calls_give_the_same_answer_because_the_output_is_zeroed(built):
    # Given a loaded model and two different rows
    estimator, bundle, X, _ = built
    model = NativeModel.load(bundle)
    first, second = X[0].tolist(), X[1].tolist()
    # When the same row is scored again after other calls
    before = model.predict_row(first)
    model.predict_row(second)
    again = model.predict_row(first)
    # Then nothing accumulates across calls: the repeat equals the first answer and scikit-learn's
    assert again == before
    np.testing.assert_allclose(again, reference_outputs(estimator, X[:1])[0], rtol=0, atol=PARITY_TOLERANCE)


def test_threads_scoring_concurrently_get_their_own_answers(built):
    # Given one model shared by four threads
    _, bundle, X, _ = built
    model = NativeModel.load(bundle)
    rows = X[:400].tolist()
    expected = model.predict_rows(rows)

    # When each thread scores them all, starting at a different row
    def score(start):
        order = list(range(start, len(rows))) + list(range(start))
        return {i: model.predict_row(rows[i]) for i in order * 3}

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(score, (0, 100, 200, 300)))
    # Then every answer is the one sequential scoring gives
    assert all(answer == expected[i] for result in results for i, answer in result.items())


def test_one_batch_call_equals_scoring_row_by_row_and_sklearn(built):
    # Given rows with NaN, unseen categories and values on the split thresholds, as one flat array
    estimator, bundle, X, _ = built
    model = NativeModel.load(bundle)
    flat = array("d", X.ravel().tolist())
    # When they are scored in one native call and one call per row
    batch = np.array(model.predict_batch(flat, len(X), raw_margin=True)).reshape(len(X), -1)
    by_row = np.array([model.predict_row(row, raw_margin=True) for row in X.tolist()])
    # Then both are identical and equal scikit-learn's margins
    np.testing.assert_array_equal(batch, by_row)
    np.testing.assert_allclose(batch, reference_outputs(estimator, X, raw_margin=True), rtol=0, atol=PARITY_TOLERANCE)


def test_native_batch_zeroes_each_rows_output_before_predicting(built):
    # Given an output buffer full of leftovers from earlier work
    _, bundle, X, _ = built
    model = NativeModel.load(bundle)
    flat = array("d", X[:50].ravel().tolist())
    out = array("d", [1e6]) * (50 * model.n_outputs)
    # When the native entry point scores into it, Then the leftovers do not leak into the answers
    model._score_into(flat, 50, out, raw_margin=False)
    assert out.tolist() == model.predict_batch(flat, 50)


def test_bundle_records_features_outputs_build_and_the_library_checksum(built):
    # Given a bundle
    estimator, bundle, _, case = built
    # When its bundle.json is read
    spec = json.loads((bundle / BUNDLE_JSON).read_text())
    # Then it describes the model and fingerprints the library
    assert spec["feature_names"] == list(NAMES) and spec["n_features"] == len(NAMES)
    assert spec["sha256"] == {LIBRARY: hashlib.sha256((bundle / LIBRARY).read_bytes()).hexdigest()}
    assert spec["threshold_type"] == "float64"
    assert spec["input"]["accepts_missing"] is case.missing
    assert spec["input"]["dtype"] == ("float64" if hasattr(estimator, "_predictors") else "float32")
    assert set(spec["build"]) >= {"treelite", "tl2cgen", "compiler", "flags", "parallel_comp", "machine"}
    assert spec["metadata"]["case"] in CASES
    if hasattr(estimator, "classes_"):
        assert spec["outputs"]["kind"] == "probability"
        assert spec["outputs"]["names"][-1] == f"P({estimator.classes_[-1]})"


def test_native_categories_record_the_levels_seen_in_training(build):
    # Given the bundle of a model with a native categorical split on a column with levels 0..4 (and NaN)
    _, bundle, _, _ = build("hgb_binary_native_categorical")
    # When bundle.json is read, Then those levels are there for the scorer (any other value is missing)
    assert json.loads((bundle / BUNDLE_JSON).read_text())["input"]["categories"] == {"cat": [0, 1, 2, 3, 4]}


def test_unseen_negative_or_fractional_category_scores_as_missing_like_sklearn(build):
    # Given a model with native categorical splits and a row
    estimator, bundle, X, _ = build("hgb_binary_native_categorical")
    model = NativeModel.load(bundle)
    variants = np.repeat(X[:1], 5, axis=0)
    # When its category is unseen (7), negative, fractional, missing, or a level that matters (2)
    variants[:, CATEGORY] = [7.0, -1.0, 2.5, np.nan, 2.0]
    native = [model.predict_row(v.tolist()) for v in variants]
    # Then the native scores are scikit-learn's, the first four all scoring as missing
    np.testing.assert_allclose(native, reference_outputs(estimator, variants), rtol=0, atol=PARITY_TOLERANCE)
    assert native[0] == native[1] == native[2] == native[3] != native[4]


def test_model_that_sklearn_refuses_nan_for_refuses_missing_values_too(build):
    # Given a GradientBoosting bundle (scikit-learn's GradientBoosting* reject NaN)
    estimator, bundle, X, _ = build("gb_binary")
    row = X[0].tolist()
    row[0] = None
    # When a row with a missing value is scored, Then both refuse it
    with pytest.raises(ValueError, match="missing"):
        NativeModel.load(bundle).predict_row(row)
    with pytest.raises(ValueError):
        estimator.predict(np.array([row], dtype=float))


def test_value_whose_low_word_reads_as_the_missing_flag_is_scored_as_present(hgb_regressor):
    # Given a float64 model that routes missing f0 differently from present values, and a present f0 whose low
    # 32 bits are all ones (what TL2cgen's `union Entry` reads as `missing == -1`)
    estimator, bundle = hgb_regressor
    (bits,) = struct.unpack("<Q", struct.pack("<d", 1.0))
    tricky = struct.unpack("<d", struct.pack("<Q", bits | 0xFFFFFFFF))[0]
    present, missing = [tricky, 0.0, 0.0, 0.0, 1.0], [math.nan, 0.0, 0.0, 0.0, 1.0]
    assert estimator.predict([present])[0] != estimator.predict([missing])[0]
    # When it is scored
    native = NativeModel.load(bundle).predict_row(present)
    # Then it scores as the present value scikit-learn sees
    assert native[0] == pytest.approx(estimator.predict([present])[0], abs=PARITY_TOLERANCE)


def test_batch_scores_the_low_word_edge_value_as_present_among_other_rows(hgb_regressor):
    # Given rows alternating a present f0 whose low 32 bits are all ones and a missing f0
    estimator, bundle = hgb_regressor
    (bits,) = struct.unpack("<Q", struct.pack("<d", 1.0))
    tricky = struct.unpack("<d", struct.pack("<Q", bits | 0xFFFFFFFF))[0]
    rows = np.array([[tricky, 0.0, 0.0, 0.0, 1.0], [math.nan, 0.0, 0.0, 0.0, 1.0]] * 3)
    # When they are scored in one batch
    native = NativeModel.load(bundle).predict_batch(rows.ravel().tolist(), len(rows))
    # Then each scores as scikit-learn scores it, the present ones unlike the missing ones
    np.testing.assert_allclose(native, estimator.predict(rows), rtol=0, atol=PARITY_TOLERANCE)
    assert native[0] != native[1]


def test_batch_with_one_missing_value_is_refused_by_a_model_that_refuses_missing(build):
    # Given a GradientBoosting bundle and 20 rows, the last with a missing value
    _, bundle, X, _ = build("gb_binary")
    values = X[:20].ravel().tolist()
    values[-1] = None
    # When they are scored in one batch, Then the batch is refused
    with pytest.raises(ValueError, match="does not accept missing"):
        NativeModel.load(bundle).predict_batch(values, 20)


def test_batch_whose_length_is_not_rows_times_features_is_refused(hgb_regressor):
    _, bundle = hgb_regressor
    with pytest.raises(ValueError, match="expected 2 rows of 5 feature values, got 9 values"):
        NativeModel.load(bundle).predict_batch([0.0] * 9, 2)


def test_native_batch_refuses_a_row_width_other_than_the_librarys(hgb_regressor):
    # Given the library's batch entry point called directly with 4 columns for a 5-feature model
    _, bundle = hgb_regressor
    model = NativeModel.load(bundle)
    flat, out = array("d", [0.0] * 8), array("d", [0.0] * 2)
    # When it runs, Then it returns its bad-shape code without reading the rows
    as_doubles = [(ctypes.c_double * len(a)).from_buffer(a) for a in (flat, out)]
    status = model._batch(as_doubles[0], 2, 4, 0, 0, 1, model._columns, as_doubles[1])
    assert status == 2 and out.tolist() == [0.0, 0.0]


def test_bundle_of_an_older_format_is_refused(hgb_regressor, tmp_path):
    # Given a bundle.json of format 1 (its library has no batch entry point)
    bundle = shutil.copytree(hgb_regressor[1], tmp_path / "bundle")
    spec = json.loads((bundle / BUNDLE_JSON).read_text())
    spec["format"] = 1
    (bundle / BUNDLE_JSON).write_text(json.dumps(spec))
    # When it is loaded, Then it is refused with the format named
    with pytest.raises(BundleError, match="unsupported bundle format 1"):
        NativeModel.load(bundle)


def test_none_and_nan_both_mean_missing(hgb_regressor):
    # Given a model that accepts missing values
    _, bundle = hgb_regressor
    model = NativeModel.load(bundle)
    # When a value is given as None or as NaN, Then the score is the same
    assert model.predict_row([None, 0.5, None, 0.0, 1]) == model.predict_row([math.nan, 0.5, math.nan, 0.0, 1])


def test_row_of_the_wrong_length_is_refused(hgb_regressor):
    _, bundle = hgb_regressor
    with pytest.raises(ValueError, match="expected 5 feature values, got 4"):
        NativeModel.load(bundle).predict_row([0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("case", ["hgb_regressor", "gb_regressor"], ids=["float64_input", "float32_input"])
def test_non_numeric_value_is_refused_without_echoing_it(build, case):
    # Given a row carrying text where a number belongs
    _, bundle, _, _ = build(case)
    row = ["J. Smith", 0.0, 0.0, 0.0, 1.0]
    # When it is scored, Then it is refused and the message does not repeat the value
    with pytest.raises(ValueError, match="numbers or None") as refused:
        NativeModel.load(bundle).predict_row(row)
    assert "Smith" not in str(refused.value)
    assert refused.value.__suppress_context__  # the traceback hides float()'s message, which quotes the value


def test_tampered_library_is_refused_at_load(hgb_regressor, tmp_path):
    # Given a copy of a bundle whose library changed by one byte after the build
    bundle = shutil.copytree(hgb_regressor[1], tmp_path / "bundle")
    library = bytearray((bundle / LIBRARY).read_bytes())
    library[len(library) // 2] ^= 0xFF
    (bundle / LIBRARY).write_bytes(bytes(library))
    # When it is loaded with verification, Then it is refused before the library is opened
    with pytest.raises(BundleError, match=r"checksum mismatch for model\.so"):
        NativeModel.load(bundle)


def test_bundle_without_a_library_checksum_is_refused(hgb_regressor, tmp_path):
    bundle = shutil.copytree(hgb_regressor[1], tmp_path / "bundle")
    spec = json.loads((bundle / BUNDLE_JSON).read_text())
    spec["sha256"] = {}
    (bundle / BUNDLE_JSON).write_text(json.dumps(spec))
    with pytest.raises(BundleError, match="no checksum"):
        NativeModel.load(bundle)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("feature_names", ["f0", "f1", "f2", "f3"], "features 5 != 4"),
        ("outputs", {"names": ["a", "b"]}, "outputs 1 != 2"),
        ("threshold_type", "float32", "threshold type 'float32' unsupported"),
    ],
)
def test_bundle_json_that_disagrees_with_its_library_is_refused(hgb_regressor, tmp_path, field, value, message):
    # Given a bundle.json edited so it no longer describes the compiled library
    bundle = shutil.copytree(hgb_regressor[1], tmp_path / "bundle")
    spec = json.loads((bundle / BUNDLE_JSON).read_text())
    spec[field] = value
    (bundle / BUNDLE_JSON).write_text(json.dumps(spec))
    # When it is loaded (checksums still match), Then the library's own header check refuses it
    with pytest.raises(BundleError, match=message):
        NativeModel.load(bundle, verify=False)


def test_parity_rows_gate_the_build_and_are_recorded(hgb_regressor, tmp_path):
    # Given a fitted model and held-out rows
    estimator, _ = hgb_regressor
    X = _features(np.random.default_rng(11), 300, missing=True, unseen_categories=False)
    # When it is compiled with a parity check
    bundle = compile_model(estimator, tmp_path / "bundle", NAMES, {}, parity_rows=X)
    # Then the measured error is recorded, and it is what max_parity_error reports
    parity = json.loads((bundle / BUNDLE_JSON).read_text())["parity"]
    assert parity["rows"] == 300 and parity["max_abs_error"] <= PARITY_TOLERANCE
    assert parity["max_abs_error"] == max(max_parity_error(estimator, bundle, X, raw_margin=r) for r in (False, True))


def test_build_fails_when_the_compiled_model_disagrees_with_sklearn(hgb_regressor, tmp_path, monkeypatch):
    # Given a reference that differs from the compiled model by 1e-6
    estimator, _ = hgb_regressor
    exact = compile_module.reference_outputs
    monkeypatch.setattr(compile_module, "reference_outputs", lambda est, X, **kw: exact(est, X, **kw) + 1e-6)
    X = _features(np.random.default_rng(11), 50, missing=True, unseen_categories=False)
    # When it is compiled with a parity check, Then the build fails and leaves no bundle behind
    with pytest.raises(CompileError, match="differs from scikit-learn"):
        compile_model(estimator, tmp_path / "bundle", NAMES, {}, parity_rows=X)
    assert list(tmp_path.iterdir()) == []


def test_feature_names_must_match_the_model(hgb_regressor, tmp_path):
    estimator, _ = hgb_regressor
    with pytest.raises(CompileError, match="4 feature names for a model of 5 features"):
        compile_model(estimator, tmp_path / "a", NAMES[:4], {})
    frame = pd.DataFrame(np.zeros((20, 2)), columns=["area", "depth"])
    fitted = ensemble.RandomForestRegressor(n_estimators=2).fit(frame, np.arange(20.0))
    with pytest.raises(CompileError, match="differ from the names the estimator was fitted with"):
        compile_model(fitted, tmp_path / "b", ["depth", "area"], {})


def test_estimator_treelite_cannot_import_is_refused(tmp_path):
    fitted = LinearRegression().fit(np.eye(3), np.arange(3.0))
    with pytest.raises(CompileError, match="Treelite cannot import LinearRegression"):
        compile_model(fitted, tmp_path / "bundle", ["a", "b", "c"], {})


def test_existing_bundle_is_not_overwritten(hgb_regressor):
    estimator, bundle = hgb_regressor
    with pytest.raises(CompileError, match="not empty"):
        compile_model(estimator, bundle, NAMES, {})


def test_fractional_category_levels_are_refused(tmp_path):
    # Given native categorical levels Treelite would truncate to integers
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=300), rng.integers(0, 4, 300) + 0.5]
    estimator = ensemble.HistGradientBoostingClassifier(max_iter=3, categorical_features=[1])
    estimator.fit(X, (X[:, 1] > 2).astype(int))
    # When it is compiled, Then the build refuses rather than silently changing the splits
    with pytest.raises(CompileError, match="not non-negative integers"):
        compile_model(estimator, tmp_path / "bundle", ["x", "level"], {})
