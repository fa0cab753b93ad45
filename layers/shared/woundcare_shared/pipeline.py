"""Training pipeline stage logic: one function per task of statemachines/training.asl.json.

Handlers in functions/<stage>/ parse their event into the stage's input model and call one function here.
State payloads stay small (ids, keys, counts, flags); data and reports live in the object store, under
datasets/<version>/ (immutable, content-addressed) and runs/<run_id>/ (one run's work). Every stage is
idempotent on the run id: its output is kept at runs/<run_id>/stages/<stage>.json, and a repeated call
(a Step Functions retry, a re-run) returns it without doing the work again.

model_build (pandas, scikit-learn) is imported inside the stages that need it, so the light FinishRun
Lambda ships without it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import pickle
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field, ValidationError, field_validator

from woundcare_shared.audit import AuditError, AuditLog, open_audit_log
from woundcare_shared.observability import logger, metrics
from woundcare_shared.registry import PRODUCTION, SHADOW, Registry, VersionNotFoundError, open_registry, version_id
from woundcare_shared.runs import FAILED, SKIPPED, SUCCEEDED, RunTracker, open_run_tracker
from woundcare_shared.settings import ConfigurationError, Settings
from woundcare_shared.storage import ObjectStore, open_store

if TYPE_CHECKING:
    import pandas as pd

    from model_build.features_table import Landmarks
    from model_build.healing import HealingModel, HealingParams
    from woundcare_shared.embedded import ExecutionResult, StateEvent

ACTOR = "training-pipeline"
STATE_MACHINE = "TrainingStateMachine"
TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"  # repository root (editable install)
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"  # a Step Functions execution name: the run id everywhere
# AWS error codes that mean "try again later", never "this request is wrong".
TRANSIENT_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestTimeout",
        "TransactionConflictException",
    }
)
# How each end state of the state machine closes the run record.
ENDS: dict[str, str] = {
    "Registered": SUCCEEDED,
    "NoRetrainNeeded": SKIPPED,
    "DataQualityFailed": FAILED,
    "RejectedByGates": FAILED,
    "PipelineFailed": FAILED,
}
_STAGES = ("snapshot", "validate", "drift_check", "train", "evaluate", "register", "finish")


class TransientStageError(RuntimeError):
    """A dependency was briefly unavailable (throttled, locked, timed out): the state machine retries."""


class ExtractNotFoundError(LookupError):
    """The extract location does not hold exactly one file per contract table."""


# --- configuration ----------------------------------------------------------------------------------------


class PipelineSettings(Settings):
    """The pipeline's WOUNDCARE_* settings on top of the service locations; limits marked assumed are ours."""

    quarantine_limit: float = Field(default=0.05, ge=0, le=1)  # assumed: largest quarantined share of input rows
    min_new_outcomes: int = Field(default=200, ge=0)  # new matured outcomes that justify a retrain without drift
    drift_alpha: float = Field(default=0.01, gt=0, lt=1)
    drift_max_drifted_share: float = Field(default=0.3, ge=0, le=1)
    drift_wasserstein_min: float = Field(default=0.1, ge=0)
    drift_js_distance_min: float = Field(default=0.07, ge=0, le=1)
    test_share: float = Field(default=0.25, gt=0, lt=1)
    split_seed: int = 0
    model_max_iter: int = Field(default=300, ge=1)
    model_learning_rate: float = Field(default=0.1, gt=0)
    model_max_leaf_nodes: int = Field(default=31, ge=2)
    model_min_samples_leaf: int = Field(default=50, ge=1)
    gate_min_c_index: float = Field(default=0.6, ge=0, le=1)  # assumed floor: 0.5 is chance
    gate_max_ibs: float = Field(default=0.25, ge=0)  # assumed ceiling: 0.25 is a constant 50 % forecast
    gate_min_auc_12w: float = Field(default=0.6, ge=0, le=1)  # assumed floor
    gate_champion_tolerance: float = Field(default=0.01, ge=0)  # C-index the candidate may lose to the champion
    gate_subgroup_tolerance: float = Field(default=0.03, ge=0)  # C-index a subgroup may lose to the champion's
    notify_topic_arn: str = ""  # SNS topic for run ends; empty: the notification is logged
    code_version: str = ""  # e.g. the git commit the image was built from; default: the package version
    landing_marker: str = "READY"  # the object an EHR feed writes last into a landed extract folder
    # Fault injection for resilience drills and tests: "stage:count,..." makes each named stage raise
    # TransientStageError on its first `count` attempts of every run. Never set in a deployed stack.
    fault_injection: str = Field(default="", pattern=r"^(\w+:\d+(,\w+:\d+)*)?$")

    @field_validator("fault_injection")
    @classmethod
    def _known_stages(cls, value: str) -> str:
        unknown = {item.split(":")[0] for item in value.split(",") if item} - set(_STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}; stages are {', '.join(_STAGES)}")
        return value

    def injected_faults(self, stage: str) -> int:
        items = (item.partition(":") for item in self.fault_injection.split(",") if item)
        return sum(int(count) for name, _, count in items if name == stage)

    def healing_params(self) -> HealingParams:
        from model_build.healing import HealingParams

        return HealingParams(
            max_iter=self.model_max_iter,
            learning_rate=self.model_learning_rate,
            max_leaf_nodes=self.model_max_leaf_nodes,
            min_samples_leaf=self.model_min_samples_leaf,
            random_state=self.split_seed,
        )

    def run_parameters(self) -> dict[str, Any]:
        """What shapes a run's result, for its run record (service locations left out)."""
        return self.model_dump(mode="json", exclude={"home", "store_url", "registry_url", "audit_url", "runs_url"})


