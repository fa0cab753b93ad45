"""The `woundcare` command line: one subcommand per thing a data/ML engineer or clinical lead does.

Heavy modules are imported inside each command so `woundcare --help` stays instant.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

Command = Callable[[argparse.Namespace], int]


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate an extract folder; write clean tables, quarantine, warnings and report to --out."""
    from model_build.extract import ExtractError
    from model_build.validate import validate_extract

    try:
        result = validate_extract(args.extract_dir, extract_date=args.extract_date)
    except ExtractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result.write(args.out)
    print(format_validation_summary(result.report))
    print(f"\nwritten to {Path(args.out).resolve()} (clean/, quarantine.jsonl, warnings.csv, report.json)")
    return 0


def format_validation_summary(report: dict) -> str:
    """A terminal table of rows in, clean, quarantined and flagged per table, and the top rules."""
    lines = [f"{'table':<12}{'input':>10}{'clean':>10}{'quarantined':>13}{'warned':>9}  top reasons"]
    for name, t in report["tables"].items():
        rules = sorted(t["errors_by_rule"].items(), key=lambda kv: -kv[1])[:3]
        top = ", ".join(f"{rule} {n}" for rule, n in rules) or "-"
        lines.append(
            f"{name:<12}{t['input_rows']:>10}{t['clean_rows']:>10}{t['quarantined_rows']:>13}"
            f"{t['rows_with_warnings']:>9}  {top}"
        )
        if t["unknown_columns"]:
            lines.append(f"{'':<12}ignored unknown columns: {', '.join(t['unknown_columns'])}")
    share = report["quarantined_share"]
    status = "reconciled" if report["reconciled"] else "NOT RECONCILED"
    lines.append(f"quarantined share {share:.2%}; counts {status}; extract date {report['extract_date']}")
    return "\n".join(lines)


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic contract-conformant extract with cost catalog and ground truth."""
    from model_build.synth import SynthConfig, generate_cohort, write_cohort

    config = SynthConfig(n_patients=args.patients, seed=args.seed, dirty_share=args.dirty_share, drift=args.drift)
    cohort = generate_cohort(config)
    write_cohort(cohort, args.out, fmt=args.format)
    counts = {name: len(frame) for name, frame in cohort.tables.items()}
    print(f"wrote synthetic extract to {Path(args.out).resolve()}: {json.dumps(counts)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="woundcare", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser("synth", help="write a synthetic extract with ground truth")
    synth.add_argument("--patients", type=int, default=2000)
    synth.add_argument("--seed", type=int, default=7)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--dirty-share", type=float, default=0.0, help="share of rows to corrupt (0-1)")
    synth.add_argument("--drift", choices=["none", "case_mix", "care_setting", "measurement"], default="none")
    synth.add_argument("--format", choices=["csv", "parquet"], default="csv")
    synth.set_defaults(func=cmd_synth)

    validate = sub.add_parser("validate", help="validate an extract against the contract")
    validate.add_argument("extract_dir", type=Path)
    validate.add_argument("--out", type=Path, required=True)
    validate.add_argument("--extract-date", type=_iso_date, default=None, help="default: today")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
