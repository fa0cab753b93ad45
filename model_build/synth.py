"""Synthetic post-acute wound cohort with ground truth: a contract extract whose true healing process is known.

Healing time follows a Weibull accelerated-failure-time model per wound; treatment is assigned with confounding by
indication; censoring, visits, measurement noise, dirty rows and drift are layered on top. Equations, parameters
and their sources are in docs/synthetic-cohort.md.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model_build.extract import write_extract
from model_build.plans import INTERVENTIONS, TREATMENT_COLUMNS, Plan, candidate_plans
from model_build.schema import (
    COMORBIDITIES,
    CONTRACT_VERSION,
    LOWER_EXTREMITY_LOCATIONS,
    MEDICATIONS,
    TABLES,
    WOUND_TYPES,
)

DRIFTS = ("none", "case_mix", "care_setting", "measurement")
DIRTY_KINDS = ("enum_typo", "impossible_value", "mm_as_cm", "duplicate_key", "orphan")
COST_CATALOG_FILE = resources.files("model_build") / "data" / "cost_catalog.csv"

# --- calibration parameters: every number is sourced or marked assumed in docs/synthetic-cohort.md ---------

# Relative frequency before eligibility: DFU needs diabetes, VLU venous insufficiency, arterial ulcer PAD.
WOUND_TYPE_WEIGHTS = {
    "pressure_injury": 0.7,
    "diabetic_foot_ulcer": 1.3,
    "venous_leg_ulcer": 1.8,
    "arterial_ulcer": 0.75,
    "surgical_dehiscence": 0.3,
    "trauma": 0.21,
    "skin_tear": 0.18,
    "other": 0.12,
}
ELIGIBILITY = {
    "diabetic_foot_ulcer": "diabetes",
    "venous_leg_ulcer": "venous_insufficiency",
    "arterial_ulcer": "peripheral_arterial_disease",
}
PI_STAGE_MIX = {"1": 0.08, "2": 0.40, "3": 0.18, "4": 0.10, "unstageable": 0.12, "deep_tissue": 0.12}
WAGNER_MIX = {1: 0.35, 2: 0.35, 3: 0.2, 4: 0.1}
LOCATION_MIX = {
    "pressure_injury": {"sacrum_coccyx": 0.4, "heel": 0.25, "buttock": 0.12, "ischium": 0.08, "trochanter": 0.07,
                        "head_neck": 0.03, "other": 0.05},
    "diabetic_foot_ulcer": {"foot_plantar": 0.4, "toe": 0.35, "heel": 0.15, "foot_dorsal": 0.1},
    "venous_leg_ulcer": {"lower_leg": 0.55, "malleolus": 0.45},
    "arterial_ulcer": {"toe": 0.3, "foot_dorsal": 0.25, "lower_leg": 0.25, "heel": 0.1, "malleolus": 0.1},
    "surgical_dehiscence": {"abdomen": 0.7, "chest_back": 0.1, "knee_thigh": 0.1, "lower_leg": 0.1},
    "trauma": {"lower_leg": 0.35, "upper_extremity": 0.3, "foot_dorsal": 0.15, "knee_thigh": 0.1, "head_neck": 0.1},
    "skin_tear": {"upper_extremity": 0.6, "lower_leg": 0.35, "other": 0.05},
    "other": {"other": 0.5, "lower_leg": 0.2, "chest_back": 0.2, "abdomen": 0.1},
}  # fmt: skip

# Strata: pressure injuries by stage ("pressure_injury:3"), every other wound type by itself.
BASE_MEDIAN_DAYS = {  # reference wound (stratum-median area and duration, no slowing factor), no active treatment
    "pressure_injury:1": 16,
    "pressure_injury:2": 40,
    "pressure_injury:3": 110,
    "pressure_injury:4": 200,
    "pressure_injury:unstageable": 240,
    "pressure_injury:deep_tissue": 45,
    "diabetic_foot_ulcer": 110,
    "venous_leg_ulcer": 170,
    "arterial_ulcer": 105,
    "surgical_dehiscence": 48,
    "trauma": 45,
    "skin_tear": 19,
    "other": 70,
}
MEDIAN_AREA_CM2 = {
    "pressure_injury:1": 4.0,
    "pressure_injury:2": 1.8,  # NPULS 2008 size bands <=1, 1-4, >4 cm²
    "pressure_injury:3": 6.0,
    "pressure_injury:4": 12.0,
    "pressure_injury:unstageable": 10.0,
    "pressure_injury:deep_tissue": 5.0,
    "diabetic_foot_ulcer": 2.5,  # Margolis 2003: area > 2 cm² is a risk point
    "venous_leg_ulcer": 6.0,  # Margolis 2000: area > 5 cm² is a risk point
    "arterial_ulcer": 3.0,
    "surgical_dehiscence": 12.0,
    "trauma": 5.0,
    "skin_tear": 3.0,
    "other": 4.0,
}
AREA_SDLOG = 0.9
MEDIAN_DURATION_DAYS = {  # wound age at the first assessment
    "pressure_injury": 14,
    "diabetic_foot_ulcer": 60,  # Margolis 2003: wound age > 2 months is a risk point
    "venous_leg_ulcer": 120,
    "arterial_ulcer": 90,
    "surgical_dehiscence": 10,
    "trauma": 5,
    "skin_tear": 2,
    "other": 30,
}
DURATION_SDLOG = 0.8
WEIBULL_SHAPE = {
    "pressure_injury": 1.3,
    "diabetic_foot_ulcer": 1.1,
    "venous_leg_ulcer": 1.2,
    "arterial_ulcer": 1.2,
    "surgical_dehiscence": 1.75,  # 61 ± 36 days: coefficient of variation 0.59 ⇔ Weibull shape 1.75
    "trauma": 1.6,
    "skin_tear": 2.0,
    "other": 1.4,
}
FRAILTY_SD = 0.3  # unobserved wound-level heterogeneity on the log-time scale
# Slowing factors as time ratios (> 1 = slower); direction from domain-facts.md, size assumed unless noted.
SLOWING_TIME_RATIOS = {
    "area_doubling": 1.22,  # NPULS 2008 stage 2 medians 33 / 53 / 73 days by size band
    "duration_doubling": 1.12,
    "peripheral_arterial_disease": 1.4,
    "smoker": 1.25,
    "albumin_below_2_5": 1.4,
    "non_ambulatory": 1.25,
    "dialysis": 1.45,
    "infection": 1.35,
    "wagner_grade_step": 1.45,
    "bmi_over_33_venous": 1.5,
    "age_decade": 1.08,  # per decade above 76
}
# Hazard ratios of healing vs no active treatment, per wound type ("*" = any other type). Converted to time
# ratios with the wound type's Weibull shape k: TR = HR^(-1/k). Dressings have none (no healing difference).
TREATMENT_HAZARD_RATIOS = {
    "compression": {"venous_leg_ulcer": 2.17},  # Cochrane 2021
    "offloading": {"diabetic_foot_ulcer": 2.0, "pressure_injury": 1.5},  # Armstrong 2001 (TCC vs half-shoe 2.6)
    "npwt": {"diabetic_foot_ulcer": 1.69, "*": 1.3},  # RR 1.48 (meta-analysis 2017) at 35 % control healing
    "skin_substitute": {"diabetic_foot_ulcer": 1.72, "venous_leg_ulcer": 1.4},  # Apligraf 2001: 56 vs 38 %
    "hyperbaric_oxygen": {"diabetic_foot_ulcer": 1.15},  # Cochrane 2015: short-term only
    "debridement:sharp": {"*": 1.35},  # Wilcox 2013: direction only
    "debridement:enzymatic": {"*": 1.15},
    "debridement:autolytic": {"*": 1.1},
    "debridement:mechanical": {"*": 1.1},
}
INFECTION_AT_PRESENTATION = {
    "pressure_injury": 0.12,
    "diabetic_foot_ulcer": 0.3,
    "venous_leg_ulcer": 0.15,
    "arterial_ulcer": 0.15,
    "surgical_dehiscence": 0.25,
    "trauma": 0.1,
    "skin_tear": 0.05,
    "other": 0.1,
}
PREVALENCE = {
    "diabetes": 0.38,
    "peripheral_arterial_disease": 0.2,
    "venous_insufficiency": 0.22,
    "heart_failure": 0.25,
    "chronic_kidney_disease": 0.25,
    "dialysis": 0.05,
    "copd": 0.2,
    "immunosuppressed": 0.05,
    "malnutrition": 0.2,
    "smoker": 0.15,
    "dementia": 0.2,
    "spinal_cord_injury": 0.03,
    "on_steroids": 0.08,
    "on_anticoagulants": 0.25,
    "on_immunosuppressants": 0.04,
}
SEX_MIX = {"female": 0.55, "male": 0.44, "unknown": 0.01}
CARE_SETTING_MIX = {"snf": 0.4, "home_health": 0.3, "outpatient_clinic": 0.2, "ltach": 0.05, "irf": 0.05}
MOBILITY_MIX = {"bedbound": 0.15, "chairbound": 0.25, "limited": 0.35, "ambulatory": 0.25}
DISCHARGE_MEDIAN_DAYS = {"snf": 90, "home_health": 120, "outpatient_clinic": 365, "ltach": 45, "irf": 30}
# Sicker wounds get more aggressive plans: utility = preference + strength × severity × aggressiveness + Gumbel.
ASSIGNMENT_PREFERENCE = {
    "compression": 2.0,
    "offloading": 1.5,
    "npwt": -2.0,
    "skin_substitute": -2.5,
    "hyperbaric_oxygen": -3.0,
    "debridement:enzymatic": -0.5,
    "dressing:foam": 0.5,
    "dressing:gauze": -0.3,
}

# Wound bed per stratum (assumed): median depth cm (NaN = depth not measured), necrotic share at presentation,
# eschar's part of it, exudate level (0 none .. 3 heavy).
_MORPHOLOGY = {
    "pressure_injury:1": (math.nan, 0.0, 0.0, 0.0),
    "pressure_injury:2": (0.2, 0.0, 0.0, 1.0),
    "pressure_injury:3": (1.0, 0.4, 0.2, 1.6),
    "pressure_injury:4": (2.5, 0.5, 0.3, 2.0),
    "pressure_injury:unstageable": (math.nan, 0.85, 0.7, 1.2),
    "pressure_injury:deep_tissue": (math.nan, 0.0, 0.0, 0.0),
    "diabetic_foot_ulcer": (0.5, 0.3, 0.1, 1.3),
    "venous_leg_ulcer": (0.2, 0.3, 0.0, 2.0),
    "arterial_ulcer": (0.3, 0.45, 0.6, 0.6),
    "surgical_dehiscence": (2.0, 0.2, 0.05, 1.8),
    "trauma": (0.5, 0.15, 0.1, 1.2),
    "skin_tear": (0.1, 0.0, 0.0, 0.8),
    "other": (0.3, 0.2, 0.1, 1.0),
}
_INTACT_SKIN = ("pressure_injury:1", "pressure_injury:deep_tissue")
_NECROSIS_CLEARANCE = {"none": 1.0, "autolytic": 1.5, "enzymatic": 1.5, "mechanical": 1.5, "sharp": 3.0}
_PAIN = {"arterial_ulcer": 6, "venous_leg_ulcer": 4, "pressure_injury": 3, "surgical_dehiscence": 4,
         "trauma": 4, "skin_tear": 3, "diabetic_foot_ulcer": 1, "other": 3}  # fmt: skip
_PERIWOUND = {
    "diabetic_foot_ulcer": {"intact": 0.45, "callus": 0.4, "macerated": 0.1, "erythema": 0.05},
    "venous_leg_ulcer": {"intact": 0.4, "erythema": 0.3, "macerated": 0.2, "induration": 0.1},
    "*": {"intact": 0.65, "erythema": 0.15, "macerated": 0.15, "induration": 0.05},
}


@dataclass(frozen=True)
class SynthConfig:
    """Size, seed, dirt, drift and every calibration parameter of the synthetic cohort (override any)."""

    n_patients: int = 1000
    seed: int = 0
    dirty_share: float = 0.0
    drift: str = "none"
    extract_date: date = date(2025, 12, 31)
    enrolment_days: int = 730  # admissions spread over this many days before the extract date
    extra_wounds_mean: float = 0.5  # wounds per patient = 1 + Poisson(this), at most max_wounds
    max_wounds: int = 5
    age_mean: float = 76.0
    age_sd: float = 11.0
    prevalence: dict = field(default_factory=partial(deepcopy, PREVALENCE))
    sex_mix: dict = field(default_factory=partial(deepcopy, SEX_MIX))
    care_setting_mix: dict = field(default_factory=partial(deepcopy, CARE_SETTING_MIX))
    mobility_mix: dict = field(default_factory=partial(deepcopy, MOBILITY_MIX))
    wound_type_weights: dict = field(default_factory=partial(deepcopy, WOUND_TYPE_WEIGHTS))
    pressure_injury_weight_non_ambulatory: float = 2.5
    pi_stage_mix: dict = field(default_factory=partial(deepcopy, PI_STAGE_MIX))
    wagner_mix: dict = field(default_factory=partial(deepcopy, WAGNER_MIX))
    location_mix: dict = field(default_factory=partial(deepcopy, LOCATION_MIX))
    base_median_days: dict = field(default_factory=partial(deepcopy, BASE_MEDIAN_DAYS))
    median_area_cm2: dict = field(default_factory=partial(deepcopy, MEDIAN_AREA_CM2))
    area_sdlog: float = AREA_SDLOG
    median_duration_days: dict = field(default_factory=partial(deepcopy, MEDIAN_DURATION_DAYS))
    duration_sdlog: float = DURATION_SDLOG
    weibull_shape: dict = field(default_factory=partial(deepcopy, WEIBULL_SHAPE))
    frailty_sd: float = FRAILTY_SD
    slowing_time_ratios: dict = field(default_factory=partial(deepcopy, SLOWING_TIME_RATIOS))
    treatment_hazard_ratios: dict = field(default_factory=partial(deepcopy, TREATMENT_HAZARD_RATIOS))
    infection_at_presentation: dict = field(default_factory=partial(deepcopy, INFECTION_AT_PRESENTATION))
    assignment_preference: dict = field(default_factory=partial(deepcopy, ASSIGNMENT_PREFERENCE))
    assignment_severity_strength: float = 1.0
    compression_min_abi: float = 0.6  # clinicians withhold compression below this (recorded ABI noise ±0.05)
    discharge_median_days: dict = field(default_factory=partial(deepcopy, DISCHARGE_MEDIAN_DAYS))
    discharge_sdlog: float = 0.7
    transfer_mean_days: float = 600.0
    death_mean_days: float = 1500.0  # at age 76 without dialysis, heart failure or dementia
    amputation_mean_days: dict = field(default_factory=partial(deepcopy, {3: 1500.0, 4: 400.0}))  # DFU by Wagner grade
    visit_interval_days: int = 7
    visit_jitter_days: int = 2
    missed_visit_share: float = 0.1
    length_cv: float = 0.07  # measurement error of length and width (ruler method)
    area_omitted_share: float = 0.3
    onset_missing_share: float = 0.1
    drift_age_shift_years: float = 6.0
    drift_diabetes_prevalence: float = 0.5
    drift_area_scale: float = 1.5
    drift_home_health_share: float = 0.55
    drift_overmeasure: float = 1.12
    drift_area_omitted_share: float = 0.7

    def __post_init__(self) -> None:
        if self.drift not in DRIFTS:
            raise ValueError(f"drift must be one of {DRIFTS}, not {self.drift!r}")
        if not 0.0 <= self.dirty_share < 0.5:
            raise ValueError("dirty_share must be in [0, 0.5)")
        if self.n_patients < 1:
            raise ValueError("n_patients must be at least 1")


@dataclass
class Cohort:
    """The extract tables (typed, contract columns), the truth behind them, and what was corrupted."""

    config: SynthConfig
    tables: dict[str, pd.DataFrame]
    ground_truth: pd.DataFrame
    plan_truth: pd.DataFrame
    dirty_rows: pd.DataFrame


# --- the oracle --------------------------------------------------------------------------------------------


def plan_log_time_ratio(
    plan: Plan, wound_type: str, shape: float, hazard_ratios: Mapping = TREATMENT_HAZARD_RATIOS
) -> float:
    """Log time ratio of `plan` against no active treatment; a Weibull hazard ratio HR is the time ratio HR^(-1/k)."""
    active = [name for name in INTERVENTIONS if getattr(plan, name)] + [f"debridement:{plan.debridement}"]
    log_hr = 0.0
    for key in active:
        by_type = hazard_ratios.get(key, {})
        log_hr += math.log(by_type.get(wound_type, by_type.get("*", 1.0)))
    return -log_hr / shape


def true_weibull(
    truth: Mapping[str, Any], plan: Plan, hazard_ratios: Mapping = TREATMENT_HAZARD_RATIOS
) -> tuple[float, float]:
    """(scale in days, shape) of a wound's true healing time under `plan`: S(t) = exp(-(t / scale)^shape).

    `truth` is a ground-truth row (weibull_shape, log_scale_untreated, wound_type); pass the cohort's
    `config.treatment_hazard_ratios` if they were overridden.
    """
    shape = float(truth["weibull_shape"])
    log_scale = float(truth["log_scale_untreated"]) + plan_log_time_ratio(
        plan, truth["wound_type"], shape, hazard_ratios
    )
    return math.exp(log_scale), shape


def true_expected_healing_days(
    truth: Mapping[str, Any], plan: Plan, hazard_ratios: Mapping = TREATMENT_HAZARD_RATIOS
) -> float:
    """E[T] = scale × Γ(1 + 1/shape): the wound's true mean healing time under `plan`, ignoring censoring."""
    scale, shape = true_weibull(truth, plan, hazard_ratios)
    return scale * math.gamma(1.0 + 1.0 / shape)


