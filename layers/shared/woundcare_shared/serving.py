"""The inference API's logic: models per registry status loaded from the store (checksum-verified, cached per
process), shadow handling, prediction capture, outcome recording and the mapping of every failure to an HTTP reply.

The Chalice routes in functions/inference/app.py only hand a request's bytes here and turn a `Reply` into a
response; nothing here imports chalice. The inference path imports no pandas, numpy, scipy or scikit-learn: the
scorer is the stdlib ctypes one (woundcare_scoring), and model_build's per-history modules are pure Python.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from model_build.costs import CostCatalog, load_catalog
from model_build.derive import as_shown, derive_history
from model_build.features import history_features
from model_build.precision import SCORE, WEEKS, rounded
from model_build.predict import CARE_ENDS, OptionsRequest, Scorer, predict_features
from model_build.recommend import OBJECTIVES, RuleTable, load_rules
from model_build.rules import EARLIEST_DATE, ISO_DATE, latest_date_anywhere
from model_build.schema import END_REASONS
from model_build.validate_history import History, HistoryCheck, check_history
from woundcare_scoring.healing import CompiledHealingModel
from woundcare_scoring.native import BundleError
from woundcare_shared.audit import AuditLog, open_audit_log
from woundcare_shared.observability import logger, metrics
from woundcare_shared.registry import PRODUCTION, SHADOW, ModelVersion, Registry, open_registry
from woundcare_shared.settings import EnvReader, ServiceLocations, read_locations
from woundcare_shared.storage import ObjectNotFoundError, ObjectStore, open_store

API_VERSION = "v1"
ACTOR = "inference-api"
CAPTURE_KIND = "prediction"  # the log subscription's filter: { $.capture = "prediction" }
CAPTURE_SCHEMA = 1
HISTORY_SECTIONS = ("patient", "wound", "assessments")
# A horizon must cover 12 weeks.
OPTION_LIMITS: dict[str, tuple[float, float]] = {
    "horizon_weeks": (12, 104),
    "min_p_healed_12w": (0.0, 1.0),
    "max_options": (1, 100),
}
OUTCOME_FIELDS = ("client_key", "wound_key", "end_reason", "end_date")
OUTCOME_REASONS = tuple(r for r in END_REASONS if r != "open")  # an outcome ends the wound's course
CLIENT_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_VERSION_DIR = re.compile(r"[A-Za-z0-9_.-]{1,128}")


# --- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServingSettings(ServiceLocations):
    """The inference function's WOUNDCARE_* settings on top of the service locations."""

    # log:// writes one JSON line to stdout (a CloudWatch Logs subscription ships it to Firehose → S3);
    # file:///abs/path.jsonl appends to a local file (embedded runtime). Default: <home>/captures/predictions.jsonl.
    capture_url: str
    max_body_bytes: int  # API Gateway's own limit is 10 MB
    model_refresh_seconds: float  # how often a warm instance re-reads the registry
    model_cache_dir: Path | None  # default <home>/serving-models (Lambda: /tmp)

    def capture_target(self) -> str:
        return self.capture_url or f"file://{self.home / 'captures' / 'predictions.jsonl'}"

    def cache_dir(self) -> Path:
        return self.model_cache_dir or self.home / "serving-models"


def load_serving_settings() -> ServingSettings:
    """Parse the environment now; raises ConfigurationError naming each bad variable."""
    env = EnvReader()
    settings = ServingSettings(
        **read_locations(env),
        capture_url=env.text("capture_url", _check_capture),
        max_body_bytes=env.integer("max_body_bytes", 1_048_576, low=1024),
        model_refresh_seconds=env.real("model_refresh_seconds", 300.0, low=0.0),
        model_cache_dir=env.path("model_cache_dir", None),
    )
    env.done("serving configuration")
    return settings


def _check_capture(url: str) -> None:
    if url != "log://" and not (url.startswith("file:///") and len(url) > len("file:///")):
        raise ValueError("must be log:// or file:///absolute/path.jsonl")


# --- replies and errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the API answers: a status code and a JSON body."""

    status: int
    body: dict[str, Any]


