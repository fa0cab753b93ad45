"""Benchmark: read + validate an extract, then derive every auto-calculated field; 100k rows is the baseline.

Target (issue 2): validation + derivation of 1M assessment rows in under 60 s on a 2-core machine. The extract is
synthetic CSV (the slower format to read). Prints a table and writes out/bench/validate.json.
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

from model_build.derive_table import derive_assessments
from model_build.synth import SynthConfig, generate_cohort, write_cohort
from model_build.validate import validate_extract

ASSESSMENTS_PER_PATIENT = 11.7  # what the default synthetic cohort produces
SIZES = (100_000, 1_000_000)  # assessment rows; the first is the baseline
TARGET_SECONDS = 60.0
OUT = Path("out/bench/validate.json")


def measure(target_rows: int, folder: Path) -> dict:
    """Seconds to read+validate and to derive, for a synthetic CSV extract of about `target_rows` assessments."""
    config = SynthConfig(n_patients=int(target_rows / ASSESSMENTS_PER_PATIENT), seed=5, dirty_share=0.01)
    write_cohort(generate_cohort(config), folder, fmt="csv")
    began = time.perf_counter()
    result = validate_extract(folder, extract_date=config.extract_date)
    validated = time.perf_counter()
    derive_assessments(result.clean["assessments"], result.clean["wounds"])
    derived = time.perf_counter()
    return {
        "assessment_rows": result.report["tables"]["assessments"]["input_rows"],
        "input_rows": result.report["input_rows"],
        "quarantined_rows": result.report["quarantined_rows"],
        "validate_s": round(validated - began, 2),
        "derive_s": round(derived - validated, 2),
        "total_s": round(derived - began, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(n, Path(tmp) / str(n)) for n in SIZES]
    baseline, largest = results[0], results[-1]
    print(
        f"{'assessments':>12} {'all rows':>10} {'quarantined':>12} {'validate':>9} {'derive':>8} {'total':>8} {'MB':>6}"
    )
    for r in results:
        print(
            f"{r['assessment_rows']:>12,} {r['input_rows']:>10,} {r['quarantined_rows']:>12,} "
            f"{r['validate_s']:>8.1f}s {r['derive_s']:>7.1f}s {r['total_s']:>7.1f}s {r['peak_rss_mb']:>6,}"
        )
    per_row = (largest["total_s"] / largest["assessment_rows"]) / (baseline["total_s"] / baseline["assessment_rows"])
    summary = {
        "target_seconds": TARGET_SECONDS,
        "meets_target": largest["total_s"] < TARGET_SECONDS * largest["assessment_rows"] / 1_000_000,
        "time_per_row_vs_baseline": round(per_row, 2),
    }
    print(
        f"target < {TARGET_SECONDS:.0f} s per 1M assessment rows: {'met' if summary['meets_target'] else 'MISSED'}; "
        f"time per row vs baseline x{summary['time_per_row_vs_baseline']}"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    OUT.write_text(json.dumps({"benchmark": "validate", "machine": machine, "results": results, **summary}, indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
