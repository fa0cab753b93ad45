"""Benchmark: treatment options for one wound with the compiled (TL2cgen) scorer vs scikit-learn (the baseline, same
run). The healing model scores one row (the latest visit as recorded); every admissible plan is that curve shifted by
the treatment effects. Both paths use the bundle's native curve arithmetic, as serving does; also timed: the compiled
scorer with the Python reference arithmetic (`trajectory.summarise_curves`), the one-row scoring call alone, and
scoring one row per plan (what the earlier substitution method needed, scoring only). Prints a table and writes
out/bench/options.json.

The wound is the held-in DFU with the most candidate plans (plantar/heel, Wagner ≥ 3: offloading, NPWT, skin
substitute and HBOT on top of dressings × debridement), at its latest visit.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from model_build.compile import compile_model
from model_build.costs import load_catalog
from model_build.features_table import landmarks
from model_build.healing import HealingParams, fit_healing_model
from model_build.plans import Plan
from model_build.recommend import load_rules, plan_features, support_table, treatment_options
from model_build.synth import SynthConfig, generate_cohort, write_cohort
from model_build.trajectory import summarise_curves
from model_build.validate import validate_extract
from woundcare_scoring.healing import CompiledHealingModel

REPEATS = 200
WARMUP = 5
OUT = Path("out/bench/options.json")


def timings(call, repeats: int = REPEATS) -> list[float]:
    for _ in range(WARMUP):
        call()
    out = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        out.append(time.perf_counter() - began)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    config = SynthConfig(n_patients=800, seed=3)
    with tempfile.TemporaryDirectory() as folder:
        write_cohort(generate_cohort(config), folder)
        clean = validate_extract(folder, extract_date=config.extract_date).clean
        rows = landmarks(clean["patients"], clean["wounds"], clean["assessments"])
        model = fit_healing_model(rows, HealingParams(max_iter=100, min_samples_leaf=20))
        survival = model.survival
        bundle = compile_model(
            survival.estimator_, Path(folder) / "bundle", survival.design_columns_, model.serving_meta()
        )
        compiled = CompiledHealingModel.load(bundle)

    X = rows.X.astype(object).where(rows.X.notna(), None)
    dfu = X[(X["wound_type"] == "diabetic_foot_ulcer") & (X["wagner_grade"] >= 3)]
    dfu = dfu[dfu["location"].isin(["foot_plantar", "heel"]) & (dfu["eschar_pct"] == 0)]
    row = dfu.to_dict("records")[-1]
    support = support_table([])
    meta = model.serving_meta()
    catalog, rules, edges, effects = (
        load_catalog(),
        load_rules(),
        meta["interval_edges_days"],
        meta["treatment_effects"],
    )

    def options(scorer, arithmetic=compiled.summarise):
        return treatment_options(
            row, scorer, edges, catalog, rules, support, effects, objective="cost_per_healed", summarise=arithmetic
        )

    # Parity: scikit-learn with the Python reference curves vs what serving runs (compiled scorer, native curves).
    reference, native = options(model.margins, summarise_curves), options(compiled.margins)
    same_ranking = [o["plan_id"] for o in reference["options"]] == [o["plan_id"] for o in native["options"]]
    max_gap = max(
        abs(a["expected_cost_usd"] - b["expected_cost_usd"])
        for a, b in zip(reference["options"], native["options"], strict=True)
    )
    n_plans = len(reference["options"]) + (0 if reference["current"]["in_candidate_plans"] else 1)
    plan_rows = [{**row, **plan_features(Plan.from_id(o["plan_id"]))} for o in reference["options"]]
    calls = {
        "scikit-learn (baseline)": lambda: options(model.margins),
        "compiled TL2cgen": lambda: options(compiled.margins),
        "compiled, Python curve arithmetic": lambda: options(compiled.margins, summarise_curves),
        "compiled: scoring 1 row alone": lambda: compiled.margins([row]),
        "compiled: scoring 1 row per plan": lambda: compiled.margins(plan_rows),
    }
    results = {}
    for name, call in calls.items():
        seconds = timings(call)
        results[name] = {"p50_ms": 1000 * statistics.median(seconds), "p99_ms": 1000 * percentile(seconds, 0.99)}
    speedup = results["scikit-learn (baseline)"]["p50_ms"] / results["compiled TL2cgen"]["p50_ms"]

    print(f"options for one wound: {n_plans} plans from 1 scored row, {len(edges) - 1} intervals, "
          f"{model.params.max_iter} trees, {REPEATS} repeats")  # fmt: skip
    print(f"{'call':<36}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(f"{name:<36}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    print(f"speed-up at p50: {speedup:.1f}x; same ranking: {same_ranking}; max cost gap {max_gap:.2e} USD")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "benchmark": "options",
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
                "plans": n_plans,
                "rows_scored": 1,
                "repeats": REPEATS,
                "results": results,
                "speedup_p50": speedup,
                "same_ranking": same_ranking,
                "max_expected_cost_gap_usd": max_gap,
            },
            indent=2,
        )
    )
    return 0 if same_ranking else 1


if __name__ == "__main__":
    sys.exit(main())
