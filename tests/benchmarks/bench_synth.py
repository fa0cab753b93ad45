"""Benchmark: generate and write a synthetic cohort (CSV and Parquet); 10k patients is the in-run baseline.

Target (issue 2): `synth` of 100k patients in under 60 s on a 2-core machine. Prints a table and writes
out/bench/synth.json.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from model_build.synth import SynthConfig, generate_cohort, write_cohort

SIZES = (10_000, 100_000)  # the first is the baseline
TARGET_SECONDS = 60.0
OUT = Path("out/bench/synth.json")


def measure(n_patients: int) -> dict:
    """Seconds to generate, write as CSV and write as Parquet; rows produced; peak memory so far."""
    started = time.perf_counter()
    cohort = generate_cohort(SynthConfig(n_patients=n_patients, seed=1))
    generated = time.perf_counter()
    timings = {"generate_s": generated - started}
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("csv", "parquet"):
            began = time.perf_counter()
            write_cohort(cohort, Path(folder) / fmt, fmt=fmt)
            timings[f"write_{fmt}_s"] = time.perf_counter() - began
    rows = {name: len(frame) for name, frame in cohort.tables.items()} | {"plan_truth": len(cohort.plan_truth)}
    return {
        "n_patients": n_patients,
        **{k: round(v, 2) for k, v in timings.items()},
        "total_csv_s": round(timings["generate_s"] + timings["write_csv_s"], 2),
        "total_parquet_s": round(timings["generate_s"] + timings["write_parquet_s"], 2),
        "rows": rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    results = [measure(n) for n in SIZES]
    baseline, largest = results[0], results[-1]
    scale = largest["n_patients"] / baseline["n_patients"]
    header = f"{'patients':>9} {'wounds':>8} {'assessments':>11} {'generate':>9} {'csv':>7} {'parquet':>8} "
    header += f"{'total csv':>10} {'total pq':>9} {'peak MB':>8}"
    print(header)
    for r in results:
        print(
            f"{r['n_patients']:>9,} {r['rows']['wounds']:>8,} {r['rows']['assessments']:>11,} "
            f"{r['generate_s']:>8.1f}s {r['write_csv_s']:>6.1f}s {r['write_parquet_s']:>7.1f}s "
            f"{r['total_csv_s']:>9.1f}s {r['total_parquet_s']:>8.1f}s {r['peak_rss_mb']:>8,}"
        )
    summary = {
        "target_seconds": TARGET_SECONDS,
        "meets_target_csv": largest["total_csv_s"] < TARGET_SECONDS,
        "meets_target_parquet": largest["total_parquet_s"] < TARGET_SECONDS,
        # Time per patient relative to the baseline: 1.0 means linear scaling.
        "scaling_csv": round(largest["total_csv_s"] / (baseline["total_csv_s"] * scale), 2),
        "scaling_parquet": round(largest["total_parquet_s"] / (baseline["total_parquet_s"] * scale), 2),
    }
    print(
        f"target < {TARGET_SECONDS:.0f} s at {largest['n_patients']:,} patients: "
        f"csv {'met' if summary['meets_target_csv'] else 'MISSED'}, "
        f"parquet {'met' if summary['meets_target_parquet'] else 'MISSED'}; "
        f"time per patient vs baseline: csv x{summary['scaling_csv']}, parquet x{summary['scaling_parquet']}"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    OUT.write_text(json.dumps({"benchmark": "synth", "machine": machine, "results": results, **summary}, indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
