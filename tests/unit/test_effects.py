"""Treatment effects: recovered under confounding by indication on simulated first visits, JSON-able for serving."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from model_build.effects import fit_treatment_effects
from model_build.features import FEATURE_NAMES
from model_build.features_table import Landmarks

EDGES = [7.0 * week for week in range(53)]
TRUE_LOG_HR = {"offloading": math.log(2.0), "npwt": math.log(1.7), "debridement:sharp": math.log(1.35)}
SEVERITY_LOG_HR = -0.8  # per standard deviation of severity (log area): bigger wounds heal slower


def confounded_first_visits(n: int = 3000, seed: int = 0) -> Landmarks:
    """First visits of DFUs and pressure injuries: the more severe, the likelier NPWT and sharp debridement;
    Weibull (shape 1.2) healing times with the true effects above, censored uniformly over a year."""
    rng = np.random.default_rng(seed)
    severity = rng.normal(size=n)
    wound_type = np.where(rng.random(n) < 0.5, "diabetic_foot_ulcer", "pressure_injury")
    offloading = rng.random(n) < 0.6
    npwt = rng.random(n) < 1.0 / (1.0 + np.exp(-(2.0 * severity - 1.5)))
    sharp = rng.random(n) < 1.0 / (1.0 + np.exp(-1.5 * severity))
    log_hazard = (
        SEVERITY_LOG_HR * severity
        + TRUE_LOG_HR["offloading"] * offloading
        + TRUE_LOG_HR["npwt"] * npwt
        + TRUE_LOG_HR["debridement:sharp"] * sharp
    )
    healing = 120.0 * (rng.exponential(size=n) * np.exp(-log_hazard)) ** (1 / 1.2)
    censoring = rng.uniform(30.0, 400.0, n)
    X = pd.DataFrame({name: [None] * n for name in FEATURE_NAMES}, dtype=object)
    X["wound_type"] = wound_type
    X["area_cm2"] = np.exp(1.0 + severity)
    X["days_since_first_assessment"] = 0.0
    X["primary_dressing"] = np.where(npwt, "foam", rng.choice(["foam", "alginate", "gauze"], n))
    X["dressing_changes_per_week"] = 3.0
    X["debridement"] = np.where(sharp, "sharp", "none")
    for name in ("compression", "skin_substitute", "hyperbaric_oxygen"):
        X[name] = 0.0
    X["offloading"], X["npwt"] = offloading.astype(float), npwt.astype(float)
    ids = pd.DataFrame({"wound_key": [f"W{i}" for i in range(n)], "patient_key": [f"P{i}" for i in range(n)]})
    return Landmarks(ids, X, np.minimum(healing, censoring), healing <= censoring)


@pytest.fixture(scope="module")
def data():
    return confounded_first_visits()


@pytest.fixture(scope="module")
def fitted(data):
    return fit_treatment_effects(data, EDGES)


def test_effects_are_recovered_under_confounding_by_indication(fitted):
    effects = fitted
    for component, truth in TRUE_LOG_HR.items():
        estimate, se = effects["effects"][component]["*"], effects["standard_errors"][component]["*"]
        assert abs(estimate - truth) < max(0.2, 2.5 * se), component
    # and a dressing with no effect comes out near none
    assert abs(effects["effects"]["dressing:gauze"]["*"]) < 0.2


def test_without_the_severity_covariate_the_confounded_effects_look_harmful(data):
    # The same data with the severity marker hidden: the raw comparison is confounded (NPWT "harms")
    hidden = Landmarks(data.ids, data.X.assign(area_cm2=None), data.time_days, data.event)
    naive = fit_treatment_effects(hidden, EDGES)["effects"]
    assert naive["npwt"]["*"] < TRUE_LOG_HR["npwt"] - 0.4
    assert naive["debridement:sharp"]["*"] < TRUE_LOG_HR["debridement:sharp"] - 0.3


def test_effects_are_json_with_references_counts_and_standard_errors(data, fitted):
    effects = json.loads(json.dumps(fitted))
    assert effects["references"] == {"interventions": "absent", "debridement": "none", "dressing": "foam"}
    assert effects["n_wounds"] == len(data.X) and 0 < effects["n_events"] < len(data.X)
    assert effects["exposed_wounds"]["npwt"]["*"] == int(data.X["npwt"].sum())
    # wound types with enough exposed and unexposed wounds get their own term; absent interventions get none
    assert set(effects["effects"]["offloading"]) == {"*", "diabetic_foot_ulcer", "pressure_injury"}
    assert "compression" not in effects["effects"]
    for component, by_type in effects["effects"].items():
        assert set(effects["standard_errors"][component]) == set(by_type)
        assert all(se > 0 for se in effects["standard_errors"][component].values())


def test_a_component_few_wounds_received_gets_no_effect(data):
    # Given HBOT on 8 wounds (fewer than the 20 needed)
    rare = data.X.copy()
    rare.loc[:7, "hyperbaric_oxygen"] = 1.0
    effects = fit_treatment_effects(Landmarks(data.ids, rare, data.time_days, data.event), EDGES)
    # Then it has no effect (plans with it are predicted as without it) but its exposure is reported
    assert "hyperbaric_oxygen" not in effects["effects"] and effects["exposed_wounds"]["hyperbaric_oxygen"]["*"] == 8
    assert effects["min_exposed_wounds"] == 20 and "npwt" in effects["effects"]