class ApiError(Exception):
    """A request the API refuses: status, machine-readable code, and findings by path (never a value)."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or []

    def reply(self, request_id: str) -> Reply:
        body = {"code": self.code, "message": self.message, "errors": self.errors, "request_id": request_id}
        return Reply(self.status, body)


def _finding(code: str, path: str, message: str) -> dict[str, str]:
    return {"code": code, "path": path, "field": path.rpartition(".")[2], "message": message}


def _findings(check: HistoryCheck, warnings: bool = False) -> list[dict[str, str]]:
    return [_finding(f.rule, f.path, f.message) for f in (check.warnings if warnings else check.errors)]


def _prediction_warnings(ask: OptionsRequest, served: LoadedModel, wound: Mapping[str, Any]) -> list[dict[str, str]]:
    """Warnings about a prediction shown: a horizon beyond the model's (the answer uses the model's own), and a
    wound whose record ends its course of care here (`CARE_ENDS`)."""
    warnings = []
    if ask.horizon_weeks > served.scorer.horizon_weeks:
        message = f"capped at the model's horizon of {served.scorer.horizon_weeks} weeks"
        warnings.append(_finding("horizon_capped", "options.horizon_weeks", message))
    if wound["end_reason"] in CARE_ENDS:
        message = f"the wound's course here ended ({wound['end_reason']}): the prediction is from its last visit"
        warnings.append(_finding("course_ended", "wound.end_reason", message))
    return warnings


def parse_body(body: bytes | None, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError 413 (too large) / 400 (not JSON, not an object).

    Strict JSON (RFC 8259): UTF-8 without a byte order mark, no NaN or Infinity, no key twice in an object, no
    unpaired surrogate escape (it is no character, and nothing downstream could encode it)."""
    raw = body or b""
    if len(raw) > limit:
        raise ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    try:
        value = _STRICT_JSON.decode(raw.decode("utf-8"))
        # Rare: only then walk the value for an unpaired one (most bodies hold no backslash: `in` tells that fastest).
        if b"\\" in raw and _SURROGATE_ESCAPE.search(raw):
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ApiError(400, "malformed_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_type", "the body must be a JSON object", [_finding("bad_type", "", "not an object")])
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return value


_STRICT_JSON = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=_unique_keys)  # built once


def parse_options(raw: Any) -> OptionsRequest:
    """The optional `options` object of a prediction request (objective, horizon, floor on P(healed by 12 w), how
    many ranked plans to describe)."""
    if raw is None:
        return OptionsRequest()
    if not isinstance(raw, dict):
        error = _finding("bad_type", "options", "options must be an object")
        raise ApiError(422, "invalid_options", "the options are invalid", [error])
    errors = [_finding("unknown_field", f"options.{k}", "not an option") for k in raw if k not in _OPTION_TYPES]
    values: dict[str, Any] = {}
    for name, kinds in _OPTION_TYPES.items():
        if raw.get(name) is None:
            continue
        value = raw[name]
        if kinds is int and isinstance(value, float) and value.is_integer():
            value = int(value)  # 12.0 is an integer to JSON Schema, as to the history's integer fields
        if isinstance(value, bool) or not isinstance(value, kinds):
            errors.append(_finding("bad_type", f"options.{name}", f"{name} has the wrong JSON type"))
        elif name == "objective" and value not in OBJECTIVES:
            errors.append(_finding("bad_enum", "options.objective", f"objective is one of {', '.join(OBJECTIVES)}"))
        elif name in OPTION_LIMITS and not OPTION_LIMITS[name][0] <= value <= OPTION_LIMITS[name][1]:
            low, high = OPTION_LIMITS[name]
            errors.append(_finding("out_of_range", f"options.{name}", f"{name} must lie in [{low}, {high}]"))
        else:
            values[name] = value
    if errors:
        raise ApiError(422, "invalid_options", "the options are invalid", errors)
    return OptionsRequest(**values)


_OPTION_TYPES: dict[str, Any] = {  # option: its JSON types, as isinstance takes them
    "objective": str,
    "horizon_weeks": int,
    "min_p_healed_12w": (int, float),
    "max_options": int,
}


