"""The `woundcare` command line: one subcommand per thing a data/ML engineer or clinical lead does.

Heavy modules are imported inside each command so `woundcare --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import json
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from woundcare_shared.demo import DEFAULT_HOME, DemoConfig

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


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    """Run the training state machine (the real ASL) on this machine; show each state, then the run's summary."""
    import getpass

    from woundcare_shared.embedded import scoped_environ

    quiet = {} if args.verbose else {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    with scoped_environ(quiet):
        from woundcare_shared.pipeline import new_run_id, run_local, run_summary

        run_id = new_run_id()
        print(f"training run {run_id} on {Path(args.extract_dir).resolve()}", flush=True)
        result = run_local(
            args.extract_dir,
            force=args.force,
            extract_date=args.extract_date,
            requested_by=getpass.getuser(),
            run_id=run_id,
            on_event=_StatePrinter(),
            extra_env=quiet,
        )
        print(format_run_summary(run_summary(run_id)))
    return 0 if result.succeeded else 1


class _StatePrinter:
    """Prints each state of a running execution: entry, retries, failures, and a task's duration."""

    def __init__(self) -> None:
        self.entered: dict[int | None, dt.datetime] = {}

    def __call__(self, event) -> None:  # a woundcare_shared.embedded.StateEvent
        if event.kind == "entered":
            self.entered[event.entry_id] = event.timestamp
            print(f"  -> {event.state}", flush=True)
        elif event.is_retry:
            print(f"     retry: attempt {event.attempt}", flush=True)
        elif event.kind == "task_failed":
            print(f"     failed: {event.error}", flush=True)
        elif event.kind == "exited" and event.state_type == "Task":
            seconds = (event.timestamp - self.entered[event.entry_id]).total_seconds()
            print(f"     done in {seconds:.1f} s", flush=True)
        elif event.kind.startswith("execution_"):
            print(f"  == {event.kind.removeprefix('execution_')} {event.error or ''}".rstrip(), flush=True)


def format_run_summary(summary: dict) -> str:
    """The end of a run in a few lines: dataset, validation counts, drift, metrics against gates, model, reports."""
    lines = [f"\nrun {summary['run_id']}: {summary['outcome']} - {summary['reason']}"]
    lines.append(f"{'dataset version':<18}{summary['dataset_version'] or '-'}")
    if v := summary["validation"]:
        lines.append(
            f"{'validation':<18}{v['input_rows']} rows in, {v['clean_rows']} clean, {v['quarantined_rows']} quarantined"
            f" ({v['quarantined_share']:.2%}; limit {v['quarantine_limit']:.2%})"
        )
    if d := summary["drift"]:
        against = d["production_version"] or "no production model"
        drifted = ", ".join(d["drifted_features"]) or "none"
        decision = "retrain (" + ", ".join(d["reasons"]) + ")" if d["retrain"] else "no retrain needed"
        lines.append(f"{'drift':<18}vs {against}: drifted features {drifted}; {decision}")
    if (e := summary["evaluation"]) and (g := summary["gates"]):
        c = e["candidate"]
        lines.append(
            f"{'metrics vs gates':<18}C-index {_num(c['harrell_c'])} (floor {g['min_c_index']}), "
            f"IBS {_num(c['ibs'])} (ceiling {g['max_ibs']}), AUC 12w {_num(c['auc_12w'])} (floor {g['min_auc_12w']})"
        )
        if e["champion"]:
            lines.append(f"{'champion':<18}{e['champion_version']}: C-index {_num(e['champion']['harrell_c'])}")
        for reason in e["reasons"]:
            lines.append(f"{'gate failed':<18}{reason}")
    lines.append(f"{'model version':<18}{summary['model_version'] or '-'}")
    lines += [f"{'report ' + name:<18}{uri}" if len(name) < 11 else f"{name}: {uri}" for name, uri in
              summary["reports"].items()]  # fmt: skip
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cmd_registry_list(args: argparse.Namespace) -> int:
    """List model versions, oldest first, with status, lineage and headline metric."""
    from woundcare_shared.registry import get_registry

    versions = get_registry().list(args.status)
    print(f"{'version':<17}{'status':<12}{'created':<22}{'dataset':<22}{'C-index':>8}  run")
    for v in versions:
        c_index = (v.metrics.get("candidate") or {}).get("harrell_c")
        print(
            f"{v.version:<17}{v.status:<12}{v.created_at[:19]:<22}{v.dataset_version:<22}{_num(c_index):>8}  {v.run_id}"
        )
    return 0


def cmd_registry_show(args: argparse.Namespace) -> int:
    """Print one model version's full record (lineage, parameters, metrics, artifacts, status history)."""
    from dataclasses import asdict

    from woundcare_shared.registry import VersionNotFoundError, get_registry

    try:
        record = get_registry().get(args.version)
    except VersionNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(record), indent=2, sort_keys=True))
    return 0


