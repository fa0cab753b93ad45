"""Plan costs: weekly cost from the catalog, expected cost over the expected weeks open, cost per healed wound, ICER."""

from __future__ import annotations

import pytest

from model_build.costs import (
    DEFAULT_CATALOG,
    CostCatalogError,
    cost_per_healed,
    expected_cost,
    icer,
    load_catalog,
    parse_catalog,
    weekly_cost,
)
from model_build.plans import Plan

NPWT_PLAN = Plan("foam", 3, "sharp", offloading=True, npwt=True)


def edited_catalog(tmp_path, old: str, new: str):
    text = DEFAULT_CATALOG.read_text()
    assert old in text
    path = tmp_path / "cost_catalog.csv"
    path.write_text(text.replace(old, new))
    return load_catalog(path)


def test_weekly_cost_adds_dressing_interventions_debridement_and_visits_by_hand():
    # Given the shipped catalog and a foam (3 changes) + sharp debridement + offloading + NPWT plan
    # When its weekly cost is taken
    items = weekly_cost(NPWT_PLAN, load_catalog())
    # Then each item follows its unit: 12×3 per change, 60 per week, 40×7 per day, 110×1 per application,
    # and one 120 nurse visit per dressing change
    assert items == {
        "dressing:foam": 36.0,
        "intervention:offloading": 60.0,
        "intervention:npwt": 280.0,
        "debridement:sharp": 110.0,
        "visit:nurse": 360.0,
    }
    assert sum(items.values()) == 846.0


def test_a_plan_without_dressing_changes_still_pays_the_weekly_assessment_visit():
    items = weekly_cost(Plan("none", 0), load_catalog())
    assert items == {"dressing:none": 0.0, "debridement:none": 0.0, "visit:nurse": 120.0}


def test_expected_cost_is_weekly_cost_over_the_expected_weeks_open():
    # Given 100 USD a week and a wound expected to stay open 1.75 weeks within the horizon
    # Then the expected cost is 100 × 1.75, and per healed wound (P healed 0.875) it is 200
    assert expected_cost(100.0, 1.75) == pytest.approx(175.0)
    assert cost_per_healed(175.0, 0.875) == pytest.approx(200.0)
    assert cost_per_healed(175.0, 0.0) is None


def test_icer_is_extra_cost_per_extra_effect_and_undefined_for_equal_effects():
    assert icer(300.0, 2.0) == 150.0
    assert icer(-300.0, 2.0) == -150.0
    assert icer(300.0, 0.0) is None


def test_a_catalog_change_changes_costs_without_code_change(tmp_path):
    # Given the catalog with foam at 20 instead of 12 USD per change
    before = load_catalog()
    after = edited_catalog(tmp_path, "dressing:foam,per_change,12.00,", "dressing:foam,per_change,20.00,")
    # When the same plan is costed
    # Then the weekly cost rises by 8 × 3 changes and the catalog version changes
    assert sum(weekly_cost(NPWT_PLAN, after).values()) - sum(weekly_cost(NPWT_PLAN, before).values()) == 24.0
    assert after.version != before.version


def test_a_nurse_visit_frequency_in_the_catalog_overrides_one_visit_per_change(tmp_path):
    catalog = edited_catalog(tmp_path, "visit:nurse,per_visit,120.00,", "visit:nurse,per_visit,120.00,2")
    assert weekly_cost(Plan("gauze", 7), catalog)["visit:nurse"] == 240.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dressing:foam,per_change,-1,", "must be >= 0"),
        ("dressing:foam,per_fortnight,1,", "unit must be one of"),
        ("dressing:foam,per_change,abc,", "not a number"),
        ("dressing:foam,per_application,5,", "needs frequency_per_week"),
    ],
)
def test_a_malformed_catalog_row_is_rejected_with_its_line(line, message):
    text = "item,unit,unit_cost_usd,frequency_per_week\nvisit:nurse,per_visit,120,\n" + line + "\n"
    with pytest.raises(CostCatalogError, match=f"line 3: .*{message}"):
        parse_catalog(text)


def test_a_plan_whose_item_is_missing_from_the_catalog_fails_naming_the_item():
    catalog = parse_catalog("item,unit,unit_cost_usd,frequency_per_week\nvisit:nurse,per_visit,120,\n")
    with pytest.raises(CostCatalogError, match="dressing:foam"):
        weekly_cost(Plan("foam", 3), catalog)
