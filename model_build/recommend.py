"""Treatment options for one wound, ranked by predicted outcome and cost, with contraindications and support.

Candidate plans (`model_build.plans`) are screened by a JSON rule table. The healing model scores ONE row, the
latest visit as recorded (its current plan); each plan's curve is that prognosis with every interval's hazard logit
shifted by the estimated treatment-effect contrast tau(plan) - tau(current plan) (`model_build.effects`, shipped in
the serving metadata; assumptions in docs/recommender.md). Each plan is costed from the catalog over its curve, and
the options are ranked by the caller's objective.

Pure Python: the inference Lambda imports it. The scorer is any `margins(rows) -> list[list[float]]`.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from model_build.costs import CostCatalog, cost_per_healed, expected_cost, icer
from model_build.features import FEATURE_NAMES, TREATMENT_FEATURE_NAMES
from model_build.plans import INTERVENTIONS, TREATMENT_COLUMNS, Plan, candidate_plans
from model_build.precision import PROBABILITY, USD, WEEKS, complement, complements, rounded, rounded_all
from model_build.schema import DEBRIDEMENTS, DRESSINGS
from model_build.trajectory import DAYS_PER_WEEK, CurveQuery, CurveSummaries, Summarise, shown_weeks, summarise_curves

DEFAULT_RULES = resources.files("model_build") / "data" / "contraindications.json"
OBJECTIVES = ("fastest", "cheapest", "cost_per_healed")
ACTIONS = ("exclude", "caveat")
WEEKS_12_DAYS = 84.0
QUANTILES = (0.1, 0.5, 0.9)  # the 10th–90th percentile weeks and the median
DEFAULT_MIN_SUPPORT = 20
REMEMBERED_CONTRASTS = 4096  # caveats of plan-versus-reference contrasts a `TreatmentEffects` keeps
METHOD = (
    "Prognosis under the current plan from the healing model, shifted for each plan by severity-adjusted "
    "treatment effects (log odds ratios of the interval hazard of healing, estimated on first visits). Valid if "
    "the model's features capture why wounds got their plans (no unmeasured confounding), comparable wounds "
    "received the plan (support), effects are proportional over time, and the plan is delivered as recorded."
)
COMPARABLE = "wound type; pressure injuries by stage"

Margins = Callable[[Sequence[Mapping[str, Any]]], list[list[float]]]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}
_PRESENCE_OPS = ("missing", "present")
_COMPONENTS = frozenset(
    [*INTERVENTIONS, *(f"debridement:{d}" for d in DEBRIDEMENTS), *(f"dressing:{d}" for d in DRESSINGS)]
)


class RuleTableError(ValueError):
    """The contraindication rule table is malformed (unknown field, op, action or component)."""


# --- contraindication rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One test on a field of the wound's latest feature row; a missing field satisfies only `missing`."""

    field: str
    op: str
    value: Any = None

    def holds(self, row: Mapping[str, Any]) -> bool:
        actual = row.get(self.field)
        if self.op in _PRESENCE_OPS:
            return (actual is None) == (self.op == "missing")
        return actual is not None and _OPS[self.op](actual, self.value)


@dataclass(frozen=True)
class Rule:
    """Excludes (or caveats) plans with `component` when all conditions hold; carries reason and source."""

    id: str
    component: str
    action: str
    when: tuple[Condition, ...]
    reason: str
    source: str

    def holds(self, row: Mapping[str, Any]) -> bool:
        """Whether the wound meets every condition, whatever the plan."""
        for condition in self.when:  # noqa: SIM110 (all() over a generator costs more; every request tests every rule)
            if not condition.holds(row):
                return False
        return True

    def fires(self, plan: Plan, row: Mapping[str, Any]) -> bool:
        return self.component in plan.components and self.holds(row)

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "reason": self.reason, "source": self.source}


Screen = tuple[Plan, tuple[Rule, ...], tuple[Rule, ...]]  # a plan, the rules excluding it, the rules caveating it