def checked_history(request: Mapping[str, Any]) -> tuple[HistoryCheck, History]:
    """Validate the history part of a request; ApiError 422 with every finding when it breaks the contract."""
    check, history = check_history({k: v for k, v in request.items() if k != "options"})
    if history is None:
        raise ApiError(422, "invalid_history", "the wound history breaks the EHR extract contract", _findings(check))
    return check, history


# --- models -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """A registered model ready to score, with the registry record it was loaded from."""

    record: ModelVersion
    scorer: Scorer


Loader = Callable[[ModelVersion, ObjectStore, Path], Scorer]


def load_compiled(record: ModelVersion, store: ObjectStore, cache_dir: Path) -> Scorer:
    """The version's native bundle, fetched once into `cache_dir/<version>/` and checksum-verified on load.

    Each version has its own directory: dlopen keeps one library per path for the life of the process.
    """
    if not _VERSION_DIR.fullmatch(record.version):
        raise BundleError("model version id is not a safe directory name")
    target = cache_dir / record.version
    cached = target.is_dir()
    if not cached:
        _fetch_bundle(record, store, cache_dir)
    try:
        compiled = CompiledHealingModel.load(target, verify=True)
    except BundleError:
        if not cached:
            raise
        # A damaged cached copy (checksums are verified before the library is opened): fetch it afresh, once.
        shutil.rmtree(target, ignore_errors=True)
        _fetch_bundle(record, store, cache_dir)
        compiled = CompiledHealingModel.load(target, verify=True)
    return Scorer(record.version, compiled.margins, compiled.meta, compiled.summarise)


