"""Shared fixtures: the tiny extract, and a small synthetic cohort with a trained and a compiled model."""

from __future__ import annotations

import os
from pathlib import Path

# libgomp's default busy-wait makes scikit-learn fits on the in-process Lambda threads 3-10x slower; it must be
# set before anything imports scikit-learn.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from woundcare_testing import tiny_extract_rows, write_rows


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory):
    """A 500-patient synthetic extract, validated: (folder, clean tables, landmarks)."""
    from model_build.features_table import landmarks
    from model_build.synth import SynthConfig, generate_cohort, write_cohort
    from model_build.validate import validate_extract

    folder = tmp_path_factory.mktemp("small_cohort")
    config = SynthConfig(n_patients=500, seed=21)
    write_cohort(generate_cohort(config), folder)
    clean = validate_extract(folder, extract_date=config.extract_date).clean
    return folder, clean, landmarks(clean["patients"], clean["wounds"], clean["assessments"])


@pytest.fixture(scope="session")
def small_model(small_cohort):
    """A quickly trained healing model on the small cohort (scikit-learn)."""
    from model_build.healing import HealingParams, fit_healing_model

    return fit_healing_model(small_cohort[2], HealingParams(max_iter=30, min_samples_leaf=20))


@pytest.fixture(scope="session")
def small_bundle(small_model, tmp_path_factory):
    """The small model compiled to a native bundle directory."""
    from model_build.compile import compile_model

    return compile_model(
        small_model.survival.estimator_,
        tmp_path_factory.mktemp("bundle") / "model",
        small_model.survival.design_columns_,
        small_model.serving_meta(),
    )


@pytest.fixture
def tiny_rows() -> dict[str, list[dict[str, str]]]:
    return tiny_extract_rows()


@pytest.fixture
def tiny_extract(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "extract", tiny_extract_rows())