@dataclass(frozen=True)
class RuleTable:
    """The parsed rule table; `version` is a content hash, so any edit of the file is a new version."""

    rules: tuple[Rule, ...]
    version: str
    _screens: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Screen]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def screen(self, plan: Plan, row: Mapping[str, Any]) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
        """(exclusions, caveats) that fire for `plan` on this wound."""
        return _split([rule for rule in self.rules if rule.fires(plan, row)])

    def screen_all(self, plans: Iterable[Plan], row: Mapping[str, Any]) -> list[Screen]:
        """`screen` for many plans, testing each rule's conditions on the wound once. Which rules fire for a plan
        depends only on which rules hold for the wound: remembered per plans and holding rules, as options screen
        every plan of every request."""
        holding = [rule for rule in self.rules if rule.holds(row)]
        plans = tuple(plans)
        key = (tuple([rule.id for rule in holding]), tuple([plan.plan_id for plan in plans]))
        screens = self._screens.get(key)
        if screens is None:
            screens = []
            for plan in plans:
                fired = [r for r in holding if r.component in plan.components]
                screens.append((plan, *_split(fired)) if fired else (plan, (), ()))
            self._screens[key] = screens  # whole, so another thread never reads a part
        return list(screens)


def _split(fired: list[Rule]) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    return tuple(r for r in fired if r.action == "exclude"), tuple(r for r in fired if r.action == "caveat")