def _fetch_bundle(record: ModelVersion, store: ObjectStore, cache_dir: Path) -> None:
    """Copy the version's bundle files from the store into `cache_dir/<version>/`, whole or not at all."""
    target = cache_dir / record.version
    prefix = record.artifacts["native_bundle"].rpartition("/")[0] + "/"
    staging = cache_dir / f".{record.version}.{os.urandom(16).hex()}"
    try:
        for key in store.list(prefix):  # one GET per file (S3's download_file adds a HEAD): bundles are small
            path = staging / key[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(store.get_bytes(key))
        staging.rename(target)  # atomic: a racing process finds a complete directory or none
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class Models:
    """The production and shadow models this process serves, and when the registry was read."""

    production: LoadedModel | None
    shadow: LoadedModel | None
    read_at: float
    unloaded: tuple[str, ...] = ()  # registered versions that failed to load (logged): retried at each refresh

    def versions(self) -> dict[str, str | None]:
        return {s: (m.record.version if m else None) for s, m in ((PRODUCTION, self.production), (SHADOW, self.shadow))}


def load_models(
    registry: Registry,
    store: ObjectStore,
    cache_dir: Path,
    loader: Loader = load_compiled,
    previous: Models | None = None,
) -> Models:
    """Current production and shadow models; an unchanged version is reused, a broken one is left out (logged)."""
    loaded: dict[str, LoadedModel | None] = {}
    unloaded = []
    for status, record in registry.current_by_status(PRODUCTION, SHADOW).items():
        kept = getattr(previous, status, None) if previous else None
        if record is None:
            loaded[status] = None
        elif kept is not None and kept.record.version == record.version:
            loaded[status] = kept
        else:
            loaded[status] = _load_one(record, store, cache_dir, loader)
            if loaded[status] is None:
                unloaded.append(record.version)
    return Models(loaded[PRODUCTION], loaded[SHADOW], time.monotonic(), tuple(unloaded))


def _load_one(record: ModelVersion, store: ObjectStore, cache_dir: Path, loader: Loader) -> LoadedModel | None:
    try:
        return LoadedModel(record, loader(record, store, cache_dir))
    except (BundleError, ObjectNotFoundError, KeyError, OSError) as error:
        logger.error("model not loaded", extra={"model_version": record.version, "error": type(error).__name__})
        metrics.add_metric(name="ModelLoadFailures", unit=MetricUnit.Count, value=1)
        return None


# --- prediction capture -----------------------------------------------------------------------------------


class CaptureSink(Protocol):
    def write(self, record: Mapping[str, Any]) -> None: ...


class LogLineCapture:
    """One JSON line on stdout per prediction: Lambda ships stdout to CloudWatch Logs, no AWS call here."""

    def write(self, record: Mapping[str, Any]) -> None:
        sys.stdout.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        sys.stdout.flush()


class JsonlFileCapture:
    """One JSON line per prediction appended to a local file (the embedded runtime's stand-in for Firehose → S3).

    Each line is one write(2) on an O_APPEND descriptor, so processes sharing the file never interleave lines.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        with self._lock:
            try:
                descriptor = os.open(self.path, _APPEND, 0o666)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(self.path, _APPEND, 0o666)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)


_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def open_capture(target: str) -> CaptureSink:
    return LogLineCapture() if target == "log://" else JsonlFileCapture(Path(target.removeprefix("file://")))


def capture_record(
    request_id: str,
    wound: Mapping[str, Any],
    features: Mapping[str, Any],
    ask: OptionsRequest,
    models: Models,
    served: str | None,
    outputs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The PHI-free record of one prediction: ids, versions, the pseudonymous wound key, features, outputs."""
    return {
        "capture": CAPTURE_KIND,
        "schema": CAPTURE_SCHEMA,
        "request_id": request_id,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "wound_key": wound["wound_key"],
        "models": models.versions(),
        "served_version": served,
        "options": {
            "objective": ask.objective,
            "horizon_weeks": ask.horizon_weeks,
            "min_p_healed_12w": ask.min_p_healed_12w,
            "max_options": ask.max_options,
        },
        "features": dict(features),
        "outputs": {version: _summary(answer) for version, answer in outputs.items()},
    }


def _summary(answer: Mapping[str, Any]) -> dict[str, Any]:
    prediction, options = answer.get("prediction") or {}, answer.get("options") or {}
    return {
        "status": answer["status"],
        "median_weeks": prediction.get("median_weeks"),
        "p_healed_by_week": prediction.get("p_healed_by_week"),
        "recommended": options.get("recommended"),
        "progress_score": (answer["progress"].get("visits") or [{}])[-1].get("progress_score"),
    }


# --- the service ------------------------------------------------------------------------------------------

WITHHELD = {
    "model_in_shadow": "the only model is in shadow evaluation: it is scored and recorded, not shown, "
    "until a named approver promotes it to production",
    "no_model": "no model is available for serving yet",
}


@dataclass
class Server:
    """Everything one API process holds: settings, services, the loaded models, the catalog and rule table."""

    settings: ServingSettings
    store: ObjectStore
    registry: Registry
    audit: AuditLog
    capture: CaptureSink
    catalog: CostCatalog
    rules: RuleTable
    loader: Loader = load_compiled
    models: Models = field(init=False)
    _refresh: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.settings.cache_dir().mkdir(parents=True, exist_ok=True)
        self.models = load_models(self.registry, self.store, self.settings.cache_dir(), self.loader)
        logger.info("models loaded", extra={"models": self.models.versions()})

    def current_models(self) -> Models:
        """The loaded models, re-read from the registry once `model_refresh_seconds` have passed."""
        models = self.models
        if time.monotonic() - models.read_at < self.settings.model_refresh_seconds:
            return models
        with self._refresh:
            if self.models is models:
                try:
                    self.models = load_models(
                        self.registry, self.store, self.settings.cache_dir(), self.loader, previous=models
                    )
                except Exception as error:  # a registry outage keeps the models already loaded
                    logger.warning(
                        "registry not read; serving the loaded models", extra={"error": type(error).__name__}
                    )
        return self.models

    # --- routes' logic ---

    def derive(self, body: bytes | None, request_id: str) -> Reply:
        """Validation findings and auto-calculated fields for the latest assessment of a history (the EHR form):
        the last by assessed_on, the last sent among those of that day."""
        return self._answer(request_id, lambda: self._derive(parse_body(body, self.settings.max_body_bytes)))

    def predict(self, body: bytes | None, request_id: str) -> Reply:
        """Derived fields, and the production model's prediction, trajectory, progress and options."""
        return self._answer(
            request_id, lambda: self._predict(parse_body(body, self.settings.max_body_bytes), request_id)
        )

    def record_outcome(self, body: bytes | None, request_id: str, actor: str) -> Reply:
        """Store a wound's end once per client key (a retry gets the first answer back) and audit it."""
        return self._answer(
            request_id, lambda: self._outcome(parse_body(body, self.settings.max_body_bytes), request_id, actor)
        )

    def model_info(self) -> Reply:
        """The models served: versions, headline metrics, where the model card is."""
        models = self.current_models()
        return Reply(
            200,
            {
                "api_version": API_VERSION,
                PRODUCTION: self._describe(models.production),
                SHADOW: self._describe(models.shadow),
            },
        )

    def health(self) -> Reply:
        """Alive; "degraded" while a registered model failed to load (the registry is re-read as for predictions)."""
        models = self.current_models()
        status = "degraded" if models.unloaded else "ok"
        body = {"status": status, "api_version": API_VERSION, "models": models.versions()}
        return Reply(200, {**body, "unloaded": list(models.unloaded)})

    # --- internals ---

    def _answer(self, request_id: str, work: Callable[[], Reply]) -> Reply:
        try:
            reply = work()
        except ApiError as error:
            known = [e["path"] for e in error.errors if e["code"] != "unknown_field"]  # unknown names: the caller's
            unknown = len(error.errors) - len(known)
            logger.info(
                "request refused",
                extra={"code": error.code, "status": error.status, "paths": known, "unknown_fields": unknown},
            )
            metrics.add_metric(name="ValidationFailures", unit=MetricUnit.Count, value=1)
            return error.reply(request_id)
        return Reply(reply.status, {**reply.body, "request_id": request_id})

    def _derive(self, request: dict[str, Any]) -> Reply:
        check, history = check_history(request)
        if history is None:
            body = {"ok": False, "errors": _findings(check), "warnings": _findings(check, True), "derived": None}
            return Reply(200, {"api_version": API_VERSION, **body})
        _, wound, assessments = history
        derived = derive_history(wound, assessments)[-1]  # rows in date order, a day's ties in request order
        body = {"ok": True, "errors": [], "warnings": _findings(check, True), "derived": as_shown(derived)}
        return Reply(200, {"api_version": API_VERSION, **body})

    def _predict(self, request: dict[str, Any], request_id: str) -> Reply:
        started = time.perf_counter()
        unknown = [k for k in request if k not in (*HISTORY_SECTIONS, "options")]
        if unknown:
            errors = [_finding("unknown_field", str(k), "not a field of a prediction request") for k in unknown]
            raise ApiError(422, "invalid_request", "the request holds unknown fields", errors)
        ask = parse_options(request.get("options"))
        check, (patient, wound, assessments) = checked_history(request)
        models = self.current_models()
        derived = derive_history(wound, assessments)
        rows = history_features(patient, wound, assessments, derived)
        outputs = {
            m.record.version: predict_features(rows, m.scorer, self.catalog, self.rules, ask, wound["end_reason"])
            for m in (models.production, models.shadow)
            if m is not None
        }
        served = models.production.record.version if models.production else None
        shown = outputs[served] if served else None
        withheld = None if served else ("model_in_shadow" if models.shadow else "no_model")
        if outputs:
            self._capture(capture_record(request_id, wound, rows[-1], ask, models, served, outputs))
        self._count(request_id, models, served, withheld, time.perf_counter() - started)
        warnings = _findings(check, True)
        if models.production and shown and "prediction" in shown:
            warnings += _prediction_warnings(ask, models.production, wound)
        body = {
            "api_version": API_VERSION,
            "wound_key": wound["wound_key"],
            "model": {"version": served, "status": PRODUCTION} if served else None,
            "as_of": max(visit["assessed_on"] for visit in assessments),  # ISO dates sort as dates
            "derived": [as_shown(row) for row in derived],
            "warnings": warnings,
            "clinical_output": shown,
            "withheld": {"code": withheld, "reason": WITHHELD[withheld]} if withheld else None,
        }
        return Reply(200, body)

    def _capture(self, record: dict[str, Any]) -> None:
        """Capture a prediction; a sink that fails (disk full, file locked) is logged and counted, and the caller
        still gets its answer: the clinical output matters more than its copy for the feedback loop."""
        try:
            self.capture.write(record)
        except OSError as error:
            logger.error("prediction not captured", extra={"error": type(error).__name__})
            metrics.add_metric(name="CaptureFailures", unit=MetricUnit.Count, value=1)

    def _count(self, request_id: str, models: Models, served: str | None, withheld: str | None, seconds: float) -> None:
        """Metrics of a prediction, with its request id and the versions as EMF metadata. The capture record is the
        prediction's line (in AWS a log line too): its own log line is DEBUG, not written at the default INFO."""
        metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="PredictionLatency", unit=MetricUnit.Milliseconds, value=seconds * 1000)
        metrics.add_metric(name="WithheldPredictions", unit=MetricUnit.Count, value=int(withheld is not None))
        metrics.add_metadata(key="model_versions", value=models.versions())
        metrics.add_metadata(key="request_id", value=request_id)
        logger.debug(
            "prediction served",
            extra={
                "model_version": served,
                "withheld": withheld,
                "models": models.versions(),
                "latency_ms": round(seconds * 1000, 2),
            },
        )

    def _outcome(self, request: dict[str, Any], request_id: str, actor: str) -> Reply:
        """Each first report is audited ("outcome.report") before it is stored, so no outcome is ever kept without
        its audit record: a failure in between, or two first reports racing, leaves an extra record of a report
        that was not stored (its request_id is not the stored outcome's), never a gap.

        A wound may be reported again under another client key (a correction, or a later end): its outcome is its
        latest report by `recorded_at`. Every report is indexed by wound, and the answer (a retry's too) warns how
        many other reports the wound has (`wound_already_reported`); of two racing, the later one sees the other."""
        outcome = parse_outcome(request)
        key = f"outcomes/{_digest(outcome['client_key'])}.json"
        record = {
            **outcome,
            "recorded_at": dt.datetime.now(dt.UTC).isoformat(),
            "request_id": request_id,
            "recorded_by": actor,
        }
        status = 200
        if not self.store.exists(key):  # a retry of a recorded outcome is answered below, with no new record
            self.audit.append(
                actor,
                "outcome.report",
                outcome["wound_key"],
                "wound end reported by the EHR",
                {"end_reason": outcome["end_reason"], "object_key": key, "request_id": request_id},
            )
            if self.store.put_if_absent(key, json.dumps(record, sort_keys=True, indent=2).encode()):
                metrics.add_metric(name="OutcomesRecorded", unit=MetricUnit.Count, value=1)
                status = 201
        first = record if status == 201 else self.store.get_json(key)
        if any(first[name] != outcome[name] for name in OUTCOME_FIELDS):
            raise ApiError(
                409,
                "client_key_reused",
                "this client_key was used for a different outcome",
                [_finding("conflict", "client_key", "already recorded with other values")],
            )
        others = self._index_report(outcome, key, first["recorded_at"])
        body = {"recorded": status == 201, "outcome": first, "warnings": _other_reports_warning(others)}
        return Reply(status, {"api_version": API_VERSION, **body})

    def _index_report(self, outcome: Mapping[str, str], key: str, recorded_at: str) -> int:
        """Index a stored report under its wound (again, on a retry: the first may have stopped short); the number
        of the wound's other reports."""
        reports = f"outcomes-by-wound/{_digest(outcome['wound_key'])}/"
        entry = json.dumps({"outcome_key": key, "recorded_at": recorded_at}).encode()
        self.store.put_if_absent(f"{reports}{_digest(outcome['client_key'])}.json", entry)
        return len(self.store.list(reports)) - 1

    def _describe(self, model: LoadedModel | None) -> dict[str, Any] | None:
        if model is None:
            return None
        record = model.record
        cards = {name: self.store.uri(key) for name, key in record.artifacts.items() if name.startswith("model_card")}
        return {
            "version": record.version,
            "status": record.status,
            "created_at": record.created_at,
            "dataset_version": record.dataset_version,
            "code_version": record.code_version,
            "metrics": {
                name: _stated_metric(name, value) for name, value in (record.metrics.get("candidate") or {}).items()
            },
            "model_card": cards,
        }


