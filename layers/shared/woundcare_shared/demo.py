"""`woundcare demo`: the platform end to end on this machine, in a fresh home.

Synthetic extract -> the training state machine (the real ASL, embedded runtime) -> approval into production ->
the inference API on a loopback port -> real HTTP calls. Each step reuses the code its own command runs
(`synth`, `pipeline run`, `registry approve`, `serve`); nothing here trains, scores or validates by itself.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import datetime as dt

    from model_build.synth import SynthConfig

DEFAULT_HOME = Path(".woundcare") / "demo"
APPROVAL_REASON = "demo: approved for local demonstration"
HOME_MARKER = ".woundcare-demo"  # only a folder holding this (made by an earlier demo) or an empty one is wiped
STEPS = 6
# The demo's services are the files under its home, whatever this shell points woundcare at.
LOCAL_SERVICES = {f"WOUNDCARE_{name}": "" for name in ("STORE_URL", "REGISTRY_URL", "AUDIT_URL", "RUNS_URL")}
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
TOP_OPTIONS = 3


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which step and why."""


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs on: where its home is, the cohort's size and seed, how many wounds to predict for."""

    home: Path = DEFAULT_HOME
    patients: int = 2000
    seed: int = 0
    wounds: int = 3
    verbose: bool = False


def run_demo(config: DemoConfig, out: TextIO | None = None) -> dict[str, Any]:
    """Run the six steps, one line each with its timing; return a JSON-able summary, or raise DemoError."""
    from woundcare_shared.embedded import scoped_environ

    # Stages run on threads; libgomp must wait passively there (see pipeline.run_local), set before scikit-learn loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    home = config.home.expanduser().resolve()
    steps = _Steps(out or sys.stdout)
    started = time.perf_counter()
    steps.say("woundcare demo: synthetic extract -> training pipeline -> approved model -> served API -> predictions")
    with steps.run("fresh demo home") as line:
        fresh_home(home)
        line.append(str(home))
    quiet = {} if config.verbose else QUIET
    with scoped_environ({"WOUNDCARE_HOME": str(home), **LOCAL_SERVICES, **quiet}):
        _forget_services()
        try:
            summary = _run_steps(config, home, steps, quiet)
        finally:
            _forget_services()
    summary["total_seconds"] = round(time.perf_counter() - started, 1)
    summary["step_seconds"] = steps.seconds
    steps.say(f"done in {summary['total_seconds']:.1f} s; the demo's state stays in {home}:")
    steps.say(f"  WOUNDCARE_HOME={home} woundcare registry list   (or: audit verify, serve)")
    steps.say(f"  model card: {summary['pipeline']['model_card']}")
    return summary


def _run_steps(config: DemoConfig, home: Path, steps: _Steps, quiet: Mapping[str, str]) -> dict[str, Any]:
    from model_build.synth import SynthConfig

    cohort = SynthConfig(n_patients=config.patients, seed=config.seed)
    extract = home / "extract"
    with steps.run("synthetic extract") as line:
        counts = synthesize(cohort, extract)
        line.append(", ".join(f"{n} {name}" for name, n in counts.items()) + f" (seed {config.seed})")
    with steps.run("training pipeline") as line:
        pipeline = train(extract, cohort.extract_date, home / "pipeline.log", quiet)
        line.append(f"{pipeline['outcome']}: model {pipeline['model_version']} registered as shadow")
    steps.details(format_pipeline(pipeline))
    actor = getpass.getuser()
    with steps.run("approve into production") as line:
        approve_model(pipeline["model_version"], actor)
        line.append(f'{pipeline["model_version"]} by {actor}: "{APPROVAL_REASON}"')
    with contextlib.ExitStack() as running:
        with steps.run("serve the inference API") as line:
            base_url = running.enter_context(served_api())
            line.append(f"{base_url} (Chalice local server, as `woundcare serve`)")
        with steps.run("HTTP calls") as line:
            # The server's access log (stderr, one line per request) goes to a file, not between the demo's lines.
            with (home / "api.log").open("w", encoding="utf-8") as log, contextlib.redirect_stderr(log):
                calls = call_api(base_url, pipeline["run_id"], config.wounds)
            n = len(calls["predictions"])
            line.append(f"GET /v1/model, POST /v1/assessments/derive, {n} x POST /v1/predictions")
    steps.details(format_calls(calls))
    return {"home": str(home), "cohort": {"patients": config.patients, "seed": config.seed, **counts},
            "pipeline": pipeline, "approved_by": actor, "approval_reason": APPROVAL_REASON, "api": calls}  # fmt: skip


