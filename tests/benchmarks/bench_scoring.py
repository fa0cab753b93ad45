"""Benchmark: healing-model scoring, compiled (TL2cgen library, one batch call) vs scikit-learn; training time.

Target (issue 6): a full /v1/predictions request >= 20x faster warm p50 compiled than with scikit-learn. Measured:
one wound's latest visit (52 interval rows) p50/p99; batch design rows/s; one wound's treatment options (every
candidate plan x 52 intervals) p50/p99; fit_healing_model with default params at 10k and 100k wounds, each fit in
a child process bounded by --train-timeout. Scoring uses the 10k-wound model. The baseline is scikit-learn in the
same run, held to one OpenMP thread as the compiled scorer runs on one core. Writes out/bench/scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

WOUNDS = {10_000: 6_700, 100_000: 67_000}  # target wounds: synthetic patients (about 1.5 wounds each)
N_WOUNDS = 200  # wounds whose latest visit is scored
BATCH_ROWS = 500  # feature rows in the batch throughput run (x 52 intervals)
REPEATS = 3
OUT = Path("out/bench/scoring.json")


def train(n_patients: int, out: Path) -> dict[str, Any]:
    """Synthesise, validate and landmark a cohort, time fit_healing_model; pickle the model and sample rows."""
    from model_build.features_table import landmarks
    from model_build.healing import HealingParams, fit_healing_model
    from model_build.synth import SynthConfig, generate_cohort, write_cohort
    from model_build.validate import validate_extract

    config = SynthConfig(n_patients=n_patients, seed=11)
    with tempfile.TemporaryDirectory() as folder:
        write_cohort(generate_cohort(config), folder, fmt="parquet")
        clean = validate_extract(folder, extract_date=config.extract_date).clean
    marks = landmarks(clean["patients"], clean["wounds"], clean["assessments"])
    began = time.perf_counter()
    model = fit_healing_model(marks, HealingParams())
    fit_s = time.perf_counter() - began
    latest = marks.X.groupby(marks.ids["wound_key"].to_numpy()).tail(1)
    latest = latest[latest["area_cm2"] > 0].sample(N_WOUNDS + BATCH_ROWS, random_state=0)
    rows = [{k: (None if v != v else v) for k, v in r.items()} for r in latest.to_dict("records")]
    out.write_bytes(pickle.dumps((model, rows)))
    return {
        "wounds": len(clean["wounds"]),
        "patients": n_patients,
        "landmark_rows": len(marks.X),
        "fit_s": round(fit_s, 1),
        "iterations": int(model.survival.estimator_.n_iter_),
    }


def bounded_training(n_patients: int, out: Path, timeout: float) -> dict[str, Any]:
    """train() in a child process, killed after `timeout` seconds (the fit of 100k wounds may run long)."""
    command = [sys.executable, __file__, "--train", str(n_patients), str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"patients": n_patients, "timed_out_after_s": timeout}
    return json.loads(done.stdout.strip().splitlines()[-1])


def latency_ms(call: Callable[[Any], Any], inputs: Sequence[Any]) -> dict[str, float]:
    """p50/p99 of one call per input, REPEATS times over (inputs warmed once first)."""
    for item in inputs[:5]:
        call(item)
    times = []
    for _ in range(REPEATS):
        for item in inputs:
            began = time.perf_counter()
            call(item)
            times.append(time.perf_counter() - began)
    times.sort()
    return {"p50_ms": 1e3 * times[len(times) // 2], "p99_ms": 1e3 * times[int(0.99 * (len(times) - 1))]}


def rows_per_second(call: Callable[[], Any], n_rows: int) -> float:
    call()
    began = time.perf_counter()
    call()
    return n_rows / (time.perf_counter() - began)


def scoring(model: Any, rows: list[dict[str, Any]], bundle_root: Path) -> dict[str, Any]:
    """Latency and throughput of both scorers on the same wounds; parity checked on them as well."""
    from threadpoolctl import threadpool_limits

    from model_build.compile import compile_model
    from model_build.costs import load_catalog
    from model_build.recommend import load_rules, treatment_options
    from woundcare_scoring.healing import CompiledHealingModel

    meta = model.serving_meta()
    began = time.perf_counter()
    bundle = compile_model(model.survival.estimator_, bundle_root / "model", model.survival.design_columns_, meta)
    compile_s = time.perf_counter() - began
    compiled = CompiledHealingModel.load(bundle)
    wounds, batch = rows[:N_WOUNDS], rows[N_WOUNDS:]
    n_int = len(compiled.edges) - 1
    catalog, rules = load_catalog(), load_rules()
    plan_rows: list[int] = []

    def options(margins: Callable[[list[dict[str, Any]]], list[list[float]]]) -> Callable[[dict], Any]:
        def counted(scored: list[dict[str, Any]]) -> list[list[float]]:
            plan_rows.append(len(scored))
            return margins(scored)

        return lambda row: treatment_options(
            row, counted, compiled.edges, catalog, rules, meta["support"], meta["treatment_effects"],
            summarise=compiled.summarise,
        )  # fmt: skip

    scorers = {"compiled": compiled.margins, "sklearn": model.margins}
    parity = max(abs(a - b) for ma, mb in zip(*(f(wounds) for f in scorers.values()), strict=True)
                 for a, b in zip(ma, mb, strict=True))  # fmt: skip
    design = [[*compiled.encode(row), start] for row in batch[:40] for start in compiled.edges[:-1]]
    result: dict[str, Any] = {"compile_s": round(compile_s, 1), "max_abs_margin_diff": parity, "scorers": {}}
    with threadpool_limits(limits=1, user_api="openmp"):
        for name, margins in scorers.items():
            result["scorers"][name] = {
                "one_wound": latency_ms(lambda row, m=margins: m([row]), wounds),
                "batch_rows_per_s": rows_per_second(lambda m=margins: m(batch), len(batch) * n_int),
                "options": latency_ms(options(margins), wounds),
            }
    # The scorer before the batch entry point: one native call per design row.
    predict_row = compiled.native.predict_row
    result["compiled_row_by_row_rows_per_s"] = rows_per_second(
        lambda: [predict_row(r, raw_margin=True) for r in design], len(design)
    )
    result["mean_option_rows"] = sum(plan_rows) / len(plan_rows)
    result["mean_option_design_rows"] = result["mean_option_rows"] * n_int
    return result


def report(training: list[dict[str, Any]], scored: dict[str, Any]) -> dict[str, Any]:
    """Print the tables; return the speed-ups (scikit-learn time / compiled time)."""
    c, s = scored["scorers"]["compiled"], scored["scorers"]["sklearn"]
    print(f"{'wounds':>8} {'patients':>9} {'landmarks':>10} {'iterations':>10} {'fit':>9}")
    for t in training:
        fit = f"{t['fit_s']:>8.1f}s" if "fit_s" in t else f">{t['timed_out_after_s']:>7.0f}s"
        print(f"{t.get('wounds', '?'):>8} {t['patients']:>9,} {t.get('landmark_rows', '?'):>10} "
              f"{t.get('iterations', '?'):>10} {fit}")  # fmt: skip
    print(f"\n{'scorer':>9} {'one wound p50':>14} {'p99':>9} {'options p50':>12} {'p99':>9} {'batch rows/s':>13}")
    for name, r in scored["scorers"].items():
        one, opt = r["one_wound"], r["options"]
        print(f"{name:>9} {one['p50_ms']:>12.2f}ms {one['p99_ms']:>7.2f}ms {opt['p50_ms']:>10.2f}ms "
              f"{opt['p99_ms']:>7.2f}ms {r['batch_rows_per_s']:>13,.0f}")  # fmt: skip
    speedup = {
        "one_wound_p50": s["one_wound"]["p50_ms"] / c["one_wound"]["p50_ms"],
        "options_p50": s["options"]["p50_ms"] / c["options"]["p50_ms"],
        "batch_throughput": c["batch_rows_per_s"] / s["batch_rows_per_s"],
        "batch_vs_row_by_row": c["batch_rows_per_s"] / scored["compiled_row_by_row_rows_per_s"],
    }
    print(
        f"compiled row-by-row (one native call per row): {scored['compiled_row_by_row_rows_per_s']:,.0f} rows/s; "
        f"options score {scored['mean_option_design_rows']:,.0f} design rows a wound on average; "
        f"max |margin diff| {scored['max_abs_margin_diff']:.1e}"
    )
    print("speed-up vs scikit-learn: " + ", ".join(f"{k} x{v:.1f}" for k, v in speedup.items()))
    return {k: round(v, 2) for k, v in speedup.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-timeout", type=float, default=1800.0, help="seconds allowed for each fit")
    parser.add_argument("--train", nargs=2, metavar=("N_PATIENTS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:  # child process of bounded_training
        print(json.dumps(train(int(args.train[0]), Path(args.train[1]))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        models = {n: Path(tmp) / f"model_{n}.pkl" for n in WOUNDS}
        training = []
        for n in WOUNDS:
            training.append(bounded_training(WOUNDS[n], models[n], args.train_timeout))
            print(f"trained {n:,}-wound target: {training[-1]}", flush=True)
        if not models[min(WOUNDS)].exists():
            print("the 10k-wound model did not finish training within the bound: no scoring run")
            return 1
        model, rows = pickle.loads(models[min(WOUNDS)].read_bytes())
        scored = scoring(model, rows, Path(tmp))
    speedup = report(training, scored)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    summary = {"benchmark": "scoring", "machine": machine, "train_timeout_s": args.train_timeout}
    OUT.write_text(json.dumps({**summary, "training": training, "scoring": scored, "speedup": speedup}, indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
