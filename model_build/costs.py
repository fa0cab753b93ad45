"""What a treatment plan costs: weekly cost from the versioned cost catalog, expected cost over the expected time
open, cost per healed wound and the incremental cost-effectiveness ratio.
Prices live in the catalog, not in code.

Pure Python (csv + hashlib): the inference Lambda imports it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from model_build.plans import INTERVENTIONS, Plan
from model_build.precision import USD, rounded
from model_build.schema import COST_UNITS

DEFAULT_CATALOG = resources.files("model_build") / "data" / "cost_catalog.csv"
CATALOG_COLUMNS = ("item", "unit", "unit_cost_usd", "frequency_per_week")
DAYS_PER_WEEK = 7.0


class CostCatalogError(ValueError):
    """The cost catalog breaks its contract, or lacks an item a plan needs."""


@dataclass(frozen=True)
class CatalogItem:
    """One catalog row: a priced item, its billing unit and (where the unit needs one) its uses per week."""

    item: str
    unit: str
    unit_cost_usd: float
    frequency_per_week: float | None


@dataclass(frozen=True)
class CostCatalog:
    """Parsed catalog rows by item name; `version` is a content hash, so any edit is a new version."""

    items: Mapping[str, CatalogItem]
    version: str
    _weekly: dict[str, tuple[float, dict[str, float]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def weekly_totals(self, plans: Iterable[Plan]) -> list[float]:
        """Cost in USD of one week of each plan (`weekly_cost` summed)."""
        return [self._weekly_of(plan)[0] for plan in plans]

    def shown_weekly_items(self, plan: Plan) -> dict[str, float]:
        """`weekly_cost` of the plan to the cent, as the answer states it (the caller's own copy)."""
        return dict(self._weekly_of(plan)[1])

    def _weekly_of(self, plan: Plan) -> tuple[float, dict[str, float]]:
        """(total, items to the cent) of a week of the plan, remembered: options cost every plan per request."""
        known = self._weekly.get(plan.plan_id)
        if known is None:
            items = weekly_cost(plan, self)
            shown = {item: rounded(usd, USD) for item, usd in items.items()}
            known = self._weekly[plan.plan_id] = (sum(items.values()), shown)
        return known

    def item(self, name: str) -> CatalogItem:
        try:
            return self.items[name]
        except KeyError:
            raise CostCatalogError(f"cost catalog has no item {name!r}") from None


def parse_catalog(text: str) -> CostCatalog:
    """Parse catalog CSV text (contract columns, header row); errors name the line and column."""
    reader = csv.DictReader(io.StringIO(text))
    missing = set(CATALOG_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise CostCatalogError(f"cost catalog lacks columns {sorted(missing)}")
    items: dict[str, CatalogItem] = {}
    for line, row in enumerate(reader, start=2):
        item = _parse_row(row, line)
        if item.item in items:
            raise CostCatalogError(f"cost catalog line {line}: duplicate item {item.item!r}")
        items[item.item] = item
    return CostCatalog(items, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])


def load_catalog(path: str | Path | None = None) -> CostCatalog:
    """Read a catalog file; by default the one shipped in `model_build/data`."""
    source = DEFAULT_CATALOG if path is None else Path(path)
    return parse_catalog(source.read_text(encoding="utf-8"))


def _parse_row(row: Mapping[str, str | None], line: int) -> CatalogItem:
    name, unit = (row["item"] or "").strip(), (row["unit"] or "").strip()
    if not name:
        raise CostCatalogError(f"cost catalog line {line}: empty item")
    if unit not in COST_UNITS:
        raise CostCatalogError(f"cost catalog line {line}: unit must be one of {COST_UNITS}")
    cost = _number(row["unit_cost_usd"], line, "unit_cost_usd")
    if cost is None:
        raise CostCatalogError(f"cost catalog line {line}: unit_cost_usd is required")
    frequency = _number(row["frequency_per_week"], line, "frequency_per_week")
    if unit == "per_application" and frequency is None:
        raise CostCatalogError(f"cost catalog line {line}: a per_application item needs frequency_per_week")
    return CatalogItem(name, unit, cost, frequency)


def _number(text: str | None, line: int, column: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise CostCatalogError(f"cost catalog line {line}: {column} is not a number") from None
    if not value >= 0:  # also rejects NaN
        raise CostCatalogError(f"cost catalog line {line}: {column} must be >= 0")
    return value


def plan_items(plan: Plan) -> list[str]:
    """The catalog items a plan uses: its dressing, active interventions, debridement and nurse visits."""
    interventions = [f"intervention:{name}" for name in INTERVENTIONS if getattr(plan, name)]
    dressing, debridement = f"dressing:{plan.primary_dressing}", f"debridement:{plan.debridement}"
    return [dressing, *interventions, debridement, "visit:nurse"]


def nurse_visits_per_week(plan: Plan, catalog: CostCatalog) -> float:
    """Nurse visits a week: the catalog's frequency if set, else one per dressing change and at least the
    weekly assessment visit (assumed; set visit:nurse frequency_per_week to override)."""
    frequency = catalog.item("visit:nurse").frequency_per_week
    return frequency if frequency is not None else max(1.0, float(plan.dressing_changes_per_week))


def uses_per_week(item: CatalogItem, plan: Plan, catalog: CostCatalog) -> float:
    """How many billing units of `item` the plan uses in a week."""
    if item.unit == "per_change":
        return float(plan.dressing_changes_per_week)
    if item.unit == "per_visit":
        return nurse_visits_per_week(plan, catalog)
    if item.unit == "per_week":
        return 1.0
    if item.frequency_per_week is not None:  # per_application; per_day when not used every day
        return item.frequency_per_week
    return DAYS_PER_WEEK  # per_day


def weekly_cost(plan: Plan, catalog: CostCatalog) -> dict[str, float]:
    """Cost in USD of one week of the plan, by catalog item (sum the values for the total)."""
    out = {}
    for name in plan_items(plan):
        item = catalog.item(name)
        out[name] = item.unit_cost_usd * uses_per_week(item, plan, catalog)
    return out


def expected_cost(weekly_usd: float, weeks_open: float) -> float:
    """Expected cost over the horizon: the weekly cost × the expected weeks the wound stays open within it (the
    restricted mean time open). Care, and its cost, stops when the wound heals, mid-week included."""
    return weekly_usd * weeks_open


def cost_per_healed(expected_usd: float, p_healed: float) -> float | None:
    """Expected cost divided by P(healed by the horizon); None when no wound is expected to heal."""
    return expected_usd / p_healed if p_healed > 0.0 else None


def icer(delta_cost_usd: float, delta_effect: float) -> float | None:
    """Incremental cost-effectiveness ratio ΔC / ΔE against a comparator; None when the effects are equal."""
    return delta_cost_usd / delta_effect if delta_effect != 0.0 else None
