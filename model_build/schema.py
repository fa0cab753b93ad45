"""The EHR extract contract, version 1, as data (see shared docs: ehr-extract-contract.md).

Every rule that can be said per column lives here; rules that span columns, rows or tables
live in `model_build.validate`, which reads this module and never restates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONTRACT_VERSION = 1

Kind = Literal["key", "int", "float", "bool", "date", "enum"]

SEXES = ("female", "male", "unknown")
CARE_SETTINGS = ("snf", "home_health", "ltach", "irf", "outpatient_clinic")
MOBILITY = ("bedbound", "chairbound", "limited", "ambulatory")
COMORBIDITIES = (
    "diabetes",
    "peripheral_arterial_disease",
    "venous_insufficiency",
    "heart_failure",
    "chronic_kidney_disease",
    "dialysis",
    "copd",
    "immunosuppressed",
    "malnutrition",
    "smoker",
    "dementia",
    "spinal_cord_injury",
)
MEDICATIONS = ("on_steroids", "on_anticoagulants", "on_immunosuppressants")

WOUND_TYPES = (
    "pressure_injury",
    "diabetic_foot_ulcer",
    "venous_leg_ulcer",
    "arterial_ulcer",
    "surgical_dehiscence",
    "trauma",
    "skin_tear",
    "other",
)
LOCATIONS = (
    "sacrum_coccyx",
    "ischium",
    "trochanter",
    "buttock",
    "heel",
    "foot_plantar",
    "foot_dorsal",
    "toe",
    "malleolus",
    "lower_leg",
    "knee_thigh",
    "abdomen",
    "chest_back",
    "upper_extremity",
    "head_neck",
    "other",
)
LOWER_EXTREMITY_LOCATIONS = (
    "heel",
    "foot_plantar",
    "foot_dorsal",
    "toe",
    "malleolus",
    "lower_leg",
    "knee_thigh",
)
PI_STAGES = ("1", "2", "3", "4", "unstageable", "deep_tissue")
PI_STAGES_WITHOUT_DEPTH = ("1", "deep_tissue", "unstageable")
END_REASONS = ("healed", "open", "discharged", "transferred", "died", "amputated")

EXUDATE_AMOUNTS = ("none", "light", "moderate", "heavy")
EXUDATE_TYPES = ("serous", "serosanguineous", "sanguineous", "purulent")
PERIWOUND = ("intact", "macerated", "erythema", "induration", "callus")
DRESSINGS = (
    "foam",
    "alginate",
    "hydrocolloid",
    "hydrogel",
    "silver_antimicrobial",
    "collagen",
    "honey",
    "gauze",
    "film",
    "none",
)
DEBRIDEMENTS = ("none", "sharp", "enzymatic", "autolytic", "mechanical")
INTERVENTIONS = ("compression", "offloading", "npwt", "skin_substitute", "hyperbaric_oxygen")
TISSUE_PCT_COLUMNS = ("granulation_pct", "slough_pct", "eschar_pct", "epithelial_pct")

COST_UNITS = ("per_change", "per_day", "per_week", "per_application", "per_visit")


@dataclass(frozen=True)
class Column:
    """One contract column: its type, whether it is always required, and its allowed values."""

    name: str
    kind: Kind
    required: bool = True
    low: float | None = None
    high: float | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """One contract table: its primary key, its parent (foreign key) and its columns."""

    name: str
    key: str
    columns: tuple[Column, ...]
    parent: str | None = None  # table name the foreign key points at
    parent_key: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _bools(names: tuple[str, ...], required: bool = True) -> tuple[Column, ...]:
    return tuple(Column(n, "bool", required) for n in names)


PATIENTS = Table(
    name="patients",
    key="patient_key",
    columns=(
        Column("patient_key", "key"),
        Column("age_years", "int", low=0, high=90),
        Column("sex", "enum", values=SEXES),
        Column("care_setting", "enum", values=CARE_SETTINGS),
        Column("mobility", "enum", values=MOBILITY),
        *_bools(COMORBIDITIES),
        *_bools(MEDICATIONS),
    ),
)

WOUNDS = Table(
    name="wounds",
    key="wound_key",
    parent="patients",
    parent_key="patient_key",
    columns=(
        Column("wound_key", "key"),
        Column("patient_key", "key"),
        Column("wound_type", "enum", values=WOUND_TYPES),
        Column("location", "enum", values=LOCATIONS),
        Column("onset_date", "date", required=False),
        # Required iff wound_type says so: checked in validate.
        Column("pi_stage", "enum", required=False, values=PI_STAGES),
        Column("wagner_grade", "int", required=False, low=0, high=5),
        Column("end_date", "date", required=False),
        Column("end_reason", "enum", required=False, values=END_REASONS),
    ),
)

ASSESSMENTS = Table(
    name="assessments",
    key="assessment_key",
    parent="wounds",
    parent_key="wound_key",
    columns=(
        Column("assessment_key", "key"),
        Column("wound_key", "key"),
        Column("assessed_on", "date"),
        Column("length_cm", "float", low=0, high=60),
        Column("width_cm", "float", low=0, high=60),
        # Required unless pi_stage is 1 / deep_tissue / unstageable: checked in validate.
        Column("depth_cm", "float", required=False, low=0, high=20),
        Column("area_cm2", "float", required=False, low=0, high=3600),
        Column("undermining_cm", "float", required=False, low=0, high=20),
        Column("tunneling_cm", "float", required=False, low=0, high=20),
        *(Column(c, "float", low=0, high=100) for c in TISSUE_PCT_COLUMNS),
        Column("exudate_amount", "enum", values=EXUDATE_AMOUNTS),
        Column("exudate_type", "enum", required=False, values=EXUDATE_TYPES),
        Column("odor", "bool", required=False),
        Column("infection", "bool"),
        Column("pain_score", "int", required=False, low=0, high=10),
        Column("periwound", "enum", required=False, values=PERIWOUND),
        Column("weight_kg", "float", required=False, low=20, high=350),
        Column("height_cm", "float", required=False, low=100, high=230),
        Column("bmi", "float", required=False, low=10, high=80),
        Column("hba1c_pct", "float", required=False, low=3, high=20),
        Column("albumin_g_dl", "float", required=False, low=0.5, high=6),
        Column("ankle_brachial_index", "float", required=False, low=0.2, high=1.6),
        Column("primary_dressing", "enum", values=DRESSINGS),
        Column("dressing_changes_per_week", "int", low=0, high=21),
        Column("debridement", "enum", values=DEBRIDEMENTS),
        *_bools(INTERVENTIONS),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (PATIENTS, WOUNDS, ASSESSMENTS)}
TABLE_ORDER = ("patients", "wounds", "assessments")  # parents before children

COST_CATALOG = Table(
    name="cost_catalog",
    key="item",
    columns=(
        Column("item", "key"),
        Column("unit", "enum", values=COST_UNITS),
        Column("unit_cost_usd", "float", low=0, high=1e9),
        Column("frequency_per_week", "float", required=False, low=0, high=1e3),
    ),
)
