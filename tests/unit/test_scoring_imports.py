"""The inference path stays lean: the native scorer loads and scores without numpy, scipy, pandas or sklearn."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from model_build.compile import PARITY_TOLERANCE, compile_model, reference_outputs

HEAVY = frozenset({"numpy", "scipy", "pandas", "sklearn", "treelite", "tl2cgen"})


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)


def _imported(importtime_log: str) -> set[str]:
    """Top-level packages named in a `-X importtime` log (lines: 'import time: self | cumulative | name')."""
    rows = [line.split("|") for line in importtime_log.splitlines() if line.startswith("import time:")]
    return {row[-1].strip().split(".")[0] for row in rows if len(row) == 3}


def test_importing_the_native_scorer_imports_no_heavy_package():
    # Given a fresh interpreter, When it imports the scoring module under -X importtime
    log = _python("import woundcare_scoring.native").stderr
    imported = _imported(log)
    # Then the log lists the module itself (so it is read right) and none of the heavy packages
    assert "woundcare_scoring" in imported and "ctypes" in imported
    assert imported & HEAVY == set()


def test_loading_and_scoring_a_bundle_imports_no_heavy_package(tmp_path):
    # Given a compiled model with missing values and native categorical splits
    rng = np.random.default_rng(5)
    X = np.c_[rng.normal(size=(500, 2)), rng.integers(0, 3, 500)]
    X[rng.random(500) < 0.2, 0] = np.nan
    with threadpool_limits(limits=1, user_api="openmp"):
        estimator = HistGradientBoostingClassifier(max_iter=5, categorical_features=[2]).fit(X, X[:, 2] == 1)
    bundle = compile_model(estimator, tmp_path / "bundle", ["a", "b", "c"], {})
    rows = [[None if np.isnan(v) else float(v) for v in row] for row in X[:20]]
    # When a fresh interpreter loads it and scores rows
    code = (
        "import json, sys\n"
        "from woundcare_scoring.native import NativeModel\n"
        f"model = NativeModel.load({str(bundle)!r})\n"
        f"print(json.dumps(model.predict_rows({rows!r})))\n"
    )
    done = _python(code)
    # Then it gives scikit-learn's answers having imported none of the heavy packages
    assert _imported(done.stderr) & HEAVY == set()
    np.testing.assert_allclose(json.loads(done.stdout), reference_outputs(estimator, X[:20]), atol=PARITY_TOLERANCE)