def load_settings() -> PipelineSettings:
    """Parse the environment now (not cached: the embedded runtime changes it between runs)."""
    try:
        return PipelineSettings()
    except ValidationError as error:
        problems = [f"WOUNDCARE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()]
        raise ConfigurationError("invalid woundcare pipeline configuration: " + "; ".join(problems)) from None


@dataclass(frozen=True)
class Services:
    """Settings and the services they name, for one stage call."""

    settings: PipelineSettings
    store: ObjectStore
    registry: Registry
    audit: AuditLog
    runs: RunTracker


@lru_cache(maxsize=8)
def _open(store_url: str, registry_url: str, audit_url: str, runs_url: str) -> tuple[Any, ...]:
    return open_store(store_url), open_registry(registry_url), open_audit_log(audit_url), open_run_tracker(runs_url)


def services() -> Services:
    """Fresh settings; services opened once per distinct set of locations (clients are reused across calls)."""
    s = load_settings()
    return Services(s, *_open(s.store_url, s.registry_url, s.audit_url, s.runs_url))


# --- stage contracts --------------------------------------------------------------------------------------


class RunRequest(BaseModel):
    """The execution input: which extract, as of when, forced or not, asked for by whom."""

    extract: str = Field(min_length=1)  # a folder: local path, file:// or s3:// URL (a landing marker names its folder)
    extract_date: dt.date | None = None  # default: the day the run starts where it is latest (UTC+14)
    force: bool = False  # retrain even without drift or new outcomes
    requested_by: str = "unknown"


class SnapshotInput(BaseModel):
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    request: RunRequest


class SnapshotOutput(BaseModel):
    run_id: str
    dataset_version: str
    manifest_key: str
    created: bool  # False: the same content was snapshotted before, nothing was written
    extract_date: dt.date
    force: bool


class DatasetInput(BaseModel):
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    dataset_version: str


class ValidateInput(DatasetInput):
    extract_date: dt.date


class ValidateOutput(BaseModel):
    input_rows: int
    clean_rows: int
    quarantined_rows: int
    quarantined_share: float
    quarantine_limit: float
    report_key: str


class DriftInput(DatasetInput):
    force: bool = False


class DriftOutput(BaseModel):
    production_version: str | None
    drift_detected: bool
    drifted_features: list[str]
    new_matured_outcomes: int | None
    retrain: bool
    reasons: list[str]
    report_key: str | None


class TrainOutput(BaseModel):
    model_key: str
    test_key: str
    train_outcomes_key: str  # training rows' time and event: the censoring weights of the test metrics
    params: dict[str, Any]
    train_rows: int
    test_rows: int


class EvaluateInput(BaseModel):
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    production_version: str | None = None


class EvaluateOutput(BaseModel):
    passed: bool
    reasons: list[str]
    candidate: dict[str, float | None]
    champion_version: str | None
    champion: dict[str, float | None] | None
    report_key: str


class RegisterOutput(BaseModel):
    model_version: str
    status: str
    artifacts: dict[str, str]


class FinishInput(BaseModel):
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    end: Literal["Registered", "NoRetrainNeeded", "DataQualityFailed", "RejectedByGates", "PipelineFailed"]
    error: dict[str, Any] | None = None  # a Catch's {"Error", "Cause"}; only Error is kept (Cause may quote data)


class FinishOutput(BaseModel):
    run_id: str
    outcome: str
    end: str
    reason: str


# --- shared mechanics -------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def stage_key(run_id: str, stage: str) -> str:
    return f"runs/{run_id}/stages/{stage}.json"


@contextmanager
def transient_errors() -> Iterator[None]:
    """Re-raise errors that a later attempt can succeed on as TransientStageError (the only error retried)."""
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in TRANSIENT_AWS_CODES:
            raise TransientStageError(f"AWS {code}") from error
        raise
    except BotoCoreError as error:  # connection and read timeouts, endpoint unreachable
        raise TransientStageError(type(error).__name__) from error
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            raise TransientStageError("database busy") from error
        raise
    except AuditError as error:
        raise TransientStageError("audit log contended") from error


def _run_stage(svc: Services, run_id: str, stage: str, output: type[M], work: Callable[[], M]) -> M:
    """Run `work` once per run: a repeated call returns the recorded output; the run record tracks each attempt."""
    key = stage_key(run_id, stage)
    with transient_errors():
        if svc.store.exists(key):
            logger.info("stage already done for this run; returning its recorded output", extra={"stage": stage})
            return output.model_validate(svc.store.get_json(key))
        with svc.runs.stage(run_id, stage):
            _inject_fault(svc, run_id, stage)
            result = work()
        svc.store.put_json(key, result.model_dump(mode="json"))
    return result


def _inject_fault(svc: Services, run_id: str, stage: str) -> None:
    """Fault injection (see PipelineSettings.fault_injection); attempts are counted in the store, per run."""
    planned = svc.settings.injected_faults(stage)
    if not planned:
        return
    key = f"runs/{run_id}/injected-faults/{stage}.json"
    done = svc.store.get_json(key)["count"] if svc.store.exists(key) else 0
    if done < planned:
        svc.store.put_json(key, {"count": done + 1})
        raise TransientStageError(f"injected fault {done + 1} of {planned} in stage {stage}")


def _audit(svc: Services, action: str, subject: str, reason: str, run_id: str, **details: Any) -> None:
    svc.audit.append(ACTOR, action, subject, reason, {"run_id": run_id, **details})


def _upload_dir(store: ObjectStore, folder: Path, prefix: str) -> list[str]:
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(folder).as_posix()
        store.put_file(key, path)
        keys.append(key)
    return keys


def read_clean(store: ObjectStore, run_id: str) -> dict[str, pd.DataFrame]:
    """The run's validated clean tables."""
    import pandas as pd

    from model_build.schema import TABLE_ORDER

    with tempfile.TemporaryDirectory(prefix="woundcare-") as tmp:
        tables = {}
        for name in TABLE_ORDER:
            path = Path(tmp) / f"{name}.parquet"
            store.get_file(f"runs/{run_id}/validation/clean/{name}.parquet", path)
            tables[name] = pd.read_parquet(path)
    return tables


def _put_pickle(store: ObjectStore, key: str, value: Any) -> None:
    store.put_bytes(key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _get_pickle(store: ObjectStore, key: str) -> Any:
    # Only objects this pipeline wrote into its own (encrypted, access-controlled) store are unpickled.
    return pickle.loads(store.get_bytes(key))


def _landmarks_frame(rows: Landmarks) -> pd.DataFrame:
    return rows.ids.join(rows.X).assign(time_days=rows.time_days, event=rows.event)


def _frame_landmarks(frame: pd.DataFrame) -> Landmarks:
    from model_build.features import FEATURE_NAMES
    from model_build.features_table import ID_COLUMNS, Landmarks

    return Landmarks(
        ids=frame[list(ID_COLUMNS)],
        X=frame[list(FEATURE_NAMES)],
        time_days=frame["time_days"].to_numpy(dtype="float64"),
        event=frame["event"].to_numpy(dtype=bool),
    )


def _put_frame(store: ObjectStore, key: str, frame: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory(prefix="woundcare-") as tmp:
        path = Path(tmp) / "frame.parquet"
        frame.to_parquet(path, index=False)
        store.put_file(key, path)


def _get_frame(store: ObjectStore, key: str) -> pd.DataFrame:
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="woundcare-") as tmp:
        path = Path(tmp) / "frame.parquet"
        store.get_file(key, path)
        return pd.read_parquet(path)


# --- Snapshot ---------------------------------------------------------------------------------------------


def extract_source(extract: str, marker: str) -> ObjectStore:
    """The store that holds a landed extract: a local folder or a file:// / s3:// URL of its folder or marker."""
    url = (extract if "://" in extract else f"file://{Path(extract).resolve()}").rstrip("/")
    return open_store(url.removesuffix("/" + marker))


def dataset_version(manifest_tables: Mapping[str, Mapping[str, Any]]) -> str:
    """The version of a dataset: a hash of its tables' file names and SHA-256s, so equal content, equal version."""
    canonical = json.dumps(
        {name: [t["file"], t["sha256"]] for name, t in manifest_tables.items()}, sort_keys=True, separators=(",", ":")
    )
    return "ds-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def snapshot(request: SnapshotInput) -> SnapshotOutput:
    """Copy the extract's contract tables into an immutable, content-addressed dataset version."""
    from model_build.extract import FORMATS
    from model_build.rules import latest_date_anywhere
    from model_build.schema import CONTRACT_VERSION, TABLE_ORDER

    svc = services()
    run_id, ask = request.run_id, request.request
    with transient_errors():
        svc.runs.start(run_id, ask.model_dump(mode="json"), svc.settings.run_parameters())

    def work() -> SnapshotOutput:
        source = extract_source(ask.extract, svc.settings.landing_marker)
        files = {}
        for table in TABLE_ORDER:
            present = [f"{table}.{fmt}" for fmt in FORMATS if source.exists(f"{table}.{fmt}")]
            if len(present) != 1:
                raise ExtractNotFoundError(f"the extract needs exactly one of {table}.csv, {table}.parquet")
            files[table] = (present[0], source.get_bytes(present[0]))
        tables = {
            name: {"file": file, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, (file, data) in files.items()
        }
        version = dataset_version(tables)
        prefix = f"datasets/{version}/"
        for file, data in files.values():
            svc.store.put_if_absent(prefix + file, data)
        manifest = {"dataset_version": version, "contract_version": CONTRACT_VERSION, "tables": tables}
        # The manifest goes last: its presence means the version is complete.
        created = svc.store.put_if_absent(prefix + "manifest.json", json.dumps(manifest, indent=2).encode())
        extract_date = ask.extract_date or latest_date_anywhere()
        _audit(svc, "dataset.snapshot", version, "training run input", run_id, created=created, tables=tables)
        svc.runs.add_metrics(run_id, {"dataset_version": version, "extract_date": extract_date.isoformat()})
        metrics.add_metric(name="SnapshotCreated", unit=MetricUnit.Count, value=int(created))
        return SnapshotOutput(
            run_id=run_id,
            dataset_version=version,
            manifest_key=prefix + "manifest.json",
            created=created,
            extract_date=extract_date,
            force=ask.force,
        )

    return _run_stage(svc, run_id, "snapshot", SnapshotOutput, work)


# --- Validate ---------------------------------------------------------------------------------------------


def validate(request: ValidateInput) -> ValidateOutput:
    """Clean, quarantine and report the dataset version; the state machine compares the share with the limit."""
    from model_build.validate import validate_extract

    svc = services()
    run_id = request.run_id

    def work() -> ValidateOutput:
        prefix = f"runs/{run_id}/validation/"
        manifest = svc.store.get_json(f"datasets/{request.dataset_version}/manifest.json")
        with tempfile.TemporaryDirectory(prefix="woundcare-") as tmp:
            extract = Path(tmp) / "extract"
            for table in manifest["tables"].values():
                svc.store.get_file(f"datasets/{request.dataset_version}/{table['file']}", extract / table["file"])
            result = validate_extract(extract, extract_date=request.extract_date)
            result.write(Path(tmp) / "validated")
            _upload_dir(svc.store, Path(tmp) / "validated", prefix)
        report = result.report
        counts = {k: report[k] for k in ("input_rows", "clean_rows", "quarantined_rows", "quarantined_share")}
        limit = svc.settings.quarantine_limit
        rules = {t: r["errors_by_rule"] for t, r in report["tables"].items()}
        _audit(svc, "dataset.validate", request.dataset_version, "training run data quality", run_id, **counts)
        svc.runs.add_metrics(run_id, {"validation": {**counts, "quarantine_limit": limit, "errors_by_rule": rules}})
        metrics.add_metric(name="QuarantinedRows", unit=MetricUnit.Count, value=report["quarantined_rows"])
        return ValidateOutput(**counts, quarantine_limit=limit, report_key=prefix + "report.json")

    return _run_stage(svc, run_id, "validate", ValidateOutput, work)


# --- DriftCheck -------------------------------------------------------------------------------------------


def drift_check(request: DriftInput) -> DriftOutput:
    """Compare the clean data with the production model's reference profile; decide whether to retrain."""
    from model_build.drift import DriftThresholds, compare, matured_outcomes, retrain_reasons
    from model_build.features_table import feature_frame
    from model_build.reports import drift_report_html

    svc = services()
    run_id = request.run_id

    def work() -> DriftOutput:
        s = svc.settings
        thresholds = DriftThresholds(
            alpha=s.drift_alpha,
            wasserstein_min=s.drift_wasserstein_min,
            js_distance_min=s.drift_js_distance_min,
            max_drifted_share=s.drift_max_drifted_share,
            min_new_matured_outcomes=s.min_new_outcomes,
        )
        production = svc.registry.current(PRODUCTION)
        if production is None:
            reasons = retrain_reasons(
                has_production_model=False,
                drift_detected=False,
                new_matured_outcomes=None,
                force=request.force,
                min_new_matured_outcomes=s.min_new_outcomes,
            )
            out = DriftOutput(
                production_version=None,
                drift_detected=False,
                drifted_features=[],
                new_matured_outcomes=None,
                retrain=bool(reasons),
                reasons=list(reasons),
                report_key=None,
            )
        else:
            clean = read_clean(svc.store, run_id)
            frame = feature_frame(clean["patients"], clean["wounds"], clean["assessments"])
            reference = svc.store.get_json(production.artifacts["reference_profile"])
            result = compare(
                reference,
                frame,
                thresholds,
                current_outcomes=matured_outcomes(clean["wounds"], clean["assessments"]),
                force=request.force,
            )
            report_key = f"runs/{run_id}/drift/drift.json"
            svc.store.put_json(report_key, result.as_dict() | {"production_version": production.version})
            html = drift_report_html(result, reference, frame)
            svc.store.put_bytes(f"runs/{run_id}/drift/drift.html", html.encode("utf-8"))
            out = DriftOutput(
                production_version=production.version,
                drift_detected=result.drift_detected,
                drifted_features=list(result.drifted_features),
                new_matured_outcomes=result.new_matured_outcomes,
                retrain=result.retrain_recommended,
                reasons=list(result.retrain_reasons),
                report_key=report_key,
            )
        summary = out.model_dump(mode="json", exclude={"report_key"})
        _audit(svc, "drift.check", request.dataset_version, "retrain decision", run_id, **summary)
        svc.runs.add_metrics(run_id, {"drift": summary})
        metrics.add_metric(name="DriftDetected", unit=MetricUnit.Count, value=int(out.drift_detected))
        return out

    return _run_stage(svc, run_id, "drift_check", DriftOutput, work)


# --- Train ------------------------------------------------------------------------------------------------


def train(request: DatasetInput) -> TrainOutput:
    """Fit the healing-time model on a patient-level training split; keep the held-out landmarks for Evaluate."""
    from dataclasses import asdict

    import pandas as pd

    from model_build.evaluate import split_by_patient
    from model_build.features_table import landmarks
    from model_build.healing import fit_healing_model

    svc = services()
    run_id = request.run_id

    def work() -> TrainOutput:
        s = svc.settings
        clean = read_clean(svc.store, run_id)
        rows = landmarks(clean["patients"], clean["wounds"], clean["assessments"])
        train_rows, test_rows = split_by_patient(rows, s.test_share, s.split_seed)
        params = s.healing_params()
        model = fit_healing_model(train_rows, params)
        prefix = f"runs/{run_id}/train/"
        _put_pickle(svc.store, prefix + "model.pkl", model)
        _put_frame(svc.store, prefix + "test.parquet", _landmarks_frame(test_rows))
        outcomes = pd.DataFrame({"time_days": train_rows.time_days, "event": train_rows.event})
        _put_frame(svc.store, prefix + "train_outcomes.parquet", outcomes)
        out = TrainOutput(
            model_key=prefix + "model.pkl",
            test_key=prefix + "test.parquet",
            train_outcomes_key=prefix + "train_outcomes.parquet",
            params=json.loads(json.dumps(asdict(params))),
            train_rows=len(train_rows.X),
            test_rows=len(test_rows.X),
        )
        details = {"train_rows": out.train_rows, "test_rows": out.test_rows}
        _audit(svc, "model.train", request.dataset_version, "training run", run_id, **details, params=out.params)
        svc.runs.add_metrics(run_id, {"train": details})
        return out

    return _run_stage(svc, run_id, "train", TrainOutput, work)


# --- Evaluate ---------------------------------------------------------------------------------------------


def evaluate(request: EvaluateInput) -> EvaluateOutput:
    """Metrics, clinical baselines and the champion on the same held-out patients; the gates' verdict."""
    svc = services()
    run_id = request.run_id

    def work() -> EvaluateOutput:
        trained = TrainOutput.model_validate(svc.store.get_json(stage_key(run_id, "train")))
        test = _frame_landmarks(_get_frame(svc.store, trained.test_key))
        outcomes = _get_frame(svc.store, trained.train_outcomes_key)
        scorer = _Scorer(test, outcomes["time_days"].to_numpy(), outcomes["event"].to_numpy(dtype=bool))
        candidate = scorer.model(_get_pickle(svc.store, trained.model_key))
        champion_version, champion = None, None
        if request.production_version:
            production = svc.registry.get(request.production_version)
            champion_version = production.version
            champion = scorer.model(_get_pickle(svc.store, production.artifacts["model"]))
        reasons = gate_reasons(candidate, champion, svc.settings)
        gates = gate_thresholds(svc.settings)
        report_key = f"runs/{run_id}/evaluation/evaluation.json"
        report = {
            "test_rows": len(test.time_days),
            "candidate": candidate,
            "baselines": scorer.baselines(),
            "champion_version": champion_version,
            "champion": champion,
            "gates": gates,
            "reasons": reasons,
        }
        svc.store.put_json(report_key, _finite(report))
        out = EvaluateOutput(
            passed=not reasons,
            reasons=reasons,
            candidate=headline(candidate),
            champion_version=champion_version,
            champion=None if champion is None else headline(champion),
            report_key=report_key,
        )
        summary = out.model_dump(mode="json", exclude={"report_key"})
        _audit(svc, "model.evaluate", version_id(run_id), "quality gates", run_id, **summary)
        svc.runs.add_metrics(run_id, {"evaluation": summary, "gates": gates})
        metrics.add_metric(name="GatesPassed", unit=MetricUnit.Count, value=int(out.passed))
        return out

    return _run_stage(svc, run_id, "evaluate", EvaluateOutput, work)


class _Scorer:
    """Scores predictors on one test set with the censoring weights of one training set."""

    def __init__(self, test: Landmarks, train_time: Any, train_event: Any):
        self.test, self.train_time, self.train_event = test, train_time, train_event

    def model(self, model: HealingModel) -> dict[str, Any]:
        """All metrics of a healing model, overall and by subgroup."""
        import numpy as np

        from model_build.evaluate import TWELVE_WEEKS_DAYS, Predictions, evaluate_predictions
        from model_build.healing import as_model_frame

        horizon = float(model.survival.interval_edges_[-1])
        times = np.unique(np.r_[np.arange(0.0, horizon, 7.0), TWELVE_WEEKS_DAYS, horizon])
        surv = model.survival.predict_survival(as_model_frame(self.test.X), times)
        predictions = Predictions.from_survival(surv, times)
        return evaluate_predictions(self.test, predictions, self.train_time, self.train_event)

    def baselines(self) -> dict[str, Any]:
        """Overall metrics of the clinical rules a clinician already uses, on the same rows."""
        from model_build import baselines
        from model_build.evaluate import evaluate_predictions

        rules = (baselines.sheehan, baselines.percent_area_reduction, baselines.margolis_dfu,
                 baselines.margolis_vlu, baselines.push_total)  # fmt: skip
        return {
            rule.__name__: evaluate_predictions(self.test, rule(self.test.X), self.train_time, self.train_event)[
                "overall"
            ]
            for rule in rules
        }


HEADLINE = ("harrell_c", "uno_c", "auc_12w", "ibs", "calibration_mace", "mae_weeks")


def headline(evaluation: Mapping[str, Any]) -> dict[str, float | None]:
    """The overall metrics a person compares first, and the C-index at first visits, the prediction at presentation
    (None where they could not be computed)."""
    first_visit = evaluation["by"].get("visit", {}).get("first", {}).get("harrell_c")
    return _finite(
        {**{name: evaluation["overall"].get(name) for name in HEADLINE}, "harrell_c_first_visit": first_visit}
    )


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None (Lambda payloads and strict JSON refuse them)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def gate_thresholds(settings: PipelineSettings) -> dict[str, float]:
    return {
        "min_c_index": settings.gate_min_c_index,
        "max_ibs": settings.gate_max_ibs,
        "min_auc_12w": settings.gate_min_auc_12w,
        "champion_tolerance": settings.gate_champion_tolerance,
        "subgroup_tolerance": settings.gate_subgroup_tolerance,
    }


def gate_reasons(
    candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, settings: PipelineSettings
) -> list[str]:
    """Every gate the candidate fails, in words; empty means it may be registered.

    Absolute floors on the overall metrics; then, with a champion scored on the same test set, a C-index no
    worse than the champion's beyond a tolerance, and no subgroup (wound type, care setting, sex, age band, first
    or later visit) whose C-index falls below the champion's on that subgroup beyond a tolerance.
    """
    overall = candidate["overall"]
    c_index, ibs, auc = overall.get("harrell_c"), overall.get("ibs"), overall.get("auc_12w")
    reasons = []
    if c_index is None or c_index < settings.gate_min_c_index:
        reasons.append(f"C-index {_fmt(c_index)} below the floor {settings.gate_min_c_index:.3f}")
    if ibs is None or ibs > settings.gate_max_ibs:
        reasons.append(f"integrated Brier score {_fmt(ibs)} above the ceiling {settings.gate_max_ibs:.3f}")
    if auc is None or auc < settings.gate_min_auc_12w:
        reasons.append(f"AUC at 12 weeks {_fmt(auc)} below the floor {settings.gate_min_auc_12w:.3f}")
    if champion is None:
        return reasons
    champion_c = champion["overall"].get("harrell_c")
    if c_index is not None and champion_c is not None and c_index < champion_c - settings.gate_champion_tolerance:
        reasons.append(
            f"C-index {c_index:.3f} below the champion's {champion_c:.3f}"
            f" beyond the tolerance {settings.gate_champion_tolerance:.3f}"
        )
    for group, ours, theirs in _paired_subgroups(candidate, champion):
        if ours < theirs - settings.gate_subgroup_tolerance:
            reasons.append(
                f"subgroup {group}: C-index {ours:.3f} below the champion's {theirs:.3f}"
                f" beyond the tolerance {settings.gate_subgroup_tolerance:.3f}"
            )
    return reasons


def _paired_subgroups(candidate: Mapping[str, Any], champion: Mapping[str, Any]) -> Iterator[tuple[str, float, float]]:
    """("dimension=level", candidate C-index, champion C-index) for each subgroup both could be scored on."""
    for dimension, levels in candidate.get("by", {}).items():
        for level, ours in levels.items():
            theirs = champion.get("by", {}).get(dimension, {}).get(level, {})
            if ours.get("harrell_c") is not None and theirs.get("harrell_c") is not None:
                yield f"{dimension}={level}", ours["harrell_c"], theirs["harrell_c"]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# --- Register ---------------------------------------------------------------------------------------------


def register(request: DatasetInput) -> RegisterOutput:
    """Native build, model card data and reference profile under models/<version>/; registry entry as shadow."""
    svc = services()
    run_id = request.run_id

    def work() -> RegisterOutput:
        version = version_id(run_id)
        try:
            existing = svc.registry.get(version)  # registered by an attempt that died before recording its output
            return RegisterOutput(model_version=version, status=existing.status, artifacts=existing.artifacts)
        except VersionNotFoundError:
            pass
        trained = TrainOutput.model_validate(svc.store.get_json(stage_key(run_id, "train")))
        evaluation = EvaluateOutput.model_validate(svc.store.get_json(stage_key(run_id, "evaluate")))
        model = _get_pickle(svc.store, trained.model_key)
        prefix = f"models/{version}/"
        artifacts = {"model": prefix + "model.pkl"}
        svc.store.put_bytes(artifacts["model"], svc.store.get_bytes(trained.model_key))
        test_frame = _get_frame(svc.store, trained.test_key)
        artifacts |= _build_native(svc.store, prefix + "native/", model, test_frame)
        artifacts["reference_profile"] = prefix + "reference_profile.json"
        svc.store.put_json(artifacts["reference_profile"], _reference_profile(svc.store, run_id))
        card = {
            "model_version": version,
            "run_id": run_id,
            "dataset_version": request.dataset_version,
            "params": trained.params,
            "rows": {"train": trained.train_rows, "test": trained.test_rows},
            **_card_evaluation(svc.store.get_json(evaluation.report_key)),
        }
        artifacts |= publish_model_card(svc.store, prefix, card, model, _frame_landmarks(test_frame))
        artifacts["evaluation"] = evaluation.report_key
        artifacts["validation_report"] = f"runs/{run_id}/validation/report.json"
        record = svc.registry.register(
            run_id=run_id,
            created_by=ACTOR,
            dataset_version=request.dataset_version,
            code_version=svc.settings.code_version or _package_version(),
            parameters=trained.params,
            metrics={"candidate": evaluation.candidate, "champion": evaluation.champion},
            artifacts=artifacts,
            status=SHADOW,
            reason="passed the quality gates",
        )
        _audit(svc, "model.register", version, "passed the quality gates; serving in shadow", run_id,
               dataset_version=request.dataset_version, status=record.status)  # fmt: skip
        svc.runs.add_metrics(run_id, {"model_version": version})
        return RegisterOutput(model_version=version, status=record.status, artifacts=record.artifacts)

    return _run_stage(svc, run_id, "register", RegisterOutput, work)


def _build_native(store: ObjectStore, prefix: str, model: HealingModel, test_frame: pd.DataFrame) -> dict[str, str]:
    """Compile the hazard trees to a shared library, parity-checked against scikit-learn on held-out rows."""
    import numpy as np

    from model_build.compile import compile_model
    from model_build.healing import as_model_frame

    survival = model.survival
    meta = model.serving_meta()
    sample = as_model_frame(test_frame.head(200))
    last = len(survival.interval_edges_) - 2
    parity = np.vstack([survival.design_matrix(sample, k) for k in sorted({0, last // 2, last})])
    with tempfile.TemporaryDirectory(prefix="woundcare-") as tmp:
        bundle = compile_model(survival.estimator_, Path(tmp) / "bundle", meta["design_columns"], meta,
                               parity_rows=parity)  # fmt: skip
        keys = _upload_dir(store, bundle, prefix)
    return {f"native_{Path(key).stem}": key for key in keys}  # native_bundle (bundle.json), native_model (.so)


def _reference_profile(store: ObjectStore, run_id: str) -> dict[str, Any]:
    """The drift reference of this model: a profile of the feature frame it was trained from, with outcomes."""
    from model_build.drift import matured_outcomes, reference_profile
    from model_build.features_table import feature_frame

    clean = read_clean(store, run_id)
    frame = feature_frame(clean["patients"], clean["wounds"], clean["assessments"])
    return reference_profile(frame, matured_outcomes(clean["wounds"], clean["assessments"]))


def _card_evaluation(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the model card shows of the evaluation: the candidate's metrics, the baselines and the gates."""
    return {
        "evaluation": report["candidate"],
        "baselines": report["baselines"],
        "champion_version": report["champion_version"],
        "gates": report["gates"],
    }


def publish_model_card(
    store: ObjectStore, prefix: str, card: dict[str, Any], model: HealingModel, test: Landmarks
) -> dict[str, str]:
    """Store the model card: its data as JSON and the page a clinical lead reads before approving."""
    from model_build.model_card import render_model_card

    store.put_json(prefix + "card.json", card)
    store.put_bytes(prefix + "card.html", render_model_card(card, model, test).encode("utf-8"))
    return {"model_card_data": prefix + "card.json", "model_card": prefix + "card.html"}


def _package_version() -> str:
    try:
        return "woundcare " + metadata.version("woundcare")
    except metadata.PackageNotFoundError:
        return "woundcare (unpackaged)"


# --- FinishRun --------------------------------------------------------------------------------------------


def finish(request: FinishInput) -> FinishOutput:
    """Close the run record for the end state reached, audit it and notify (SNS when configured, else a log)."""
    svc = services()
    run_id = request.run_id
    with transient_errors():
        svc.runs.start(run_id, {}, {})  # a run that failed before Snapshot recorded it still gets its record

    def work() -> FinishOutput:
        outcome = ENDS[request.end]
        reason = _end_reason(svc, request)
        svc.runs.finish(run_id, outcome, reason)
        _audit(svc, "run.finish", run_id, reason, run_id, end=request.end, outcome=outcome)
        out = FinishOutput(run_id=run_id, outcome=outcome, end=request.end, reason=reason)
        notify(svc.settings, out)
        metrics.add_metric(name=f"Run{request.end}", unit=MetricUnit.Count, value=1)
        return out

    return _run_stage(svc, run_id, "finish", FinishOutput, work)


def _end_reason(svc: Services, request: FinishInput) -> str:
    run_id, end = request.run_id, request.end
    if end == "Registered":
        registered = svc.store.get_json(stage_key(run_id, "register"))
        return f"model {registered['model_version']} registered as {registered['status']}"
    if end == "NoRetrainNeeded":
        return "no drift, too few new matured outcomes, and not forced"
    if end == "DataQualityFailed":
        v = ValidateOutput.model_validate(svc.store.get_json(stage_key(run_id, "validate")))
        return f"{v.quarantined_share:.2%} of input rows quarantined, above the limit of {v.quarantine_limit:.2%}"
    if end == "RejectedByGates":
        return "; ".join(svc.store.get_json(stage_key(run_id, "evaluate"))["reasons"])
    failed = [name for name, s in svc.runs.get(run_id).stages.items() if s.get("status") == FAILED]
    error = (request.error or {}).get("Error", "unknown error")
    return f"{error} in stage {failed[-1]}" if failed else f"{error} before any stage ran"


def notify(settings: PipelineSettings, result: FinishOutput) -> None:
    """Tell people how a run ended: SNS in AWS, a log line where no topic is configured."""
    message = result.model_dump(mode="json")
    if settings.notify_topic_arn:
        import boto3

        with transient_errors():
            boto3.client("sns").publish(
                TopicArn=settings.notify_topic_arn,
                Subject=f"woundcare training run: {result.end}",
                Message=json.dumps(message, sort_keys=True),
            )
    elif result.outcome == FAILED:
        logger.warning("training run ended", extra={"notification": message})
    else:
        logger.info("training run ended", extra={"notification": message})


# --- local execution (embedded runtime) -------------------------------------------------------------------


def new_run_id() -> str:
    return f"run-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def local_environment(settings: PipelineSettings) -> dict[str, str]:
    """What a local run sets over template.yaml's variables: local services and every WOUNDCARE_* of this shell."""
    shell = {k: v for k, v in os.environ.items() if k.startswith("WOUNDCARE_")}
    return {
        **shell,
        "WOUNDCARE_HOME": str(settings.home),
        "WOUNDCARE_STORE_URL": settings.store_url,
        "WOUNDCARE_REGISTRY_URL": settings.registry_url,
        "WOUNDCARE_AUDIT_URL": settings.audit_url,
        "WOUNDCARE_RUNS_URL": settings.runs_url,
        "WOUNDCARE_NOTIFY_TOPIC_ARN": "",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def run_local(
    extract: str | Path,
    *,
    force: bool = False,
    extract_date: dt.date | None = None,
    requested_by: str = "local",
    run_id: str | None = None,
    on_event: Callable[[StateEvent], None] | None = None,
    extra_env: Mapping[str, str] | None = None,
    template: Path = TEMPLATE,
) -> ExecutionResult:
    """Execute the real training state machine on this machine (moto interpreter, in-process Lambdas)."""
    from woundcare_shared.embedded import run_state_machine

    # Stages run on the invoker's request threads; with libgomp's default active waiting, OpenMP teams made on
    # those threads spin against each other (a 20-tree fit took 5x longer on 2 cores). libgomp reads this once,
    # when scikit-learn first loads it: it helps only if nothing in this process has imported scikit-learn yet.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    request = RunRequest(extract=str(extract), extract_date=extract_date, force=force, requested_by=requested_by)
    return run_state_machine(
        template,
        STATE_MACHINE,
        request.model_dump(mode="json"),
        on_event=on_event,
        execution_name=run_id or new_run_id(),
        repo_root=template.parent,
        extra_env={**local_environment(load_settings()), **(extra_env or {})},
        # Each poll copies the execution history under the GIL the stages need: poll at a human pace.
        poll_interval_s=0.5,
    )


def run_summary(run_id: str) -> dict[str, Any]:
    """How a run went, from its run record: dataset, validation, drift, metrics against gates, model, reports."""
    svc = services()
    record = svc.runs.get(run_id)
    done = [s for s in _STAGES if svc.store.exists(stage_key(run_id, s))]
    reports = {}
    for stage, field in (("validate", "report_key"), ("drift_check", "report_key"), ("evaluate", "report_key")):
        key = svc.store.get_json(stage_key(run_id, stage)).get(field) if stage in done else None
        if key:
            reports[stage] = svc.store.uri(key)
    model_version = record.metrics.get("model_version")
    if model_version:
        for name, key in svc.registry.get(model_version).artifacts.items():
            if name in ("model_card_data", "native_bundle"):
                reports[name] = svc.store.uri(key)
    return {
        "run_id": run_id,
        "outcome": record.outcome,
        "reason": record.reason,
        "dataset_version": record.metrics.get("dataset_version"),
        "validation": record.metrics.get("validation"),
        "drift": record.metrics.get("drift"),
        "evaluation": record.metrics.get("evaluation"),
        "gates": record.metrics.get("gates"),
        "model_version": model_version,
        "stages": {name: s for name, s in record.stages.items()},
        "reports": reports,
    }