def parse_rules(text: str) -> RuleTable:
    """Parse the JSON rule table, checking every field, op, action and component against the specs."""
    try:
        rules = tuple(_parse_rule(raw) for raw in json.loads(text)["rules"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise RuleTableError(f"malformed rule table: {error!r}") from None
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise RuleTableError("rule ids must be unique")
    return RuleTable(rules, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])


def load_rules(path: str | Path | None = None) -> RuleTable:
    """Read a rule table file; by default the one shipped in `model_build/data`."""
    source = DEFAULT_RULES if path is None else Path(path)
    return parse_rules(source.read_text(encoding="utf-8"))


def _parse_rule(raw: Mapping[str, Any]) -> Rule:
    rule_id = str(raw["id"])
    if raw["component"] not in _COMPONENTS:
        raise RuleTableError(f"rule {rule_id}: unknown component")
    if raw["action"] not in ACTIONS:
        raise RuleTableError(f"rule {rule_id}: action must be one of {ACTIONS}")
    conditions = []
    for cond in raw["when"]:
        if cond["field"] not in FEATURE_NAMES:
            raise RuleTableError(f"rule {rule_id}: field {cond['field']!r} is not a model feature")
        if cond["op"] not in _OPS and cond["op"] not in _PRESENCE_OPS:
            raise RuleTableError(f"rule {rule_id}: unknown op {cond['op']!r}")
        if cond["op"] in _OPS and "value" not in cond:
            raise RuleTableError(f"rule {rule_id}: op {cond['op']!r} needs a value")
        value = cond.get("value")
        value = tuple(value) if isinstance(value, list) else value
        conditions.append(Condition(cond["field"], cond["op"], value))
    if not conditions:
        raise RuleTableError(f"rule {rule_id}: needs at least one condition")
    return Rule(rule_id, raw["component"], raw["action"], tuple(conditions), raw["reason"], raw["source"])


# --- plans as rows, support ---------------------------------------------------------------------------------


def plan_from_fields(fields: Mapping[str, Any]) -> Plan | None:
    """The plan recorded in an assessment or feature row; None when any treatment field is missing."""
    values: list[Any] = [fields.get(name) for name in TREATMENT_COLUMNS]
    if any(v is None or v != v for v in values):  # v != v: NaN
        return None
    dressing, changes, debridement, *interventions = values
    return _recorded_plan(str(dressing), int(changes), str(debridement), *map(bool, interventions))


@lru_cache(maxsize=1024)
def _recorded_plan(dressing: str, changes: int, debridement: str, *interventions: bool) -> Plan:
    """One Plan per recorded plan (its id and components are worked out once): options read one per request."""
    return Plan(dressing, changes, debridement, **dict(zip(INTERVENTIONS, interventions, strict=True)))


def plan_features(plan: Plan) -> dict[str, Any]:
    """The plan's treatment features as the model sees them (categoricals as text, numerics as floats)."""
    fields = plan.as_assessment_fields()
    return {name: _model_value(fields[name]) for name in TREATMENT_FEATURE_NAMES}


def _model_value(value: Any) -> Any:
    return value if isinstance(value, str) else float(value)


def comparable_group(wound_type: str, pi_stage: Any = None) -> str:
    """Which wounds count as comparable for support: the wound type, pressure injuries split by stage."""
    return f"{wound_type}:{pi_stage}" if wound_type == "pressure_injury" else str(wound_type)


def support_table(exposures: Iterable[Mapping[str, Any]], min_support: int = DEFAULT_MIN_SUPPORT) -> dict:
    """How many distinct training wounds of each comparable group received each plan (JSON-able, for serving).

    `exposures` are records with wound_key, wound_type, pi_stage and the treatment columns, e.g. the training
    assessments joined to their wounds and de-duplicated on those columns.
    """
    seen = set()
    for record in exposures:
        plan = plan_from_fields(record)
        if plan is not None:
            group = comparable_group(record["wound_type"], record.get("pi_stage"))
            seen.add((group, plan.plan_id, record["wound_key"]))
    counts: dict[str, dict[str, int]] = {}
    for group, plan_id, _ in seen:
        by_plan = counts.setdefault(group, {})
        by_plan[plan_id] = by_plan.get(plan_id, 0) + 1
    ordered = {group: dict(sorted(counts[group].items())) for group in sorted(counts)}
    return {"comparable": COMPARABLE, "min_support": min_support, "counts": ordered}


# --- outcome and cost of one plan ---------------------------------------------------------------------------


def plan_effect(effects: Mapping[str, Any], plan: Plan, wound_type: str) -> float:
    """tau(plan): the sum of its components' effects (log odds ratios) for this wound type; unknown components 0."""
    total = 0.0
    for component in plan.components:
        by_type = effects["effects"].get(component)
        if by_type:
            total += by_type.get(wound_type, by_type["*"])
    return total


def effect_caveat(effects: Mapping[str, Any], component: str, wound_type: str) -> dict[str, str] | None:
    """The caveat on a contrast that adds or drops `component`: its effect was not estimated (too few training
    wounds) or its 95 % interval includes no effect; None when the effect is clear."""
    by_type = effects["effects"].get(component)
    if not by_type:
        few = f"fewer than {effects['min_exposed_wounds']} training wounds received it, so no effect is applied"
        return _effect_caveat("effect_not_estimated", f"{component}: {few}")
    key = wound_type if wound_type in by_type else "*"
    tau, se = by_type[key], effects["standard_errors"][component][key]
    if abs(tau) >= 1.96 * se:
        return None
    interval = f"{math.exp(tau - 1.96 * se):.2f}–{math.exp(tau + 1.96 * se):.2f}"
    reason = f"{component}: estimated odds ratio {math.exp(tau):.2f}, 95 % interval {interval} includes no effect"
    return _effect_caveat("uncertain_effect", reason)


class TreatmentEffects:
    """A model's treatment effects (`serving_meta()["treatment_effects"]`), with each plan's effect (per wound type)
    and each contrast's caveats remembered: options read them for every plan of every request, so serving keeps one
    per loaded model (`model_build.predict.Scorer`)."""

    def __init__(self, effects: Mapping[str, Any]) -> None:
        self.effects = effects
        self._no_effect = f"debridement:{effects['references']['debridement']}"
        self._plan_effects: dict[str, dict[str, float]] = {}  # by wound type, by plan id
        self._caveats: dict[tuple[str, str, str], tuple[dict[str, str], ...]] = {}  # by plan, reference, wound type

    @classmethod
    def of(cls, effects: Mapping[str, Any] | TreatmentEffects) -> TreatmentEffects:
        return effects if isinstance(effects, TreatmentEffects) else cls(effects)

    def shifts(self, plans: Iterable[Plan], reference: Plan, wound_type: str) -> list[float]:
        """Each plan's contrast with `reference`, tau(plan) - tau(reference) (`plan_effect`, remembered)."""
        known = self._plan_effects.setdefault(wound_type, {})
        taus = []
        for plan in (reference, *plans):
            tau = known.get(plan.plan_id)
            if tau is None:
                tau = known[plan.plan_id] = plan_effect(self.effects, plan, wound_type)
            taus.append(tau)
        return [tau - taus[0] for tau in taus[1:]]

    def caveats(self, plan: Plan, reference: Plan, wound_type: str) -> list[dict[str, str]]:
        """Caveats on the effects a plan's contrast with `reference` rests on (`effect_caveat`), for each
        intervention or debridement it adds or drops. Dressing classes are left out: they are shrunk hard towards
        no difference on purpose. Remembered for up to `REMEMBERED_CONTRASTS` contrasts; the answer gets copies."""
        key = (plan.plan_id, reference.plan_id, wound_type)
        caveats = self._caveats.get(key)
        if caveats is None:
            if len(self._caveats) >= REMEMBERED_CONTRASTS:
                self._caveats.clear()
            caveats = self._caveats[key] = tuple(self._contrast_caveats(plan, reference, wound_type))
        return [dict(caveat) for caveat in caveats]

    def _contrast_caveats(self, plan: Plan, reference: Plan, wound_type: str) -> Iterable[dict[str, str]]:
        for component in sorted(set(plan.components).symmetric_difference(reference.components)):
            if not component.startswith("dressing:") and component != self._no_effect:
                caveat = effect_caveat(self.effects, component, wound_type)
                if caveat is not None:
                    yield caveat


def _effect_caveat(caveat_id: str, reason: str) -> dict[str, str]:
    return {"id": caveat_id, "reason": reason, "source": "treatment effects of the model (severity-adjusted)"}


@dataclass(frozen=True)
class _Outcomes:
    """The scored plans' predicted healing and costs as the answer shows them, one column per figure (entry i is
    plan i), from their curves' summaries: survival at the horizon and at 84 days (12 weeks). P(healed by the
    horizon) and the cost per healed wound are worked out only where needed: for the plans described, and for
    every ranked plan when the objective ranks on cost per healed."""

    weeks_open: list[float]  # restricted mean weeks open within the horizon
    p_healed_12w: list[float]
    survival: list[float]  # unrounded, (at the horizon, at 12 weeks) plan by plan: P(healed) is the complement
    weekly_cost_usd: list[float]  # unrounded: stated per plan described
    expected_cost_usd: list[float]
    meets_floor: list[bool]  # P(healed by 12 weeks), as shown, >= the caller's minimum
    quantile_days: list[float | None]  # QUANTILES, plan by plan

    @classmethod
    def of(cls, summaries: CurveSummaries, weekly_costs: Sequence[float], floor: float) -> _Outcomes:
        """From the plans' curves summarised at (the horizon, 12 weeks) and QUANTILES, and their weekly costs."""
        weeks_open = [mean / DAYS_PER_WEEK for mean in summaries.restricted_means]
        p_healed_12w = complements(summaries.survival[1::2])
        # no floor: every plan meets it; a NaN floor, as any comparison with NaN, none
        meets_floor = [True] * len(p_healed_12w) if floor <= 0.0 else [p >= floor for p in p_healed_12w]
        return cls(
            rounded_all(weeks_open, WEEKS), p_healed_12w, summaries.survival, list(weekly_costs),
            rounded_all(map(expected_cost, weekly_costs, weeks_open), USD), meets_floor, summaries.quantile_days,
        )  # fmt: skip

    def ranking(self, objective: str, plan_ids: Sequence[str], n: int) -> list[int]:
        """Plans 0..n-1 (the admissible ones) in rank order: those meeting the P(healed by 12 weeks) floor first,
        then the objective's terms as the answer shows them (plans a clinician sees as equal on one term are ranked
        by the next), then the plan id."""
        keys = list(zip(*(self._term(term, n) for term in _TERMS[objective]), plan_ids, strict=False))
        ranked = sorted(range(n), key=keys.__getitem__)
        if not all(self.meets_floor[:n]):  # those missing the floor last, in order (the sort is stable)
            ranked.sort(key=lambda i: not self.meets_floor[i])
        return ranked

    def _term(self, term: str, n: int) -> Sequence[float]:
        """One ranking term of plans 0..n-1 (or more), the less the better."""
        if term == "weeks_open":
            return self.weeks_open
        if term == "p_healed_12w":
            return [-p for p in self.p_healed_12w]
        if term == "expected_cost":
            return self.expected_cost_usd
        p_healed_by_horizon = complements(self.survival[: 2 * n : 2])
        per_healed = map(cost_per_healed, self.expected_cost_usd[:n], p_healed_by_horizon)
        return [math.inf if cost is None else rounded(cost, USD) for cost in per_healed]  # never healed: last

    def as_dict(self, i: int) -> dict[str, Any]:
        """Plan i's predicted healing (weeks, probabilities) and costs (USD)."""
        p10, median, p90 = self.quantile_days[i * len(QUANTILES) : (i + 1) * len(QUANTILES)]
        p_healed_by_horizon = complement(self.survival[2 * i])
        return {
            "median_weeks": shown_weeks(median),
            "healing_weeks_p10_p90": [shown_weeks(p10), shown_weeks(p90)],
            "restricted_mean_weeks": self.weeks_open[i],
            "p_healed_12w": self.p_healed_12w[i],
            "p_healed_by_horizon": p_healed_by_horizon,
            "weekly_cost_usd": rounded(self.weekly_cost_usd[i], USD),
            "expected_cost_usd": self.expected_cost_usd[i],
            "cost_per_healed_usd": rounded(cost_per_healed(self.expected_cost_usd[i], p_healed_by_horizon), USD),
            "meets_min_p_healed_12w": self.meets_floor[i],
        }


# Each objective's ranking terms, in order.
_TERMS = {
    "fastest": ("weeks_open", "p_healed_12w", "expected_cost"),
    "cheapest": ("expected_cost", "weeks_open", "p_healed_12w"),
    "cost_per_healed": ("cost_per_healed", "weeks_open", "p_healed_12w"),
}


def _versus(option: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Change against the current plan, between the figures shown; effect = healed weeks gained within the horizon.
    Dominance is judged on the figures shown, and the ICER stated only for a trade-off (dearer and faster, or
    cheaper and slower), as is the convention."""
    if current is None:
        return None
    d_cost = rounded(option["expected_cost_usd"] - current["expected_cost_usd"], USD)
    gained = rounded(current["restricted_mean_weeks"] - option["restricted_mean_weeks"], WEEKS)
    dominance = _dominance(d_cost, gained)
    return {
        "restricted_mean_weeks": rounded(option["restricted_mean_weeks"] - current["restricted_mean_weeks"], WEEKS),
        "p_healed_12w": rounded(option["p_healed_12w"] - current["p_healed_12w"], PROBABILITY),
        "expected_cost_usd": d_cost,
        "healed_weeks_gained": gained,
        "icer_usd_per_healed_week": rounded(icer(d_cost, gained), USD) if dominance is None else None,
        "dominance": dominance,
    }


def _dominance(d_cost: float, d_effect: float) -> str | None:
    """ "dominates": no dearer and no slower than the current plan, and cheaper or faster; "dominated": no cheaper
    and no faster, and dearer or slower; None for a trade-off, or the same cost and effect."""
    if d_cost <= 0.0 <= d_effect and (d_cost, d_effect) != (0.0, 0.0):
        return "dominates"
    if d_effect <= 0.0 <= d_cost and (d_cost, d_effect) != (0.0, 0.0):
        return "dominated"
    return None


# --- the options --------------------------------------------------------------------------------------------


def treatment_options(
    row: Mapping[str, Any],
    margins: Margins,
    edges: Sequence[float],
    catalog: CostCatalog,
    rules: RuleTable,
    support: Mapping[str, Any],
    effects: Mapping[str, Any] | TreatmentEffects,
    *,
    objective: str = "fastest",
    min_p_healed_12w: float = 0.0,
    horizon_weeks: int | None = None,
    max_options: int | None = None,
    summarise: Summarise = summarise_curves,
) -> dict[str, Any]:
    """Ranked treatment options for the wound whose latest feature row is `row` (from `history_features`).

    `effects` are the model's treatment effects (`serving_meta()["treatment_effects"]`, or a `TreatmentEffects` of
    them, which remembers what the options read). The scorer is called once, on `row` as recorded (or, when its plan
    is not fully recorded, with the first admissible plan substituted).
    objective: "fastest" (least expected time open within the horizon), "cheapest" (lowest expected cost), or
    "cost_per_healed" (lowest expected cost / P(healed by the horizon)). Plans below `min_p_healed_12w` are
    ranked after those that meet it and never recommended. Contraindicated plans come back under `excluded`.
    Every admissible plan is ranked; `options` describes the first `max_options` of them (None: all).
    `summarise` computes the plans' curves (`model_build.trajectory.Summarise`; the compiled bundle has a twin).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    horizon_weeks = int(edges[-1] // DAYS_PER_WEEK) if horizon_weeks is None else horizon_weeks
    if not WEEKS_12_DAYS <= horizon_weeks * DAYS_PER_WEEK <= edges[-1]:
        raise ValueError("the horizon must cover 12 weeks and lie within the model's interval edges")
    grade = row.get("wagner_grade")
    candidates = candidate_plans(
        row["wound_type"], row["location"], row.get("pi_stage"), None if grade is None else int(grade)
    )
    admissible, excluded = _screened(candidates, rules, row)
    current_plan = plan_from_fields(row)
    to_score = [plan for plan, _ in admissible]
    plan_ids = [plan.plan_id for plan in to_score]
    if current_plan is not None and current_plan.plan_id not in plan_ids:
        to_score.append(current_plan)
        plan_ids.append(current_plan.plan_id)
    anchor = current_plan or (to_score[0] if to_score else candidates[0])
    anchor_row = row if current_plan is not None else {**row, **plan_features(anchor)}
    horizon_days = horizon_weeks * DAYS_PER_WEEK
    wound_type, known_effects = row["wound_type"], TreatmentEffects.of(effects)
    shifts = known_effects.shifts(to_score, anchor, wound_type)
    query = CurveQuery([horizon_days, WEEKS_12_DAYS], QUANTILES, horizon_days)
    summaries = summarise(edges, margins([anchor_row])[0], shifts, query)
    # admissible plans first, in order, then the current plan if it is not among them
    outcomes = _Outcomes.of(summaries, catalog.weekly_totals(to_score), min_p_healed_12w)

    group = comparable_group(row["wound_type"], row.get("pi_stage"))
    counts, min_support = support["counts"].get(group, {}), int(support["min_support"])

    def describe(i: int, caveats: list[dict[str, Any]]) -> dict[str, Any]:
        plan = to_score[i]
        n = int(counts.get(plan.plan_id, 0))
        if n < min_support:
            caveats = [*caveats, _low_support(n, min_support)]
        if not outcomes.meets_floor[i]:
            caveats = [*caveats, _below_floor(min_p_healed_12w)]
        caveats = [*caveats, *known_effects.caveats(plan, anchor, wound_type)]
        return {
            "plan_id": plan.plan_id,
            "plan": plan.as_assessment_fields(),
            **outcomes.as_dict(i),
            "weekly_cost_items_usd": catalog.shown_weekly_items(plan),
            "support": n,
            "low_support": n < min_support,
            "caveats": caveats,
        }

    current = None
    if current_plan is not None:
        i = plan_ids.index(current_plan.plan_id)
        screened = i < len(admissible)  # an admissible candidate: screened with the others
        exclusions, caveats = ((), admissible[i][1]) if screened else rules.screen(current_plan, row)
        current = describe(i, _dicts(caveats))
        current["contraindications"] = _dicts(exclusions)
        current["in_candidate_plans"] = screened or current_plan in candidates
    ranked = outcomes.ranking(objective, plan_ids, len(admissible))
    options = []
    for rank, i in enumerate(ranked[:max_options], start=1):
        option = describe(i, _dicts(admissible[i][1]))
        option["vs_current"] = _versus(option, current)
        option["rank"] = rank
        options.append(option)
    recommended = plan_ids[ranked[0]] if ranked and outcomes.meets_floor[ranked[0]] else None
    return {
        "objective": objective,
        "min_p_healed_12w": min_p_healed_12w,
        "horizon_weeks": horizon_weeks,
        "method": METHOD,
        "comparable_wounds": support.get("comparable", COMPARABLE),
        "catalog_version": catalog.version,
        "rules_version": rules.version,
        "recommended": recommended,
        "ranked_plans": len(ranked),
        "current": current,
        "options": options,
        "excluded": excluded,
    }


def _screened(
    candidates: list[Plan], rules: RuleTable, row: Mapping[str, Any]
) -> tuple[list[tuple[Plan, tuple[Rule, ...]]], list[dict[str, Any]]]:
    """(admissible plans with their caveats, excluded plans with the rules that excluded them)."""
    admissible, excluded = [], []
    for plan, exclusions, caveats in rules.screen_all(candidates, row):
        if exclusions:
            excluded.append({"plan_id": plan.plan_id, "reasons": _dicts(exclusions)})
        else:
            admissible.append((plan, caveats))
    return admissible, excluded


def _dicts(rules: Iterable[Rule]) -> list[dict[str, str]]:
    return [rule.as_dict() for rule in rules]


def _low_support(n: int, min_support: int) -> dict[str, str]:
    return {
        "id": "low_support",
        "reason": f"{n} comparable training wounds received this plan (fewer than {min_support}): "
        "its prediction rests on the model's extrapolation",
        "source": "support table of the training data",
    }


def _below_floor(floor: float) -> dict[str, str]:
    return {
        "id": "below_min_p_healed_12w",
        "reason": f"predicted P(healed by 12 weeks) is below the requested minimum {floor:g}",
        "source": "caller's constraint",
    }
