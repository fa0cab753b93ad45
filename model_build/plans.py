"""The treatment-plan space: which plans are worth comparing for a wound (no numpy/pandas: the inference Lambda
imports this). Contraindications (ABI, eschar, anticoagulants) are filtered elsewhere, by a rule table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import product

TREATMENT_COLUMNS = (
    "primary_dressing",
    "dressing_changes_per_week",
    "debridement",
    "compression",
    "offloading",
    "npwt",
    "skin_substitute",
    "hyperbaric_oxygen",
)
INTERVENTIONS = ("compression", "offloading", "npwt", "skin_substitute", "hyperbaric_oxygen")
ADVANCED = ("npwt", "skin_substitute", "hyperbaric_oxygen")

# Representative dressing classes with their typical changes per week (assumed, manufacturer guidance ranges).
# Healing barely differs between moist dressing classes; cost and change frequency do (domain-facts.md).
CHANGES_PER_WEEK = {
    "none": 0,
    "film": 2,
    "hydrocolloid": 3,
    "foam": 3,
    "alginate": 4,
    "silver_antimicrobial": 3,
    "hydrogel": 7,
    "gauze": 7,
}
# NPWT replaces the primary dressing: its foam is changed three times a week.
NPWT_DRESSING = ("foam", 3)

_PROTECTIVE = ("none", "film", "foam")  # intact skin: stage 1, deep tissue injury
_PARTIAL_THICKNESS = ("foam", "hydrocolloid", "gauze")  # stage 2 (foam vs gauze: same healing, NPULS)
_SKIN_TEAR = ("foam", "hydrogel", "gauze")  # hydrocolloids strip fragile skin
_DRY_NECROTIC = ("hydrogel", "foam", "silver_antimicrobial", "gauze")  # arterial, unstageable
_FULL_THICKNESS = ("foam", "alginate", "silver_antimicrobial", "gauze")

_DEBRIDEMENT_FULL = ("none", "sharp", "autolytic")
_DEBRIDEMENT_PRESSURE = ("none", "sharp", "autolytic", "enzymatic")  # collagenase is common in long-term care
_DEBRIDEMENT_ISCHAEMIC = ("none", "autolytic", "enzymatic")  # no sharp debridement of dry ischaemic tissue

_OFFLOADED_FOOT = ("foot_plantar", "heel", "toe")
_COMPRESSED_LEG = ("lower_leg", "malleolus")


@dataclass(frozen=True)
class Plan:
    """One treatment plan: the values of the assessment's treatment columns while it is in force."""

    primary_dressing: str
    dressing_changes_per_week: int
    debridement: str = "none"
    compression: bool = False
    offloading: bool = False
    npwt: bool = False
    skin_substitute: bool = False
    hyperbaric_oxygen: bool = False

    # The id names every field and is computed once: hashing and comparing it is cheaper than every field.
    def __hash__(self) -> int:
        return hash(self.plan_id)

    def __eq__(self, other: object) -> bool:
        return self.plan_id == other.plan_id if isinstance(other, Plan) else NotImplemented

    @cached_property
    def plan_id(self) -> str:
        """Stable readable id, e.g. `foam.3.sharp+offloading+npwt`; `Plan.from_id` reverses it."""
        head = f"{self.primary_dressing}.{self.dressing_changes_per_week}.{self.debridement}"
        return "+".join([head, *(name for name in INTERVENTIONS if getattr(self, name))])

    @classmethod
    def from_id(cls, plan_id: str) -> Plan:
        head, *interventions = plan_id.split("+")
        dressing, changes, debridement = head.split(".")
        unknown = set(interventions) - set(INTERVENTIONS)
        if unknown:
            raise ValueError(f"unknown intervention in plan id: {sorted(unknown)}")
        return cls(dressing, int(changes), debridement, **{name: True for name in interventions})

    def as_assessment_fields(self) -> dict[str, str | int | bool]:
        """The plan's treatment columns and their values (the caller's own copy)."""
        return dict(self._assessment_fields)

    @cached_property
    def _assessment_fields(self) -> dict[str, str | int | bool]:
        return {name: getattr(self, name) for name in TREATMENT_COLUMNS}

    @cached_property
    def components(self) -> tuple[str, ...]:
        """What a treatment effect can attach to: the active interventions, `debridement:<kind>`, `dressing:<class>`."""
        active = [name for name in INTERVENTIONS if getattr(self, name)]
        return (*active, f"debridement:{self.debridement}", f"dressing:{self.primary_dressing}")


