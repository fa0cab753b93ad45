"""Every answer of `predict_history` reads consistently to a clinician, over many realistic wound histories.

The histories are prefixes (the first 1..n visits) of training wounds of the small synthetic cohort, sent as the
EHR would send them before the wound ended, and scored by the compiled model with its native curve arithmetic (as
serving does): every objective and P(healed by 12 weeks) floor at each prefix, the horizons (12, 26, 52 weeks) taking
turns over a wound's prefixes, every ranked plan described. About 3,100 answers (2,940 open, 74,000 options).
Each test walks all the answers and checks one family of invariants, naming the wound, visits, request and field.
Only what the code promises is asserted (model_build.predict, .recommend, .trajectory, .precision, .progress).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any

import pytest
from woundcare_testing import wound_history

from model_build.costs import load_catalog
from model_build.features import history_features
from model_build.plans import Plan
from model_build.precision import AREA_CM2, PROBABILITY, SCORE, USD, WEEKS, rounded
from model_build.predict import OptionsRequest, Scorer, predict_history
from model_build.recommend import OBJECTIVES, load_rules, plan_effect
from model_build.trajectory import MILESTONE_WEEKS, Curve
from woundcare_scoring.healing import CompiledHealingModel

N_WOUNDS = 60
HORIZONS = (12, 26, 52)
FLOORS = (0.0, 0.3)
PUSH_RANGE = range(18)  # PUSH 3.0 totals 0-17

# The decimals each figure is stated to (model_build/precision.py), by the nearest enclosing key of the answer.
DECIMALS = {
    "median_weeks": WEEKS,
    "median_interval_weeks": WEEKS,
    "healing_weeks_p10_p90": WEEKS,
    "restricted_mean_weeks": WEEKS,
    "healed_weeks_gained": WEEKS,
    "p_healed": PROBABILITY,
    "p_healed_by_week": PROBABILITY,
    "p_healed_12w": PROBABILITY,
    "p_healed_by_horizon": PROBABILITY,
    "min_p_healed_12w": PROBABILITY,
    "area_cm2": AREA_CM2,
    "area_low_cm2": AREA_CM2,
    "area_high_cm2": AREA_CM2,
    "weekly_cost_usd": USD,
    "expected_cost_usd": USD,
    "cost_per_healed_usd": USD,
    "weekly_cost_items_usd": USD,
    "icer_usd_per_healed_week": USD,
    "progress_score": SCORE,
    "progress_change_since_previous": SCORE,
}
# Counts and whole numbers: integers (never floats or bools), None only where a value may be missing.
INTEGERS = {"rank", "ranked_plans", "support", "horizon_weeks", "week", "dressing_changes_per_week"}
INTEGERS_OR_NONE = {
    "push_total",
    "push_change_since_first",
    "push_change_since_previous",
    "days_since_first_assessment",
}
# The outcome figures of one plan as `_Outcomes.as_dict` shows them.
OUTCOME_FIELDS = (
    "median_weeks",
    "healing_weeks_p10_p90",
    "restricted_mean_weeks",
    "p_healed_12w",
    "p_healed_by_horizon",
    "weekly_cost_usd",
    "expected_cost_usd",
    "cost_per_healed_usd",
    "meets_min_p_healed_12w",
)
WEEKS_SLACK = 0.05 + 1e-9  # a week figure shown to 0.1 lies within this of the true value
PROBABILITY_SLACK = 0.001  # a probability shown to 0.001 lies within this of the true value (clamping included)


@dataclass(frozen=True)
class Case:
    """One request and its answer."""

    wound_key: str
    history: tuple[dict, dict, list[dict]]  # (patient, wound, assessments) as sent
    ask: OptionsRequest
    answer: dict[str, Any]

    def __str__(self) -> str:
        ask = self.ask
        return (
            f"wound {self.wound_key} ({len(self.history[2])} visits), objective {ask.objective}, "
            f"horizon {ask.horizon_weeks}, min_p_healed_12w {ask.min_p_healed_12w}"
        )

    @property
    def options(self) -> dict[str, Any]:
        return self.answer["options"]


@pytest.fixture(scope="module")
def scorer(small_bundle) -> Scorer:
    """The compiled model as serving loads it (`woundcare_shared.serving`): native margins and curve arithmetic."""
    compiled = CompiledHealingModel.load(small_bundle)
    return Scorer("compiled", compiled.margins, compiled.meta, compiled.summarise)


@pytest.fixture(scope="module")
def cases(small_cohort, scorer) -> list[Case]:
    """Every prefix of N_WOUNDS wounds' visits (every other wound's sent newest first, as the API accepts them),
    their end cleared, for every objective and floor; the horizon takes turns over a wound's prefixes. Every
    answer describes every ranked plan."""
    _, clean, rows = small_cohort
    keys = sorted(rows.ids["wound_key"].drop_duplicates())
    catalog, rules = load_catalog(), load_rules()
    out = []
    for i, wound_key in enumerate(keys[:: max(1, len(keys) // N_WOUNDS)][:N_WOUNDS]):
        patient, wound, visits = wound_history(clean, wound_key)
        wound = {**wound, "end_date": None, "end_reason": None}
        for n in range(1, len(visits) + 1):
            sent = visits[:n] if i % 2 else visits[n - 1 :: -1]  # every other wound's visits newest first
            history = (patient, wound, sent)
            horizon = HORIZONS[n % len(HORIZONS)]  # each wound's prefixes take turns, to keep the run short
            for objective in OBJECTIVES:
                for floor in FLOORS:
                    ask = OptionsRequest(objective, floor, horizon, max_options=None)  # type: ignore[arg-type]
                    answer = predict_history(*history, scorer, catalog, rules, ask)
                    out.append(Case(wound_key, history, ask, answer))
    return out


def _open(cases: Sequence[Case]) -> Iterator[Case]:
    return (case for case in cases if case.answer["status"] == "open")


# --- helpers ------------------------------------------------------------------------------------------------


def _misstated(value: Any, name: str | None, decimals: int | None) -> tuple[list, str] | None:
    """The path to the first number of a JSON-like answer that is not as stated, and what is wrong with it: a
    float that is not finite, is -0.0 or has more decimals than its figure's (by its nearest enclosing key in
    DECIMALS; none: not a stated figure); a count that is not an integer. A list's items go by the list's name."""
    if isinstance(value, dict):
        items: Iterator[tuple[Any, Any]] = iter(value.items())
    elif isinstance(value, list):
        items = ((i, item) for i, item in enumerate(value))
    elif type(value) is float:
        return None if (problem := _float_problem(value, decimals)) is None else ([], f"{value!r} {problem}")
    elif name in INTEGERS or name in INTEGERS_OR_NONE:
        counts = type(value) is int or (value is None and name in INTEGERS_OR_NONE)
        return None if counts else ([], f"{value!r} is not a count")
    else:
        return None
    for key, item in items:
        named = isinstance(key, str)
        found = _misstated(item, key if named else name, DECIMALS.get(key, decimals) if named else decimals)
        if found is not None:
            found[0].insert(0, key)
            return found
    return None


def _float_problem(value: float, decimals: int | None) -> str | None:
    if not math.isfinite(value):
        return "is not finite"
    if value == 0.0 and math.copysign(1.0, value) < 0.0:
        return "is -0.0"
    if decimals is None:
        return "is a float with no stated precision"
    text = repr(value)  # as JSON writes it
    if "e" in text or len(text.partition(".")[2]) > decimals:
        return f"has more than {decimals} decimals"
    return None


def _where(case: Case, path: Sequence[Any]) -> str:
    return f"{case}: {'.'.join(map(str, path))}"


def _survival(case: Case, scorer: Scorer, days: float, shift: float = 0.0) -> float:
    """The model's exact P(still open) at `days`, on the reference curve arithmetic, for the current plan shifted
    by `shift` (log odds): to tell an exact 0 or 1 from a rounded one."""
    latest = history_features(*case.history)[-1]
    curve = Curve(tuple(scorer.edges), tuple(scorer.margins([latest])[0]))
    return curve.shifted(shift).survival(days)


def _shown_as_certain_only_if_exact(
    p: float, case: Case, scorer: Scorer, days: float, plan: Mapping[str, Any] | None = None
) -> bool:
    """P(healed) by `days` is in (0, 1), or exactly 0 or 1 when the model is certain: its exact survival, for the
    current plan (the prediction's curve) or `plan`, is 1 or 0."""
    if 0.0 < p < 1.0:
        return True
    shift = 0.0 if plan is None else _plan_shift(case, scorer, plan)
    return p in (0.0, 1.0) and _survival(case, scorer, days, shift) == 1.0 - p


def _plan(option: Mapping[str, Any]) -> Plan:
    return Plan(**option["plan"])


def _ranking_key(option: Mapping[str, Any], objective: str) -> tuple:
    """The objective's terms on the figures shown (`recommend._TERMS`), plans meeting the floor first, plan id last."""
    weeks, minus_p12, cost = option["restricted_mean_weeks"], -option["p_healed_12w"], option["expected_cost_usd"]
    per_healed = math.inf if option["cost_per_healed_usd"] is None else option["cost_per_healed_usd"]
    terms = {
        "fastest": (weeks, minus_p12, cost),
        "cheapest": (cost, weeks, minus_p12),
        "cost_per_healed": (per_healed, weeks, minus_p12),
    }[objective]
    return (not option["meets_min_p_healed_12w"], *terms, option["plan_id"])


# --- the answers --------------------------------------------------------------------------------------------


def test_the_sample_covers_many_open_and_some_healed_histories(cases):
    wounds = {case.wound_key for case in cases}
    open_cases = list(_open(cases))
    assert len(wounds) == N_WOUNDS
    assert len(open_cases) > 1000 and len(cases) - len(open_cases) > 0
    options = [o for case in open_cases for o in case.options["options"]]
    assert any(not o["meets_min_p_healed_12w"] for o in options) and any(o["meets_min_p_healed_12w"] for o in options)
    dominance = {o["vs_current"]["dominance"] for o in options if o["vs_current"] is not None}
    assert dominance == {"dominates", "dominated", None}
    assert any(o["vs_current"]["icer_usd_per_healed_week"] is not None for o in options if o["vs_current"])
    assert any(case.options["excluded"] for case in open_cases)
    assert any(case.options["recommended"] is None for case in open_cases)


def test_status_says_whether_there_is_a_prediction(cases):
    for case in cases:
        answer = case.answer
        latest = sorted(case.history[2], key=lambda visit: visit["assessed_on"])[-1]  # stable: same-day ties
        closed = latest["length_cm"] == 0 and latest["width_cm"] == 0
        assert answer["status"] == ("healed" if closed else "open"), f"{case}: status {answer['status']}"
        has = {"prediction": "prediction" in answer, "options": "options" in answer, "progress": "progress" in answer}
        expected = answer["status"] == "open"
        assert has == {"prediction": expected, "options": expected, "progress": True}, f"{case}: parts {has}"
        assert answer["model_version"] == "compiled", f"{case}: model_version"


def test_every_number_is_finite_unsigned_zero_and_stated_to_its_precision(cases):
    for case in cases:
        found = _misstated(case.answer, None, None)
        if found is not None:
            pytest.fail(f"{_where(case, found[0])} {found[1]}")


# --- the prediction -----------------------------------------------------------------------------------------


def test_the_weekly_trajectory_has_one_value_per_week_and_healing_only_accumulates(cases, scorer):
    for case in _open(cases):
        prediction = case.answer["prediction"]
        weeks = min(case.ask.horizon_weeks, scorer.horizon_weeks)
        shown = (prediction["horizon_weeks"], case.options["horizon_weeks"])
        assert shown == (weeks, weeks), f"{case}: horizon_weeks of the prediction and options {shown}, not {weeks}"
        weekly = prediction["weekly"]
        assert weekly["week"] == list(range(weeks + 1)), str(case)
        for column, values in weekly.items():
            assert len(values) == weeks + 1, f"{case}: weekly.{column}"
        p = weekly["p_healed"]
        assert p[0] == 0.0, f"{case}: P(healed) at week 0"
        assert all(a <= b for a, b in pairwise(p)), f"{case}: P(healed) decreases: {p}"
        for w, p_w in enumerate(p[1:], start=1):
            assert _shown_as_certain_only_if_exact(p_w, case, scorer, w * 7.0), (
                f"{case}: weekly.p_healed[{w}] = {p_w} shown as certain (or out of [0, 1])"
            )
        milestones = {str(w): p[w] for w in MILESTONE_WEEKS if w <= weeks}
        assert prediction["p_healed_by_week"] == milestones, f"{case}: p_healed_by_week"


def test_the_area_band_contains_the_line_and_areas_only_shrink(cases):
    for case in _open(cases):
        weekly = case.answer["prediction"]["weekly"]
        low, mid, high = weekly["area_low_cm2"], weekly["area_cm2"], weekly["area_high_cm2"]
        for w, (a, b, c) in enumerate(zip(low, mid, high, strict=True)):
            assert 0.0 <= a <= b <= c, f"{case}: week {w} area low/median/high {a}, {b}, {c}"
        for name in ("area_low_cm2", "area_cm2", "area_high_cm2"):
            series = weekly[name]
            assert all(x >= y for x, y in pairwise(series)), f"{case}: weekly.{name} grows"
        assert low[0] == mid[0] == high[0], f"{case}: the week-0 area differs between the line and its band"


def _check_weeks_against_p(where: str, weeks: float | None, share: float, p_at: Mapping[float, float]) -> None:
    """A quantile of time to healing (weeks, None beyond the horizon) agrees with P(healed) read at given weeks:
    at least `share` healed at weeks clearly after it, at most `share` at weeks clearly before it."""
    for at, p in p_at.items():
        if weeks is not None and at >= weeks + WEEKS_SLACK:
            assert p >= share, f"{where}: {share:.0%} healed by {weeks} weeks, but P(healed by {at}) = {p}"
        if weeks is None or at <= weeks - WEEKS_SLACK:
            assert p <= share, f"{where}: {share:.0%} healed at {weeks} weeks, but P(healed by {at}) = {p}"


def _check_quantiles(where: str, low: float | None, median: float | None, high: float | None) -> None:
    """10th percentile <= median <= 90th percentile; None (beyond the horizon) only after the earlier ones."""
    shown = [low, median, high]
    known = [w for w in shown if w is not None]
    assert shown == [*known, *[None] * (3 - len(known))], f"{where}: {shown}"
    assert known == sorted(known), f"{where}: percentiles out of order {shown}"


def test_the_median_and_its_interval_agree_with_the_weekly_p_healed(cases):
    for case in _open(cases):
        prediction = case.answer["prediction"]
        (low, high), median = prediction["median_interval_weeks"], prediction["median_weeks"]
        _check_quantiles(f"{case}: median_weeks within median_interval_weeks", low, median, high)
        p_at = dict(enumerate(prediction["weekly"]["p_healed"]))
        for share, weeks in zip((0.1, 0.5, 0.9), (low, median, high), strict=True):
            _check_weeks_against_p(f"{case}: prediction", weeks, share, p_at)


# --- the options --------------------------------------------------------------------------------------------


def test_every_ranked_plan_is_described_in_rank_order(cases):
    for case in _open(cases):
        options, objective = case.options, case.ask.objective
        described = options["options"]
        echoed = (options["objective"], options["min_p_healed_12w"])
        assert echoed == (objective, case.ask.min_p_healed_12w), f"{case}: the request echoed as {echoed}"
        assert options["ranked_plans"] == len(described) > 0, f"{case}: max_options=None describes every plan"
        assert [o["rank"] for o in described] == list(range(1, len(described) + 1)), f"{case}: ranks"
        ids = [o["plan_id"] for o in described]
        assert len(set(ids)) == len(ids), f"{case}: a plan is ranked twice"
        excluded = {e["plan_id"] for e in options["excluded"]}
        assert not excluded & set(ids), f"{case}: excluded plans among the options: {excluded & set(ids)}"
        assert all(e["reasons"] for e in options["excluded"]), f"{case}: a plan excluded for no reason"
        meets = [o["meets_min_p_healed_12w"] for o in described]
        assert meets == sorted(meets, reverse=True), f"{case}: a plan below the floor ranked above one meeting it"
        keys = [_ranking_key(o, objective) for o in described]
        for rank, (a, b) in enumerate(pairwise(keys), start=1):
            assert a < b, f"{case}: ranks {rank} and {rank + 1} out of {objective} order on the figures shown: {a} {b}"


def test_the_recommendation_is_the_first_plan_only_if_it_meets_the_floor(cases):
    for case in _open(cases):
        first = case.options["options"][0]
        expected = first["plan_id"] if first["meets_min_p_healed_12w"] else None
        assert case.options["recommended"] == expected, f"{case}: recommended"


def _described(case: Case) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every plan the options describe (the current plan too), with its name in messages."""
    current = case.options["current"]
    if current is not None:
        yield "current", current
    for option in case.options["options"]:
        yield f"option {option['rank']} ({option['plan_id']})", option


def test_each_plan_s_floor_support_and_caveats_are_as_shown(cases, scorer):
    min_support = int(scorer.meta["support"]["min_support"])
    for case in _open(cases):
        floor = case.ask.min_p_healed_12w
        for name, plan in _described(case):
            where = f"{case}: {name}"
            meets = floor <= 0.0 or plan["p_healed_12w"] >= floor
            assert plan["meets_min_p_healed_12w"] == meets, f"{where}: meets_min_p_healed_12w"
            caveats = [c["id"] for c in plan["caveats"]]
            assert ("below_min_p_healed_12w" in caveats) == (not meets), f"{where}: below-floor caveat {caveats}"
            assert plan["low_support"] == (plan["support"] < min_support), f"{where}: low_support"
            assert ("low_support" in caveats) == plan["low_support"], f"{where}: low-support caveat {caveats}"
            assert _plan(plan).plan_id == plan["plan_id"], f"{where}: plan_id is not the plan's"


def test_each_plan_s_figures_are_consistent(cases, scorer):
    for case in _open(cases):
        horizon = case.options["horizon_weeks"]
        for name, plan in _described(case):
            where = f"{case}: {name}"
            p12, p_horizon = plan["p_healed_12w"], plan["p_healed_by_horizon"]
            weeks_open = plan["restricted_mean_weeks"]
            for field, p, days in (("p_healed_12w", p12, 84.0), ("p_healed_by_horizon", p_horizon, horizon * 7.0)):
                assert _shown_as_certain_only_if_exact(p, case, scorer, days, plan), (
                    f"{where}: {field} = {p} shown as certain (or out of [0, 1])"
                )
            assert p12 <= p_horizon, f"{where}: P(healed by 12 weeks) {p12} > by the horizon {p_horizon}"
            # Weeks open within the horizon: at most the horizon, at least the weeks it stays open for sure.
            assert 0.0 <= weeks_open <= horizon, f"{where}: restricted_mean_weeks {weeks_open}"
            for weeks, p in ((horizon, p_horizon), (12, p12)):  # open all along until then, if open then
                least = weeks * (1.0 - p - PROBABILITY_SLACK) - WEEKS_SLACK
                assert weeks_open >= least, f"{where}: {weeks_open} weeks open, but P(open at week {weeks}) ~ {1 - p}"
            p10, p90 = plan["healing_weeks_p10_p90"]
            _check_quantiles(f"{where}: healing_weeks_p10_p90 and median_weeks", p10, plan["median_weeks"], p90)
            for share, weeks in zip((0.1, 0.5, 0.9), (p10, plan["median_weeks"], p90), strict=True):
                _check_weeks_against_p(where, weeks, share, {12: p12, horizon: p_horizon})


def _plan_shift(case: Case, scorer: Scorer, plan: Mapping[str, Any]) -> float:
    """The plan's log-odds shift from the current plan, the treatment-effect contrast the options apply."""
    current = case.options["current"]
    assert current is not None, f"{case}: cannot check an exact probability without the current plan"
    effects, wound_type = scorer.meta["treatment_effects"], case.history[1]["wound_type"]
    return plan_effect(effects, _plan(plan), wound_type) - plan_effect(effects, _plan(current), wound_type)


def test_each_plan_s_costs_add_up(cases):
    for case in _open(cases):
        for name, plan in _described(case):
            where = f"{case}: {name}"
            items, weekly = plan["weekly_cost_items_usd"], plan["weekly_cost_usd"]
            assert abs(sum(items.values()) - weekly) <= 0.01 * len(items) + 1e-9, f"{where}: {items} vs {weekly}"
            expected, weeks_open = plan["expected_cost_usd"], plan["restricted_mean_weeks"]
            slack = (weekly + 0.005) * WEEKS_SLACK + weeks_open * 0.005 + 0.005 + 1e-9 * expected
            assert abs(expected - weekly * weeks_open) <= slack, f"{where}: expected cost {expected}"
            per_healed, p_horizon = plan["cost_per_healed_usd"], plan["p_healed_by_horizon"]
            if p_horizon == 0.0:
                assert per_healed is None, f"{where}: a cost per healed wound when none heals"
            else:
                assert per_healed == rounded(expected / p_horizon, USD), f"{where}: cost_per_healed_usd {per_healed}"


def test_the_current_plan_s_figures_are_the_prediction_s(cases):
    for case in _open(cases):
        current, prediction = case.options["current"], case.answer["prediction"]
        if current is None:
            continue
        p, horizon = prediction["weekly"]["p_healed"], prediction["horizon_weeks"]
        shown = [current[f] for f in ("median_weeks", "healing_weeks_p10_p90", "p_healed_12w", "p_healed_by_horizon")]
        expected = [prediction["median_weeks"], prediction["median_interval_weeks"], p[12], p[horizon]]
        assert shown == expected, f"{case}: the current plan's prognosis is not the prediction's"
        same = [o for o in case.options["options"] if o["plan_id"] == current["plan_id"]]
        for option in same:
            differ = [f for f in OUTCOME_FIELDS if option[f] != current[f]]
            assert not differ, f"{case}: option {option['rank']} is the current plan, but its {differ} differ"
            assert not current["contraindications"], f"{case}: a contraindicated current plan is among the options"
        if current["contraindications"] and current["in_candidate_plans"]:
            excluded = {e["plan_id"] for e in case.options["excluded"]}
            assert current["plan_id"] in excluded, f"{case}: the contraindicated current plan is not excluded"


def _dominance(d_cost: float, gained: float) -> str | None:
    """No dearer and no slower, and better on one: dominates; no cheaper and no faster, and worse on one: dominated."""
    if (d_cost, gained) == (0.0, 0.0):
        return None
    if d_cost <= 0.0 and gained >= 0.0:
        return "dominates"
    if d_cost >= 0.0 and gained <= 0.0:
        return "dominated"
    return None


def test_each_option_s_change_against_the_current_plan_is_the_shown_difference(cases):
    for case in _open(cases):
        current = case.options["current"]
        for option in case.options["options"]:
            where = f"{case}: option {option['rank']} ({option['plan_id']}) vs_current"
            versus = option["vs_current"]
            if current is None:
                assert versus is None, where
                continue
            assert versus is not None, f"{where}: missing, with a current plan"
            d_cost = rounded(option["expected_cost_usd"] - current["expected_cost_usd"], USD)
            d_weeks = rounded(option["restricted_mean_weeks"] - current["restricted_mean_weeks"], WEEKS)
            d_p12 = rounded(option["p_healed_12w"] - current["p_healed_12w"], PROBABILITY)
            gained = versus["healed_weeks_gained"]
            differences = {"expected_cost_usd": d_cost, "restricted_mean_weeks": d_weeks, "p_healed_12w": d_p12}
            for field, difference in differences.items():
                assert versus[field] == difference, f"{where}.{field} {versus[field]}, shown difference {difference}"
            assert gained == -d_weeks, f"{where}: healed_weeks_gained {gained} is not -(Δweeks {d_weeks})"
            assert versus["dominance"] == _dominance(d_cost, gained), f"{where}: dominance ({d_cost}, {gained})"
            icer = versus["icer_usd_per_healed_week"]
            if d_cost * gained > 0.0:  # a trade-off: dearer and faster, or cheaper and slower
                assert icer == rounded(d_cost / gained, USD), f"{where}: icer {icer} for ({d_cost}, {gained})"
            else:
                assert icer is None, f"{where}: an ICER {icer} without a trade-off ({d_cost}, {gained})"
            if option["plan_id"] == current["plan_id"]:
                assert (d_cost, gained) == (0.0, 0.0), f"{where}: the current plan differs from itself"


# --- progress -----------------------------------------------------------------------------------------------


def test_progress_follows_the_visits_in_date_order(cases):
    for case in cases:
        progress, visits = case.answer["progress"], case.history[2]
        where = f"{case}: progress"
        shown = progress["visits"]
        assert len(shown) == len(visits), f"{where}: {len(shown)} visits shown of {len(visits)}"
        dates = sorted(date.fromisoformat(v["assessed_on"]) for v in visits)
        days = [v["days_since_first_assessment"] for v in shown]
        assert days == [(d - dates[0]).days for d in dates], f"{where}: visits not in date order {days}"
        push = [v["push_total"] for v in shown]
        assert all(p is None or p in PUSH_RANGE for p in push), f"{where}: push totals {push}"
        assert shown[0]["progress_score"] == 0.0, f"{where}: the first visit's score is a change from itself"
        last, previous = shown[-1], shown[-2] if len(shown) > 1 else None
        latest = (progress["push_total"], progress["progress_score"])
        assert latest == (last["push_total"], last["progress_score"]), f"{where}: latest PUSH and score {latest}"
        for field, before in (("push_change_since_first", shown[0]), ("push_change_since_previous", previous)):
            assert progress[field] == _change(last, before, "push_total"), f"{where}: {field}"
        change = progress["progress_change_since_previous"]
        assert change == _change(last, previous, "progress_score"), f"{where}: progress_change_since_previous"


def _change(now: Mapping[str, Any], before: Mapping[str, Any] | None, key: str) -> int | float | None:
    if before is None or now[key] is None or before[key] is None:
        return None
    difference = now[key] - before[key]
    return difference if isinstance(difference, int) else rounded(difference, SCORE)