def cmd_registry_promote(args: argparse.Namespace) -> int:
    """Approve a shadow model (or roll back to an archived one) into production, with who and why in the audit log."""
    from woundcare_shared.promotion import approve, rollback
    from woundcare_shared.registry import RegistryError

    move = approve if args.command_name == "approve" else rollback
    try:
        record = move(args.version, args.by, args.reason)
    except (RegistryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{record.version} is now in production ({args.command_name} by {args.by}: {args.reason})")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the audit log's hash chain; exit 1 and list the problems if it was tampered with."""
    from woundcare_shared.audit import get_audit_log

    problems = get_audit_log().verify()
    for problem in problems:
        print(f"problem: {problem}")
    print("audit log intact" if not problems else f"audit log NOT intact: {len(problems)} problem(s)")
    return 0 if not problems else 1


INFERENCE_APP = Path(__file__).resolve().parents[3] / "functions" / "inference" / "app.py"  # editable install


def local_server(host: str = "127.0.0.1", port: int = 8000):
    """Chalice's local HTTP server over the inference app; the app loads the current models as it is imported."""
    import functools
    import importlib.util
    from urllib.parse import urlsplit

    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, create_local_server

    class PathOnlyLog(ChaliceRequestHandler):
        """Chalice's handler, its access log naming the path alone: a query string is the caller's text. A request
        line too malformed to parse has no path, and its error says only the status (the reason quotes the line)."""

        def parse_request(self) -> bool:
            self.path = ""  # a line that fails to parse has no path, not the last one on this connection
            return super().parse_request()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            path = urlsplit(getattr(self, "path", "")).path or "-"  # none yet when the first line is too long
            self.log_message('"%s %s" %s', self.command or "-", path, str(code))

        def log_error(self, format: str, *args: object) -> None:
            if args and isinstance(args[0], int):
                self.log_message("request refused: %d", args[0])
            else:  # a timeout or a broken connection
                self.log_message("request failed")

    spec = importlib.util.spec_from_file_location("woundcare_inference_app", INFERENCE_APP)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    config = Config.create(app_name=module.app.app_name)
    server = create_local_server(module.app, config, host, port)
    app: Any = OneAtATime(module.app)  # a Chalice app to the local gateway
    server.server.RequestHandlerClass = functools.partial(PathOnlyLog, app_object=app, config=config)
    return server


class OneAtATime:
    """The app as a Lambda instance runs it, one request at a time: the local server's threads would otherwise mix
    the Powertools logger's per-request keys and interleave log lines."""

    def __init__(self, app: Any) -> None:
        self._app, self._lock = app, threading.Lock()

    def __call__(self, event: dict, context: Any) -> dict:
        with self._lock:
            return self._app(event, context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port lies in 0-65535, not {port}")
    return port


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the inference API on this machine with the models the registry names (production, shadow)."""
    import os

    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon on a laptop
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: other machines can reach this API, which has no authentication "
              "locally", file=sys.stderr)  # fmt: skip
    try:
        server = local_server(args.host, args.port)
    except OSError as error:
        print(f"woundcare serve: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 2
    from woundcare_shared.serving import get_server

    host, port = server.server.server_address[:2]  # the port bound, also when 0 asked for a free one
    state = get_server()
    models = ", ".join(f"{status} {version or 'none'}" for status, version in state.models.versions().items())
    print(f"Serving on http://{host}:{port} from {state.settings.home} ({models})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.server.serve_forever()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The platform end to end in a fresh home: synthetic extract, pipeline, approval, served API, predictions."""
    from woundcare_shared.demo import DemoConfig, DemoError, run_demo

    config = DemoConfig(home=args.home, patients=args.patients, seed=args.seed, wounds=args.wounds,
                        verbose=args.verbose)  # fmt: skip
    try:
        summary = run_demo(config)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


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
    validate.add_argument("--extract-date", type=_iso_date, default=None, help="default: today (UTC+14)")
    validate.set_defaults(func=cmd_validate)
    pipeline = sub.add_parser("pipeline", help="run the training pipeline").add_subparsers(
        dest="pipeline_command", required=True, metavar="ACTION"
    )
    run = pipeline.add_parser("run", help="run the training state machine locally on an extract folder")
    run.add_argument("extract_dir", type=Path)
    run.add_argument("--force", action="store_true", help="retrain even without drift or new outcomes")
    run.add_argument("--extract-date", type=_iso_date, default=None, help="default: today (UTC+14)")
    run.add_argument("--verbose", action="store_true", help="show the stages' logs and metrics")
    run.set_defaults(func=cmd_pipeline_run)

    registry = sub.add_parser("registry", help="read the model registry").add_subparsers(
        dest="registry_command", required=True, metavar="ACTION"
    )
    listing = registry.add_parser("list", help="list model versions")
    listing.add_argument("--status", default=None, help="only versions in this status")
    listing.set_defaults(func=cmd_registry_list)
    show = registry.add_parser("show", help="show one model version")
    show.add_argument("version")
    show.set_defaults(func=cmd_registry_show)

    for name, help_text in (("approve", "approve a shadow model into production"),
                            ("rollback", "bring an archived model back into production")):  # fmt: skip
        move = registry.add_parser(name, help=help_text)
        move.add_argument("version")
        move.add_argument("--reason", required=True, help="why (kept in the audit log)")
        move.add_argument("--by", default=getpass.getuser(), help="who decides (default: the local user)")
        move.set_defaults(func=cmd_registry_promote, command_name=name)

    audit = sub.add_parser("audit", help="check the audit log").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    audit.add_parser("verify", help="verify the audit log's hash chain").set_defaults(func=cmd_audit_verify)
    serve = sub.add_parser("serve", help="serve the inference API locally (Chalice local server)")
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1: this machine only")
    serve.add_argument("--port", type=_port, default=8000, help="default 8000; 0 picks a free port")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="synthetic extract -> pipeline -> approved model -> served API -> predictions")
    demo.add_argument("--home", type=Path, default=DEFAULT_HOME,
                      help=f"the demo's own WOUNDCARE_HOME, wiped first (default {DEFAULT_HOME})")  # fmt: skip
    demo.add_argument("--patients", type=_positive_int, default=DemoConfig.patients)
    demo.add_argument("--seed", type=int, default=DemoConfig.seed)
    demo.add_argument("--wounds", type=_positive_int, default=DemoConfig.wounds, help="open wounds to predict for")
    demo.add_argument("--json", type=Path, default=None, help="also write the run's summary as JSON here")
    demo.add_argument("--verbose", action="store_true", help="let the stages and the API log at INFO")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