class _Steps:
    """Numbers the steps and prints each as one line: its title as it starts, then its result and time."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.number = out, 0
        self.seconds: dict[str, float] = {}

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def details(self, lines: list[str]) -> None:
        for text in lines:
            self.say(f"      {text}" if text else "")

    @contextlib.contextmanager
    def run(self, title: str) -> Iterator[list[str]]:
        self.number += 1
        where = f"step {self.number}/{STEPS} ({title})"
        self.out.write(f"[{self.number}/{STEPS}] {title:<25}")
        self.out.flush()
        line: list[str] = []
        begun = time.perf_counter()
        try:
            yield line
        except Exception as error:
            self.say("FAILED")
            cause = str(error) if isinstance(error, DemoError) else f"{type(error).__name__}: {error}"
            raise DemoError(f"{where} failed: {cause}") from error
        seconds = time.perf_counter() - begun
        self.seconds[title] = round(seconds, 1)
        self.say(f"{' '.join(line)}  ({seconds:.1f} s)")


# --- the steps ----------------------------------------------------------------------------------------------


def fresh_home(home: Path) -> None:
    """Empty `home` for a clean run: only a folder an earlier demo made (or an empty one) is ever wiped."""
    if home.exists():
        if not home.is_dir() or (any(home.iterdir()) and not (home / HOME_MARKER).is_file()):
            raise DemoError(f"{home} exists and was not made by the demo; choose another --home or remove it")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / HOME_MARKER).write_text("made by `woundcare demo`; the next demo run wipes this folder\n")


def synthesize(cohort: SynthConfig, extract: Path) -> dict[str, int]:
    """The synthetic extract `woundcare synth` writes; rows per table."""
    from model_build.synth import generate_cohort, write_cohort

    generated = generate_cohort(cohort)
    write_cohort(generated, extract)
    return {name: len(frame) for name, frame in generated.tables.items()}


def train(extract: Path, extract_date: dt.date, log: Path, quiet: Mapping[str, str]) -> dict[str, Any]:
    """`woundcare pipeline run` on the extract; the run's summary, or DemoError unless a model was registered.

    What the stages print, natively too (the model compiler's notes), goes to `log`, not the terminal.
    """
    from woundcare_shared.pipeline import new_run_id, run_local, run_summary, services

    run_id = new_run_id()
    with output_to(log):
        result = run_local(extract, extract_date=extract_date, requested_by=getpass.getuser(), run_id=run_id,
                           extra_env=quiet)  # fmt: skip
    summary = run_summary(run_id)
    if not result.succeeded or not summary["model_version"]:
        end = result.error or summary["outcome"]
        raise DemoError(f"the training pipeline ended {end}: {result.cause or summary['reason']} (run {run_id})")
    svc = services()
    card = svc.store.uri(svc.registry.get(summary["model_version"]).artifacts["model_card"])
    return {
        **{k: summary[k] for k in ("run_id", "outcome", "reason", "dataset_version", "model_version")},
        "validation": summary["validation"],
        "metrics": summary["evaluation"]["candidate"],
        "gates": summary["gates"],
        "stage_seconds": {s.name: round(s.duration_s, 1) for s in result.timeline if s.state_type == "Task"},
        "model_card": card,
        "log": str(log),
    }


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr to `log` for a block, at the file-descriptor level: native libraries
    (the tl2cgen compiler) write to the descriptors directly, past sys.stdout."""
    streams = (sys.stdout, sys.stderr)
    for stream in streams:
        stream.flush()
    saved = [os.dup(stream.fileno()) for stream in streams]
    try:
        with log.open("a", encoding="utf-8") as sink:
            for stream in streams:
                os.dup2(sink.fileno(), stream.fileno())
            try:
                yield
            finally:
                for stream in streams:
                    stream.flush()
    finally:
        for stream, fd in zip(streams, saved, strict=True):
            os.dup2(fd, stream.fileno())
            os.close(fd)


def approve_model(version: str, actor: str) -> None:
    """`woundcare registry approve`: shadow -> production on a named person's authority, audited."""
    from woundcare_shared.promotion import approve

    approve(version, actor, APPROVAL_REASON)


@contextlib.contextmanager
def served_api() -> Iterator[str]:
    """`woundcare serve`'s server on a free loopback port, in a background thread; its base URL."""
    from woundcare_shared import serving as api
    from woundcare_shared.cli import local_server

    api.get_server.cache_clear()
    server = local_server("127.0.0.1", 0)
    host, port = server.server.server_address[:2]
    thread = threading.Thread(target=server.server.serve_forever, name="woundcare-demo-api", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join()
        api.get_server.cache_clear()


def call_api(base_url: str, run_id: str, wounds: int) -> dict[str, Any]:
    """GET /v1/model, derive the last visit of one wound, predict for `wounds` open wounds of the clean tables."""
    from model_build.histories import wound_history
    from woundcare_shared.pipeline import read_clean, services

    clean = read_clean(services().store, run_id)  # the tables the run validated
    keys = open_wounds(clean, wounds)
    if not keys:
        raise DemoError("the cohort has no open wound with two or more visits to predict for")
    histories = {key: dict(zip(("patient", "wound", "assessments"), wound_history(clean, key), strict=True))
                 for key in keys}  # fmt: skip
    model = _http(base_url, "GET", "/v1/model")
    derive_for = keys[0]
    derived = _http(base_url, "POST", "/v1/assessments/derive", histories[derive_for])
    if not derived["ok"]:
        raise DemoError(f"derive refused wound {derive_for}: {[e['code'] for e in derived['errors']]}")
    predictions = []
    for key, history in histories.items():
        answer = _http(base_url, "POST", "/v1/predictions", history)
        if answer["clinical_output"] is None:
            raise DemoError(f"prediction withheld for wound {key}: {answer['withheld']['reason']}")
        predictions.append(prediction_view(history, answer))
    return {
        "base_url": base_url,
        "model": {status: (model[status] or {}).get("version") for status in ("production", "shadow")},
        "derive": {
            "wound_key": derive_for,
            "visits": len(histories[derive_for]["assessments"]),
            "warnings": len(derived["warnings"]),
            **derived["derived"],
        },
        "predictions": predictions,
    }


def open_wounds(clean: Mapping[str, Any], count: int) -> list[str]:
    """Up to `count` wounds still open at the extract date, with two or more visits and a non-zero last area,
    of different wound types where the cohort allows (first by wound key)."""
    wounds, visits = clean["wounds"], clean["assessments"].sort_values(["wound_key", "assessed_on"])
    last = visits.groupby("wound_key").last()
    measured = last.index[(last["length_cm"] > 0) & (last["width_cm"] > 0)]
    revisited = visits["wound_key"].value_counts().loc[lambda n: n >= 2].index
    still_open = wounds["end_reason"].isna() | (wounds["end_reason"] == "open")
    candidates = wounds[still_open & wounds["wound_key"].isin(measured) & wounds["wound_key"].isin(revisited)]
    candidates = candidates.sort_values("wound_key")
    varied = candidates.drop_duplicates("wound_type")
    chosen = list(varied["wound_key"][:count])
    chosen += [k for k in candidates["wound_key"] if k not in chosen][: count - len(chosen)]
    return chosen


def _http(base_url: str, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One real HTTP call to the served API; its JSON body, or DemoError with the status and the API's code."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    code = None
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as error:
        with contextlib.suppress(ValueError):
            code = json.loads(error.read()).get("code")
        raise DemoError(f"{method} {path} answered {error.code} ({code or 'no error code'})") from None


def prediction_view(history: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, Any]:
    """What the demo shows of one prediction: no patient field, only the synthetic wound id."""
    output = answer["clinical_output"]
    prediction, options = output["prediction"], output["options"]
    return {
        "wound_key": answer["wound_key"],
        "wound_type": history["wound"]["wound_type"],
        "visits": len(history["assessments"]),
        "area_cm2": answer["derived"][-1]["area_cm2"],
        "model_version": answer["model"]["version"],
        "median_weeks": prediction["median_weeks"],
        "median_interval_weeks": prediction["median_interval_weeks"],
        "horizon_weeks": prediction["horizon_weeks"],
        "p_healed_12w": prediction["p_healed_by_week"].get("12"),
        "progress_score": output["progress"]["progress_score"],
        "objective": options["objective"],
        "options": [
            {k: o[k] for k in ("rank", "plan_id", "plan", "restricted_mean_weeks", "p_healed_12w", "expected_cost_usd")}
            for o in options["options"][:TOP_OPTIONS]
        ],
    }


# --- terminal text ------------------------------------------------------------------------------------------


def format_pipeline(pipeline: Mapping[str, Any]) -> list[str]:
    """The run's lines under its step: run id, dataset, validation, stage times, metrics against the gates."""
    v, m, g = pipeline["validation"], pipeline["metrics"], pipeline["gates"]
    stages = ", ".join(f"{name} {seconds:.1f}" for name, seconds in pipeline["stage_seconds"].items())
    return [
        f"run {pipeline['run_id']}, dataset version {pipeline['dataset_version']}",
        f"validation: {v['input_rows']} rows, {v['clean_rows']} clean, {v['quarantined_rows']} quarantined",
        f"stage seconds: {stages}",
        f"gates: C-index {_num(m['harrell_c'])} (floor {g['min_c_index']}), IBS {_num(m['ibs'])} (ceiling "
        f"{g['max_ibs']}), AUC at 12 weeks {_num(m['auc_12w'])} (floor {g['min_auc_12w']})",
    ]


def format_calls(calls: Mapping[str, Any]) -> list[str]:
    """The API's answers as a clinician would read them: derived fields, then each wound's prediction."""
    d = calls["derive"]
    lines = [
        f"GET /v1/model: production {calls['model']['production']}, shadow {calls['model']['shadow'] or 'none'}",
        f"derive, wound {d['wound_key']} (last of {d['visits']} visits): area {_num(d['area_cm2'], 1)} cm², "
        f"volume {_num(d['volume_cm3'], 1)} cm³, PUSH {d['push_total']}, area reduction since the first visit "
        f"{_num(d['percent_area_reduction'], 0)}%, {d['warnings']} warning(s)",
    ]
    for p in calls["predictions"]:
        low, high = p["median_interval_weeks"]
        horizon = p["horizon_weeks"]
        lines += [
            "",
            f"wound {p['wound_key']}: {p['wound_type'].replace('_', ' ')}, {_num(p['area_cm2'], 1)} cm² now "
            f"({p['visits']} visits)",
            f"  healing: median {_weeks(p['median_weeks'], horizon)} weeks (10-90%: {_weeks(low, horizon)}-"
            f"{_weeks(high, horizon)}), P(healed by 12 weeks) {_pct(p['p_healed_12w'])}, "
            f"progress score {_num(p['progress_score'], 2)}",
            f"  top {len(p['options'])} treatment options ({p['objective']} first): expected weeks open within "
            f"{horizon}, P(healed by 12 weeks), expected cost, plan",
        ]
        for o in p["options"]:
            cost = f"${o['expected_cost_usd']:,.0f}"
            weeks, healed = _num(o["restricted_mean_weeks"], 1), _pct(o["p_healed_12w"])
            lines.append(f"    {o['rank']}. {weeks:>5} weeks {healed:>5} {cost:>8}  {plan_text(o['plan'])}")
    return lines


def plan_text(plan: Mapping[str, Any]) -> str:
    """A treatment plan in words, e.g. `foam dressing 3x/week, sharp debridement, offloading`."""
    from model_build.plans import INTERVENTIONS

    words = [f"{plan['primary_dressing'].replace('_', ' ')} dressing {plan['dressing_changes_per_week']}x/week"]
    if plan["debridement"] != "none":
        words.append(f"{plan['debridement']} debridement")
    words += ["NPWT" if name == "npwt" else name.replace("_", " ") for name in INTERVENTIONS if plan[name]]
    return ", ".join(words)


def _weeks(value: float | None, horizon: int) -> str:
    """Weeks to one decimal; beyond the horizon, where the curve does not reach the quantile."""
    return f">{horizon}" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    """A probability in whole percent that never reads as certain: 0.999 is ">99%", not "100%"."""
    if value is None:
        return "n/a"
    text = f"{value:.0%}"
    if text == "0%" and value > 0.0:
        return "<1%"
    return ">99%" if text == "100%" and value < 1.0 else text


def _num(value: float | None, decimals: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{decimals}f}"


def _forget_services() -> None:
    """Drop cached settings and services, so the demo's home (and not a previous one) is what they open."""
    from woundcare_shared.audit import get_audit_log
    from woundcare_shared.registry import get_registry
    from woundcare_shared.runs import get_run_tracker
    from woundcare_shared.settings import get_settings
    from woundcare_shared.storage import get_store

    for cached in (get_settings, get_store, get_registry, get_audit_log, get_run_tracker):
        cached.cache_clear()