def true_survival(
    days, truth: Mapping[str, Any], plan: Plan, hazard_ratios: Mapping = TREATMENT_HAZARD_RATIOS
) -> np.ndarray:
    """True probability that the wound is still open after `days` under `plan` (an oracle for C-index)."""
    scale, shape = true_weibull(truth, plan, hazard_ratios)
    return np.exp(-((np.asarray(days, dtype=float) / scale) ** shape))


# --- generation --------------------------------------------------------------------------------------------


def generate_cohort(config: SynthConfig) -> Cohort:
    """Draw patients, wounds, plans, healing and censoring times, visits and measurements; then dirt."""
    rng = np.random.default_rng(config.seed)
    patients = _patients(config, rng)
    wounds = _wounds(config, rng, patients)
    plan_truth = _assign_plans(config, rng, wounds, patients)
    _outcomes(config, rng, wounds, patients)
    assessments = _assessments(config, rng, wounds, patients)
    tables = {
        "patients": patients[list(TABLES["patients"].column_names)],
        "wounds": _wound_table(config, rng, wounds),
        "assessments": assessments,
    }
    tables, dirty = _make_dirty(config, rng, tables)
    return Cohort(config, tables, _ground_truth(wounds), plan_truth, dirty)


def write_cohort(cohort: Cohort, out_dir: str | Path, fmt: str = "csv") -> dict[str, Path]:
    """Write the extract, the cost catalog, the truth files, the dirty-row log and synth.json to `out_dir`."""
    out = Path(out_dir)
    written = write_extract(cohort.tables, out, fmt)
    written["cost_catalog"] = out / "cost_catalog.csv"
    with resources.as_file(COST_CATALOG_FILE) as catalog:
        shutil.copyfile(catalog, written["cost_catalog"])
    for name in ("ground_truth", "plan_truth"):
        written[name] = out / f"{name}.parquet"
        getattr(cohort, name).to_parquet(written[name], index=False)
    written["dirty_rows"] = out / "dirty_rows.csv"
    cohort.dirty_rows.to_csv(written["dirty_rows"], index=False)
    written["synth"] = out / "synth.json"
    summary = {
        "contract_version": CONTRACT_VERSION,
        "extract_date": cohort.config.extract_date.isoformat(),
        "format": fmt,
        "counts": {name: len(frame) for name, frame in cohort.tables.items()} | {"dirty_rows": len(cohort.dirty_rows)},
        "config": asdict(cohort.config),
    }
    written["synth"].write_text(json.dumps(summary, indent=2, default=str))
    return written