def _stated_metric(name: str, value: Any) -> Any:
    """A headline metric to the answer's precision: weeks as weeks, scores (C-index, AUC, Brier) as scores; a
    non-finite one (never registered: the pipeline stores None) as None."""
    if not isinstance(value, float):
        return value
    return rounded(value, WEEKS if name.endswith("_weeks") else SCORE) if math.isfinite(value) else None


def _digest(text: str) -> str:
    """The store's name for a caller's key: fixed length, safe in any path, and no PHI in object keys."""
    return hashlib.sha256(text.encode()).hexdigest()


def _other_reports_warning(others: int) -> list[dict[str, str]]:
    if not others:
        return []
    message = f"{others} other report(s) of this wound under other client keys: the latest is its outcome"
    return [_finding("wound_already_reported", "wound_key", message)]


def parse_outcome(request: Mapping[str, Any]) -> dict[str, str]:
    """The outcome fields of a POST /v1/outcomes body, or ApiError 422 naming each bad field."""
    errors = [
        _finding("unknown_field", str(k), "not a field of an outcome") for k in request if k not in OUTCOME_FIELDS
    ]
    for name in OUTCOME_FIELDS:
        value = request.get(name)
        if value is None:
            errors.append(_finding("missing_required", name, f"{name} is required"))
        elif not isinstance(value, str):
            errors.append(_finding("bad_type", name, f"{name} must be a string"))
    if not errors:
        errors += _outcome_rules(request)
    if errors:
        raise ApiError(422, "invalid_outcome", "the outcome is invalid", errors)
    # keys forgive surrounding spaces, as in a prediction request, so outcomes join the captured predictions
    return {name: request[name].strip() if name == "wound_key" else request[name] for name in OUTCOME_FIELDS}