def candidate_plans(
    wound_type: str, location: str, pi_stage: str | None = None, wagner_grade: int | None = None
) -> list[Plan]:
    """The plans worth comparing for this wound: dressings × debridement × the interventions that apply to it.

    Standard-of-care devices (compression, offloading) are offered with and without; at most one advanced
    therapy (NPWT, skin substitute, HBOT) is added, and only on top of that standard of care where it applies.
    """
    return list(_candidate_plans(wound_type, location, pi_stage, wagner_grade))


@lru_cache(maxsize=256)
def _candidate_plans(
    wound_type: str, location: str, pi_stage: str | None, wagner_grade: int | None
) -> tuple[Plan, ...]:
    """`candidate_plans`, built once per kind of wound (the plans keep their cached ids and components)."""
    dressings, debridements = _dressings(wound_type, pi_stage), _debridements(wound_type, pi_stage)
    standard = _standard_device(wound_type, location)
    advanced = _advanced_therapies(wound_type, pi_stage, wagner_grade)
    device_sets: list[tuple[str, ...]] = [()]
    if standard:
        device_sets.append((standard,))
    base = device_sets[-1]
    device_sets += [(*base, therapy) for therapy in advanced]
    plans = []
    for devices in device_sets:
        flags = {name: True for name in devices}
        pairs = [NPWT_DRESSING] if "npwt" in devices else [(d, CHANGES_PER_WEEK[d]) for d in dressings]
        for (dressing, changes), debridement in product(pairs, debridements):
            plans.append(Plan(dressing, changes, debridement, **flags))
    return tuple(plans)


def _dressings(wound_type: str, pi_stage: str | None) -> tuple[str, ...]:
    if wound_type == "pressure_injury" and pi_stage in ("1", "deep_tissue"):
        return _PROTECTIVE
    if wound_type == "pressure_injury" and pi_stage == "2":
        return _PARTIAL_THICKNESS
    if wound_type == "skin_tear":
        return _SKIN_TEAR
    if wound_type == "arterial_ulcer" or pi_stage == "unstageable":
        return _DRY_NECROTIC
    return _FULL_THICKNESS


def _debridements(wound_type: str, pi_stage: str | None) -> tuple[str, ...]:
    if wound_type == "skin_tear" or (wound_type == "pressure_injury" and pi_stage in ("1", "2", "deep_tissue")):
        return ("none",)
    if wound_type == "arterial_ulcer":
        return _DEBRIDEMENT_ISCHAEMIC
    if wound_type == "pressure_injury":
        return _DEBRIDEMENT_PRESSURE
    return _DEBRIDEMENT_FULL


def _standard_device(wound_type: str, location: str) -> str | None:
    if wound_type == "venous_leg_ulcer" and location in _COMPRESSED_LEG:
        return "compression"
    if wound_type == "diabetic_foot_ulcer" and location in _OFFLOADED_FOOT:
        return "offloading"
    if wound_type == "pressure_injury" and location == "heel":
        return "offloading"
    return None


def _advanced_therapies(wound_type: str, pi_stage: str | None, wagner_grade: int | None) -> list[str]:
    grade = -1 if wagner_grade is None else int(wagner_grade)
    deep = (
        (wound_type == "pressure_injury" and pi_stage in ("3", "4"))
        or (wound_type == "diabetic_foot_ulcer" and grade >= 2)
        or wound_type in ("surgical_dehiscence", "trauma")
    )
    therapies = ["npwt"] if deep else []
    if wound_type in ("diabetic_foot_ulcer", "venous_leg_ulcer"):
        therapies.append("skin_substitute")
    if wound_type == "diabetic_foot_ulcer" and grade >= 3:
        therapies.append("hyperbaric_oxygen")
    return therapies