def _patients(cfg: SynthConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Contract patient columns plus hidden physiology and the care episode's end (discharge, transfer, death)."""
    n = cfg.n_patients
    case_mix = cfg.drift == "case_mix"
    prevalence = cfg.prevalence | ({"diabetes": cfg.drift_diabetes_prevalence} if case_mix else {})
    settings = cfg.care_setting_mix
    if cfg.drift == "care_setting":
        settings = _shift_toward(settings, "home_health", cfg.drift_home_health_share)
    age = rng.normal(cfg.age_mean + (cfg.drift_age_shift_years if case_mix else 0.0), cfg.age_sd, n)
    p = pd.DataFrame(
        {
            "patient_key": _keys("P", n),
            "age_years": np.clip(np.round(age), 18, 90).astype(np.int64),  # Safe Harbor: 90 means 90 or older
            "sex": _choice(rng, cfg.sex_mix, n),
            "care_setting": _choice(rng, settings, n),
            "mobility": _choice(rng, cfg.mobility_mix, n),
        }
    )
    for name in (*COMORBIDITIES, *MEDICATIONS):
        p[name] = rng.random(n) < prevalence[name]
    p["chronic_kidney_disease"] |= p["dialysis"]
    p["immunosuppressed"] |= p["on_immunosuppressants"]
    sci = p["spinal_cord_injury"].to_numpy()
    p.loc[sci, "mobility"] = np.where(rng.random(int(sci.sum())) < 0.5, "bedbound", "chairbound")

    male = (p["sex"] == "male").to_numpy()
    p["height_m"] = rng.normal(np.where(male, 1.76, 1.62), 0.07).clip(1.4, 2.05)
    p["bmi_true"] = np.exp(rng.normal(math.log(27.5), 0.2, n)).clip(15, 60)
    p["albumin_true"] = (rng.normal(3.5, 0.4, n) - 0.8 * p["malnutrition"]).clip(1.5, 5.0)
    pad = p["peripheral_arterial_disease"].to_numpy()
    p["abi_true"] = np.where(pad, rng.uniform(0.35, 0.85, n), rng.normal(1.05, 0.1, n).clip(0.85, 1.35))
    p["hba1c_true"] = rng.normal(7.6, 1.3, n).clip(5, 13)

    discharge_median = p["care_setting"].map(cfg.discharge_median_days).to_numpy(float)
    discharge = discharge_median * np.exp(rng.normal(0, cfg.discharge_sdlog, n))
    transfer = rng.exponential(cfg.transfer_mean_days, n)
    death_hr = np.exp(
        0.05 * (p["age_years"] - 76) + 0.6 * p["dialysis"] + 0.4 * p["heart_failure"] + 0.3 * p["dementia"]
    )
    death = rng.exponential(cfg.death_mean_days / death_hr.to_numpy())
    ends = np.stack([discharge, transfer, death])
    p["episode_days"] = np.maximum(1, np.ceil(ends.min(axis=0))).astype(np.int64)
    p["episode_end"] = np.array(["discharged", "transferred", "died"], dtype=object)[ends.argmin(axis=0)]
    p["days_to_cut"] = rng.integers(1, cfg.enrolment_days + 1, n)  # admission to the extract date
    return p


def _wounds(cfg: SynthConfig, rng: np.random.Generator, p: pd.DataFrame) -> pd.DataFrame:
    """Wound type, site, stage/grade, size, age and infection at presentation, and the untreated AFT scale."""
    counts = np.minimum(1 + rng.poisson(cfg.extra_wounds_mean, len(p)), cfg.max_wounds)
    pid = np.repeat(np.arange(len(p)), counts)
    n = len(pid)
    weights = np.tile([cfg.wound_type_weights[t] for t in WOUND_TYPES], (n, 1))
    for wound_type, flag in ELIGIBILITY.items():
        weights[:, WOUND_TYPES.index(wound_type)] *= p[flag].to_numpy()[pid]
    non_ambulatory = p["mobility"].isin(["bedbound", "chairbound"]).to_numpy()[pid]
    weights[:, 0] *= np.where(non_ambulatory, cfg.pressure_injury_weight_non_ambulatory, 1.0)
    wound_type = np.array(WOUND_TYPES, dtype=object)[_sample_rows(rng, weights)]

    w = pd.DataFrame({"pid": pid, "wound_key": _keys("W", n), "wound_type": wound_type})
    w["patient_key"] = p["patient_key"].to_numpy()[pid]
    is_pi, is_dfu = wound_type == "pressure_injury", wound_type == "diabetic_foot_ulcer"
    stage = np.full(n, None, dtype=object)
    stage[is_pi] = _choice(rng, cfg.pi_stage_mix, int(is_pi.sum()))
    grade = np.zeros(n, dtype=np.int64)
    grade[is_dfu] = _choice(rng, cfg.wagner_mix, int(is_dfu.sum())).astype(np.int64)
    location = np.empty(n, dtype=object)
    for t in WOUND_TYPES:
        mine = wound_type == t
        location[mine] = _choice(rng, cfg.location_mix[t], int(mine.sum()))
    w["location"], w["pi_stage"], w["wagner_grade"] = location, stage, grade
    stratum = wound_type.copy()
    stratum[is_pi] = "pressure_injury:" + stage[is_pi]
    w["stratum"] = stratum

    area_scale = cfg.drift_area_scale if cfg.drift == "case_mix" else 1.0
    median_area = w["stratum"].map(cfg.median_area_cm2).to_numpy(float)
    w["area0"] = (median_area * area_scale * np.exp(rng.normal(0, cfg.area_sdlog, n))).clip(0.2, 500)
    median_duration = w["wound_type"].map(cfg.median_duration_days).to_numpy(float)
    w["duration0"] = np.floor(median_duration * np.exp(rng.normal(0, cfg.duration_sdlog, n))).astype(np.int64)
    immuno = p["immunosuppressed"].to_numpy()[pid] | p["on_steroids"].to_numpy()[pid]
    infection_rate = w["wound_type"].map(cfg.infection_at_presentation).to_numpy(float)
    w["infection0"] = rng.random(n) < infection_rate * np.where(immuno, 1.5, 1.0)

    tr = {k: math.log(v) for k, v in cfg.slowing_time_ratios.items()}
    area_doublings = np.log2(w["area0"] / median_area)
    duration_doublings = np.log2((w["duration0"] + 1) / (median_duration + 1))
    col = lambda name: p[name].to_numpy()[pid]  # noqa: E731
    covariates = (
        tr["area_doubling"] * area_doublings
        + tr["duration_doubling"] * duration_doublings
        + tr["peripheral_arterial_disease"] * col("peripheral_arterial_disease")
        + tr["smoker"] * col("smoker")
        + tr["albumin_below_2_5"] * (col("albumin_true") < 2.5)
        + tr["non_ambulatory"] * non_ambulatory
        + tr["dialysis"] * col("dialysis")
        + tr["infection"] * w["infection0"]
        + tr["wagner_grade_step"] * np.where(is_dfu, grade - 1, 0)
        + tr["bmi_over_33_venous"] * ((wound_type == "venous_leg_ulcer") & (col("bmi_true") > 33))
        + tr["age_decade"] * (col("age_years") - 76) / 10
    )
    w["weibull_shape"] = w["wound_type"].map(cfg.weibull_shape).to_numpy(float)
    w["frailty"] = rng.normal(0, cfg.frailty_sd, n)
    base = np.log(w["stratum"].map(cfg.base_median_days).to_numpy(float))
    # The median of a Weibull is scale × ln2^(1/k): shift so the reference wound's median is the base median.
    w["log_scale_untreated"] = base - np.log(np.log(2)) / w["weibull_shape"] + covariates + w["frailty"]
    severity = (
        area_doublings
        + 0.5 * duration_doublings
        + w["infection0"]
        + np.where(is_dfu, grade - 2, 0)
        + np.isin(stage, ["3", "4", "unstageable"])
    )
    w["severity"] = (severity - severity.mean()) / (severity.std() or 1.0)
    return w


def _assign_plans(cfg: SynthConfig, rng: np.random.Generator, w: pd.DataFrame, p: pd.DataFrame) -> pd.DataFrame:
    """Choose each wound's plan among its candidates (confounded by severity); return every candidate's truth."""
    n = len(w)
    chosen = {c: np.empty(n, dtype=object) for c in (*TREATMENT_COLUMNS, "plan_id")}
    log_tr_given = np.zeros(n)
    codes: dict[str, int] = {}
    abi_ok = p["abi_true"].to_numpy()[w["pid"]] >= cfg.compression_min_abi
    severity = w["severity"].to_numpy()
    keys = w[["wound_type", "location", "pi_stage", "wagner_grade"]].fillna({"pi_stage": ""})
    truth_parts = []
    for (wound_type, location, stage, grade), idx in sorted(keys.groupby(list(keys.columns)).indices.items()):
        plans = candidate_plans(
            wound_type, location, stage or None, grade if wound_type == "diabetic_foot_ulcer" else None
        )
        shape = cfg.weibull_shape[wound_type]
        log_tr = np.array([plan_log_time_ratio(q, wound_type, shape, cfg.treatment_hazard_ratios) for q in plans])
        preference = np.array([_preference(q, cfg.assignment_preference) for q in plans])
        aggressiveness = np.array([_aggressiveness(q) for q in plans])
        utility = (
            preference
            + cfg.assignment_severity_strength * severity[idx, None] * aggressiveness
            + rng.gumbel(size=(len(idx), len(plans)))
        )
        compression = np.array([q.compression for q in plans])
        utility[:, compression] = np.where(abi_ok[idx, None], utility[:, compression], -np.inf)
        pick = utility.argmax(axis=1)
        for c in chosen:
            chosen[c][idx] = np.array([getattr(q, c) for q in plans], dtype=object)[pick]
        log_tr_given[idx] = log_tr[pick]
        expected = np.exp(w["log_scale_untreated"].to_numpy()[idx, None] + log_tr) * math.gamma(1 + 1 / shape)
        plan_codes = [codes.setdefault(q.plan_id, len(codes)) for q in plans]
        truth_parts.append((np.repeat(idx, len(plans)), np.tile(plan_codes, len(idx)), expected.ravel()))
    for c, values in chosen.items():
        w[c] = values.astype(_DTYPES.get(c, object))
    w["log_time_ratio_given"] = log_tr_given
    w["log_scale_given"] = w["log_scale_untreated"] + log_tr_given
    rows, all_codes, expected = (np.concatenate(part) for part in zip(*truth_parts, strict=True))
    order = np.argsort(rows, kind="stable")
    return pd.DataFrame(
        {
            "wound_key": w["wound_key"].to_numpy()[rows[order]],
            "plan_id": pd.Categorical.from_codes(all_codes[order], categories=list(codes)),
            "true_expected_healing_days": expected[order],
        }
    )


_DTYPES = {"dressing_changes_per_week": np.int64, **{name: bool for name in INTERVENTIONS}}


def _preference(plan: Plan, prefs: Mapping[str, float]) -> float:
    keys = [n for n in INTERVENTIONS if getattr(plan, n)]
    keys += [f"debridement:{plan.debridement}", f"dressing:{plan.primary_dressing}"]
    return sum(prefs.get(k, 0.0) for k in keys)


def _aggressiveness(plan: Plan) -> float:
    """How aggressive a plan is: advanced therapies count 1, sharp debridement and standard devices 0.5."""
    advanced = plan.npwt + plan.skin_substitute + plan.hyperbaric_oxygen
    return advanced + 0.5 * (plan.debridement == "sharp") + 0.5 * (plan.compression or plan.offloading)


def _outcomes(cfg: SynthConfig, rng: np.random.Generator, w: pd.DataFrame, p: pd.DataFrame) -> None:
    """Latent healing time, then the first of healing, episode end, amputation and the data cut."""
    n = len(w)
    pid = w["pid"].to_numpy()
    shape = w["weibull_shape"].to_numpy()
    w["latent_healing_days"] = np.exp(w["log_scale_given"]) * rng.exponential(1.0, n) ** (1 / shape)
    episode, to_cut = p["episode_days"].to_numpy()[pid], p["days_to_cut"].to_numpy()[pid]
    # A later wound appears during the stay, early enough to leave follow-up before the episode end and cut.
    first = np.r_[True, pid[1:] != pid[:-1]]
    room = np.minimum(21, np.minimum(episode, to_cut) // 2)
    offset = np.where(first, 0, np.floor(rng.random(n) * room)).astype(np.int64)
    healed_day = np.maximum(1, np.ceil(w["latent_healing_days"].to_numpy())).astype(np.int64)
    grade = w["wagner_grade"].to_numpy()
    amputation_mean = np.array([cfg.amputation_mean_days.get(g, np.inf) for g in range(6)])[grade]
    at_risk = (w["wound_type"] == "diabetic_foot_ulcer").to_numpy() & np.isfinite(amputation_mean)
    amputation = np.full(n, np.inf)
    amputation[at_risk] = np.ceil(rng.exponential(amputation_mean[at_risk])) + 1
    censor = np.stack([episode - offset, amputation, to_cut - offset])  # ties: the earlier row wins
    censor_day = censor.min(axis=0)
    reasons = np.stack([p["episode_end"].to_numpy()[pid], np.full(n, "amputated", object), np.full(n, "open", object)])
    healed = healed_day <= censor_day
    w["offset"] = offset
    w["end_day"] = np.where(healed, healed_day, censor_day).astype(np.int64)
    w["end_reason"] = np.where(healed, "healed", reasons[censor.argmin(axis=0), np.arange(n)])
    w["start"] = np.datetime64(cfg.extract_date, "D") - (to_cut - offset).astype("timedelta64[D]")


def _assessments(cfg: SynthConfig, rng: np.random.Generator, w: pd.DataFrame, p: pd.DataFrame) -> pd.DataFrame:
    """Weekly visits with jitter and misses, each with a measured wound on its path to closure at healing."""
    healed = (w["end_reason"] == "healed").to_numpy()
    end_day = w["end_day"].to_numpy()
    # A visit a day or two before closure would have seen the wound closing: closure is then the next visit.
    last_open_day = np.where(healed, np.maximum(end_day - 3, 0), end_day)
    step, jitter = cfg.visit_interval_days, cfg.visit_jitter_days
    n_slots = (last_open_day + jitter) // step + 1
    wid = np.repeat(np.arange(len(w)), n_slots)
    k = np.arange(len(wid)) - np.repeat(np.cumsum(n_slots) - n_slots, n_slots)
    day = k * step + np.where(k > 0, rng.integers(-jitter, jitter + 1, len(wid)), 0)
    keep = (day <= last_open_day[wid]) & ((k == 0) | (rng.random(len(wid)) >= cfg.missed_visit_share))
    closing = np.flatnonzero(healed)
    wid = np.concatenate([wid[keep], closing])
    day = np.concatenate([day[keep], end_day[closing]])
    first_visit = np.concatenate([k[keep] == 0, np.zeros(len(closing), bool)])
    order = np.argsort(wid, kind="stable")  # regular visits are already in day order; closures go last
    wid, day, first_visit = wid[order], day[order], first_visit[order]
    closed = day == end_day[wid]
    closed &= healed[wid]
    return _measure(cfg, rng, w, p, wid, day, first_visit, closed)


def _measure(
    cfg: SynthConfig,
    rng: np.random.Generator,
    w: pd.DataFrame,
    p: pd.DataFrame,
    wid: np.ndarray,
    day: np.ndarray,
    first_visit: np.ndarray,
    closed: np.ndarray,
) -> pd.DataFrame:
    """Every assessment column of the contract, from the wound's progress u = day / healing time."""
    n_rows, n_wounds = len(wid), len(w)
    pid = w["pid"].to_numpy()[wid]
    of_patient = lambda name: p[name].to_numpy()[pid]  # noqa: E731
    stratum = w["stratum"]
    wound_type = w["wound_type"].to_numpy()[wid]
    u = np.minimum(day / w["latent_healing_days"].to_numpy()[wid], 1.0)
    open_ = ~closed

    # Size: area shrinks as (1 - u)^p to 0 at healing (p per wound), with visit-to-visit wobble.
    path = rng.uniform(1.0, 2.0, n_wounds)
    aspect = np.exp(rng.normal(0.4, 0.25, n_wounds)).clip(1.0, 4.0)
    fill = rng.uniform(0.7, 0.95, n_wounds)  # wound area / (length × width)
    area_true = w["area0"].to_numpy()[wid] * (1 - u) ** path[wid] * np.exp(rng.normal(0, 0.08, n_rows))
    measurement = cfg.drift == "measurement"
    over = cfg.drift_overmeasure if measurement else 1.0
    noise = np.exp(rng.normal(0, cfg.length_cv, (2, n_rows)))
    length = np.sqrt(area_true * aspect[wid] / fill[wid]) * noise[0] * over
    width = np.sqrt(area_true / (aspect[wid] * fill[wid])) * noise[1] * over
    length = np.where(closed, 0.0, np.round(length, 1).clip(0.1, 60))
    width = np.where(closed, 0.0, np.round(width, 1).clip(0.1, 60))
    omitted = cfg.drift_area_omitted_share if measurement else cfg.area_omitted_share
    area = np.round(length * width * fill[wid], 2)
    area = np.where(rng.random(n_rows) < omitted, np.nan, area)

    depth_median, necrotic, eschar_part, exudate_level = (
        stratum.map({s: v[i] for s, v in _MORPHOLOGY.items()}).to_numpy(float) for i in range(4)
    )
    depth0 = depth_median * np.exp(rng.normal(0, 0.4, n_wounds))
    depth = np.round(depth0[wid] * (1 - u) ** (path[wid] / 2) * np.exp(rng.normal(0, 0.1, n_rows)), 1).clip(0.1, 20)
    depth = np.where(closed, 0.0, depth)
    depth = np.where(np.isnan(depth_median[wid]), np.nan, depth)
    deep = depth_median >= 1.0
    undermining0 = np.where(deep & (rng.random(n_wounds) < 0.25), rng.uniform(0.5, 3.0, n_wounds), 0.0)
    tunneling0 = np.where(deep & (rng.random(n_wounds) < 0.1), rng.uniform(1.0, 5.0, n_wounds), 0.0)
    undermining = np.where(deep[wid], np.round(undermining0[wid] * (1 - u) ** path[wid], 1), np.nan)
    tunneling = np.where(deep[wid], np.round(tunneling0[wid] * (1 - u) ** path[wid], 1), np.nan)

    # Wound bed: necrotic tissue clears (faster when debrided), granulation fills, epithelium closes.
    necrotic0 = np.where(necrotic > 0, (necrotic + rng.uniform(-0.15, 0.15, n_wounds)).clip(0, 0.95), 0.0)
    eschar_part = np.where(w["npwt"].to_numpy(), 0.0, eschar_part)  # eschar is debrided before NPWT
    clearance = w["debridement"].map(_NECROSIS_CLEARANCE).to_numpy(float)
    nec = necrotic0[wid] * (1 - u) ** clearance[wid]
    epithelial = (1 - nec) * u**2
    intact = stratum.isin(_INTACT_SKIN).to_numpy()[wid]
    eschar = np.round(100 * nec * eschar_part[wid])
    slough = np.round(100 * nec * (1 - eschar_part[wid]))
    epithelial = np.where(intact | closed, 100.0, np.round(100 * epithelial))
    eschar, slough = np.where(intact | closed, 0.0, eschar), np.where(intact | closed, 0.0, slough)
    granulation = (100 - eschar - slough - epithelial + rng.integers(-3, 4, n_rows)).clip(0, 100)
    granulation = np.where(intact | closed, 0.0, granulation)

    resolves = rng.uniform(7, 35, n_wounds)
    infected = (w["infection0"].to_numpy()[wid] & (day < resolves[wid])) | (rng.random(n_rows) < 0.02)
    infected &= open_
    median_area = stratum.map(cfg.median_area_cm2).to_numpy(float)[wid]
    level = (
        exudate_level[wid]
        + 0.35 * np.log2(np.maximum(area_true, 0.01) / median_area)
        + 0.8 * infected
        - u
        + rng.normal(0, 0.45, n_rows)
    )
    amount_idx = np.searchsorted([0.5, 1.5, 2.5], level)
    amount_idx = np.where(closed | (exudate_level[wid] == 0), 0, amount_idx)
    exudate_amount = np.array(["none", "light", "moderate", "heavy"], dtype=object)[amount_idx]
    exudate_type = _choice(rng, {"serous": 0.55, "serosanguineous": 0.4, "sanguineous": 0.05}, n_rows)
    exudate_type = np.where(infected, "purulent", exudate_type)
    exudate_type[(amount_idx == 0) | (rng.random(n_rows) < 0.1)] = None
    odor = pd.array(open_ & ((infected & (rng.random(n_rows) < 0.6)) | (rng.random(n_rows) < 0.05)), dtype="boolean")
    odor[open_ & (rng.random(n_rows) < 0.25)] = pd.NA
    pain = np.round(pd.Series(wound_type).map(_PAIN).to_numpy(float) + rng.normal(0, 1.5, n_rows) - 2 * u)
    pain = pd.array(np.where(closed, 0, pain.clip(0, 10)), dtype="Int64")
    pain[rng.random(n_rows) < 0.2] = pd.NA
    periwound = np.empty(n_rows, dtype=object)
    for t in WOUND_TYPES:
        mine = wound_type == t
        periwound[mine] = _choice(rng, _PERIWOUND.get(t, _PERIWOUND["*"]), int(mine.sum()))
    periwound = np.where(closed, "intact", periwound)
    periwound[rng.random(n_rows) < 0.15] = None

    # Vitals and labs, recorded on some visits only; bmi agrees with the row's weight and height.
    height_cm = np.round(of_patient("height_m") * 100)
    weight_true = of_patient("bmi_true") * of_patient("height_m") ** 2
    weight = np.round(weight_true * np.exp(rng.normal(0, 0.01, n_rows)), 1)
    has_weight, has_height = rng.random(n_rows) < 0.5, rng.random(n_rows) < 0.3
    bmi = np.where(has_weight & has_height, weight / (height_cm / 100) ** 2, of_patient("bmi_true"))
    bmi = np.where(rng.random(n_rows) < 0.4, np.round(bmi, 1), np.nan)
    diabetic = of_patient("diabetes")
    hba1c = np.round(of_patient("hba1c_true") + rng.normal(0, 0.2, n_rows), 1)
    hba1c = np.where(diabetic & (rng.random(n_rows) < 0.15), hba1c, np.nan)
    has_albumin = (rng.random(n_rows) < 0.25) | (first_visit & (rng.random(n_rows) < 0.5))
    albumin = np.where(has_albumin, np.round(of_patient("albumin_true") + rng.normal(0, 0.15, n_rows), 1), np.nan)
    compression = w["compression"].to_numpy()[wid]
    lower = np.isin(w["location"].to_numpy()[wid], LOWER_EXTREMITY_LOCATIONS)
    arterial = of_patient("peripheral_arterial_disease") | (wound_type == "arterial_ulcer")
    abi_share = np.where(compression, 0.9, np.where(arterial, 0.75, 0.4))
    has_abi = lower & ((first_visit & (rng.random(n_rows) < abi_share)) | (rng.random(n_rows) < 0.05))
    abi = np.round(of_patient("abi_true") + rng.uniform(-0.05, 0.05, n_rows), 2).clip(0.2, 1.6)

    frame = {
        "assessment_key": _keys("A", n_rows),
        "wound_key": w["wound_key"].to_numpy()[wid],
        "assessed_on": (w["start"].to_numpy()[wid] + day.astype("timedelta64[D]")).astype("datetime64[ns]"),
        "length_cm": length,
        "width_cm": width,
        "depth_cm": depth,
        "area_cm2": area,
        "undermining_cm": undermining,
        "tunneling_cm": tunneling,
        "granulation_pct": granulation.astype(float),
        "slough_pct": slough,
        "eschar_pct": eschar,
        "epithelial_pct": epithelial,
        "exudate_amount": exudate_amount,
        "exudate_type": exudate_type,
        "odor": odor,
        "infection": infected,
        "pain_score": pain,
        "periwound": periwound,
        "weight_kg": np.where(has_weight, weight, np.nan),
        "height_cm": np.where(has_height, height_cm, np.nan),
        "bmi": bmi,
        "hba1c_pct": hba1c,
        "albumin_g_dl": albumin.clip(0.5, 6),
        "ankle_brachial_index": np.where(has_abi, abi, np.nan),
    }
    for c in TREATMENT_COLUMNS:
        frame[c] = w[c].to_numpy()[wid]
    return pd.DataFrame(frame)[list(TABLES["assessments"].column_names)]


def _wound_table(cfg: SynthConfig, rng: np.random.Generator, w: pd.DataFrame) -> pd.DataFrame:
    """The contract's wound columns: onset from the wound's age, end date and reason from the outcome."""
    n = len(w)
    onset = w["start"] - w["duration0"].to_numpy().astype("timedelta64[D]")
    is_open = (w["end_reason"] == "open").to_numpy()
    end = w["start"] + w["end_day"].to_numpy().astype("timedelta64[D]")
    is_dfu = (w["wound_type"] == "diabetic_foot_ulcer").to_numpy()
    return pd.DataFrame(
        {
            "wound_key": w["wound_key"],
            "patient_key": w["patient_key"],
            "wound_type": w["wound_type"],
            "location": w["location"],
            "onset_date": onset.where(rng.random(n) >= cfg.onset_missing_share).astype("datetime64[ns]"),
            "pi_stage": w["pi_stage"],
            "wagner_grade": w["wagner_grade"].astype("Int64").where(is_dfu),
            "end_date": end.where(~is_open).astype("datetime64[ns]"),
            # An open wound's reason is written as `open` or left empty (both mean open).
            "end_reason": w["end_reason"].where(~is_open | (rng.random(n) < 0.5), None),
        }
    )


def _ground_truth(w: pd.DataFrame) -> pd.DataFrame:
    """Per wound: the true Weibull parameters, the plan given, the latent healing time and the observed end."""
    gamma = np.array([math.gamma(1 + 1 / k) for k in w["weibull_shape"]])
    scale_given = np.exp(w["log_scale_given"])
    truth = w[
        ["wound_key", "patient_key", "wound_type", "location", "pi_stage", "stratum", "weibull_shape",
         "log_scale_untreated", "frailty", "severity", "plan_id", "log_time_ratio_given", "log_scale_given",
         "latent_healing_days", "end_day", "end_reason"]
    ].copy()  # fmt: skip
    truth.insert(5, "wagner_grade", w["wagner_grade"].astype("Int64").where(w["wound_type"] == "diabetic_foot_ulcer"))
    truth["true_expected_healing_days"] = scale_given * gamma
    truth["true_median_healing_days"] = scale_given * np.log(2) ** (1 / w["weibull_shape"])
    truth["area_at_presentation_cm2"] = w["area0"]
    truth["infection_at_presentation"] = w["infection0"]
    return truth.rename(columns={"end_day": "observed_days"}).reset_index(drop=True)


# --- dirt -------------------------------------------------------------------------------------------------

_TYPO_COLUMNS = {
    "patients": ("sex", "care_setting", "mobility"),
    "wounds": ("wound_type", "location"),
    "assessments": ("primary_dressing", "exudate_amount", "debridement"),
}
_IMPOSSIBLE = {
    "patients": (("age_years", 130),),
    "wounds": (("wagner_grade", 7),),
    "assessments": (("length_cm", 75.0), ("granulation_pct", 140.0), ("albumin_g_dl", 9.5), ("pain_score", 14)),
}
_KINDS = {
    "patients": ("enum_typo", "impossible_value", "duplicate_key"),
    "wounds": ("enum_typo", "impossible_value", "duplicate_key", "orphan"),
    "assessments": ("enum_typo", "impossible_value", "mm_as_cm", "duplicate_key", "orphan"),
}


def _make_dirty(
    cfg: SynthConfig, rng: np.random.Generator, tables: dict[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Corrupt a share of each table's rows, one corruption per row, and log (table, key, kind, column)."""
    log = []
    out = {}
    for name, frame in tables.items():
        key = TABLES[name].key
        frame = frame.copy()
        candidates = np.arange(len(frame))
        if name == "assessments":  # a closed wound's zeros cannot show a unit slip
            candidates = candidates[frame["length_cm"].to_numpy() > 0]
        n_dirty = min(round(cfg.dirty_share * len(frame)), len(candidates))
        rows = rng.choice(candidates, n_dirty, replace=False)
        kinds = np.array(_KINDS[name], dtype=object)[rng.integers(0, len(_KINDS[name]), n_dirty)]
        duplicates: list[pd.DataFrame] = []
        for kind in _KINDS[name]:
            at = rows[kinds == kind]
            if not len(at):
                continue
            columns = _corrupt(frame, name, kind, at, rng, duplicates)
            log.append(pd.DataFrame({"table": name, "key": frame[key].to_numpy()[at], "kind": kind, "column": columns}))
        out[name] = pd.concat([frame, *duplicates], ignore_index=True) if duplicates else frame
    dirty = pd.concat(log, ignore_index=True) if log else pd.DataFrame(columns=["table", "key", "kind", "column"])
    return out, dirty


def _corrupt(
    frame: pd.DataFrame, table: str, kind: str, at: np.ndarray, rng: np.random.Generator, duplicates: list
) -> Any:
    """Apply one kind of corruption to rows `at` of `frame` in place; return the column(s) touched."""
    if kind == "enum_typo":
        columns = np.array(_TYPO_COLUMNS[table], dtype=object)[rng.integers(0, len(_TYPO_COLUMNS[table]), len(at))]
        for column in set(columns):
            mine = at[columns == column]
            frame.iloc[mine, frame.columns.get_loc(column)] = (
                frame[column].iloc[mine].str.replace("_", " ").str.title().to_numpy()
            )
        return columns
    if kind == "impossible_value":
        choices = _IMPOSSIBLE[table]
        picked = rng.integers(0, len(choices), len(at))
        for i, (column, value) in enumerate(choices):
            frame.iloc[at[picked == i], frame.columns.get_loc(column)] = value
        return np.array([c for c, _ in choices], dtype=object)[picked]
    if kind == "mm_as_cm":
        for column in ("length_cm", "width_cm"):
            frame.iloc[at, frame.columns.get_loc(column)] = frame[column].iloc[at].to_numpy() * 10
        return "length_cm,width_cm"
    if kind == "duplicate_key":
        duplicates.append(frame.iloc[at])
        return TABLES[table].key
    parent_key = TABLES[table].parent_key
    frame.iloc[at, frame.columns.get_loc(parent_key)] = [f"orphan-{i}" for i in range(len(at))]
    return parent_key


# --- helpers ----------------------------------------------------------------------------------------------


def _keys(prefix: str, n: int) -> np.ndarray:
    """Pseudonymous keys like P0000042 (sequence numbers carry no patient information)."""
    width = max(7, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), width)).astype(object)


def _choice(rng: np.random.Generator, mix: Mapping[Any, float], size: int) -> np.ndarray:
    values = np.array(list(mix.keys()), dtype=object)
    return values[_sample_rows(rng, np.array(list(mix.values()), dtype=float)[None, :], size)]


def _sample_rows(rng: np.random.Generator, weights: np.ndarray, size: int | None = None) -> np.ndarray:
    """One categorical draw per row of `weights` (rows need not sum to 1; one shared row may be broadcast)."""
    size = len(weights) if size is None else size
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(size) * cumulative[:, -1]
    return (cumulative <= u[:, None]).sum(axis=1)


def _shift_toward(mix: Mapping[str, float], target: str, share: float) -> dict[str, float]:
    """The mix with `target` at `share` and the other settings scaled to fill the rest."""
    rest = sum(v for k, v in mix.items() if k != target)
    return {k: share if k == target else v / rest * (1 - share) for k, v in mix.items()}