def _outcome_rules(request: Mapping[str, Any]) -> list[dict[str, str]]:
    errors = []
    if not CLIENT_KEY.fullmatch(request["client_key"]):
        errors.append(_finding("bad_format", "client_key", "1-128 characters of A-Z a-z 0-9 . _ : -"))
    if not request["wound_key"].strip() or len(request["wound_key"]) > 128:
        errors.append(_finding("bad_format", "wound_key", "a non-blank key of at most 128 characters"))
    if request["end_reason"] not in OUTCOME_REASONS:
        errors.append(_finding("bad_enum", "end_reason", f"end_reason is one of {', '.join(OUTCOME_REASONS)}"))
    day = _iso_date(request["end_date"])
    if day is None or not EARLIEST_DATE <= day <= latest_date_anywhere():
        errors.append(_finding("bad_date", "end_date", "an ISO date YYYY-MM-DD, not in the future"))
    return errors


def _iso_date(text: str) -> dt.date | None:
    if not re.match(ISO_DATE, text, re.ASCII):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


# --- process-wide instance --------------------------------------------------------------------------------


def start(loader: Loader = load_compiled) -> Server:
    """Read the configuration, open the services and load the models (the Lambda cold start)."""
    settings = load_serving_settings()
    return Server(
        settings=settings,
        store=open_store(settings.store_url),
        registry=open_registry(settings.registry_url),
        audit=open_audit_log(settings.audit_url),
        capture=open_capture(settings.capture_target()),
        catalog=load_catalog(),
        rules=load_rules(),
        loader=loader,
    )


@lru_cache(maxsize=1)
def get_server() -> Server:
    """The process's server, started on first use; tests clear it with `get_server.cache_clear()`."""
    return start()


def caller(identity: Mapping[str, Any] | None) -> str:
    """Who called, for the audit log: the IAM principal API Gateway verified (SigV4), else the API itself."""
    identity = identity or {}
    return str(identity.get("userArn") or identity.get("caller") or ACTOR)
