"""The real training ASL runs end to end under the embedded runtime (moto's interpreter, in-process Lambdas)
on small synthetic extracts: registration with lineage, run record and audit chain; every way a run can end."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from model_build.synth import SynthConfig, generate_cohort, write_cohort
from woundcare_shared.audit import get_audit_log, open_audit_log
from woundcare_shared.cli import main
from woundcare_shared.embedded import LambdaContext
from woundcare_shared.pipeline import run_local, run_summary, stage_key
from woundcare_shared.registry import PRODUCTION, SHADOW, get_registry, open_registry
from woundcare_shared.runs import FAILED, SKIPPED, SUCCEEDED, get_run_tracker, open_run_tracker
from woundcare_shared.settings import get_settings
from woundcare_shared.storage import get_store, open_store

# Must precede the first scikit-learn import of the session (see pipeline.run_local): stages run on threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[2]
EXTRACT_DATE = dt.date(2025, 12, 31)  # the synthetic cohort's extract date
# A small, fast model: the pipeline's mechanics are under test here, not the model's quality.
FAST = {"model_max_iter": "20", "model_min_samples_leaf": "20"}
STAGE_ACTIONS = ["dataset.snapshot", "dataset.validate", "drift.check", "model.train", "model.evaluate"]
_CACHED = (get_settings, get_store, get_registry, get_audit_log, get_run_tracker)


@contextmanager
def woundcare_env(home: Path, **settings: str) -> Iterator[None]:
    """WOUNDCARE_* variables for a block, with the cached services forgotten on the way in and out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WOUNDCARE_HOME", str(home))
        for name in ("STORE_URL", "REGISTRY_URL", "AUDIT_URL", "RUNS_URL", "FAULT_INJECTION"):
            patch.delenv(f"WOUNDCARE_{name}", raising=False)
        for name, value in settings.items():
            patch.setenv(f"WOUNDCARE_{name.upper()}", value)
        for cached in _CACHED:
            cached.cache_clear()
        yield
        for cached in _CACHED:
            cached.cache_clear()


def services(home: Path):
    database = f"sqlite://{home / 'woundcare.db'}"
    return (
        open_store(f"file://{home / 'store'}"),
        open_registry(database),
        open_audit_log(database),
        open_run_tracker(database),
    )


def states(result) -> list[str]:
    return [e.state for e in result.events if e.kind == "entered"]


def attempts(result, state: str) -> int:
    return max(e.attempt for e in result.events if e.kind == "task_scheduled" and e.state == state)


@pytest.fixture(scope="module")
def extracts(tmp_path_factory) -> dict[str, Path]:
    """A clean 300-patient extract and a dirty one (a fifth of the rows corrupted)."""
    root = tmp_path_factory.mktemp("extracts")
    for name, dirt in (("clean", 0.0), ("dirty", 0.2)):
        write_cohort(generate_cohort(SynthConfig(n_patients=300, seed=3, dirty_share=dirt)), root / name)
    return {"clean": root / "clean", "dirty": root / "dirty"}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, extracts) -> dict:
    """`woundcare pipeline run` on the clean extract in a fresh home: its output and run id."""
    home = tmp_path_factory.mktemp("home")
    with woundcare_env(home, **FAST), pytest.MonkeyPatch.context() as patch:
        lines: list[str] = []
        patch.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
        code = main(["pipeline", "run", str(extracts["clean"]), "--extract-date", EXTRACT_DATE.isoformat()])
    output = "\n".join(lines)
    run_id = output.splitlines()[0].split()[2]
    return {"home": home, "code": code, "output": output, "run_id": run_id}


def test_clean_extract_registers_a_shadow_model_with_lineage_run_record_and_audit_chain(first_run):
    # Given a clean synthetic extract and no model in the registry (first_run ran the CLI on it)
    store, registry, audit, runs = services(first_run["home"])
    run_id = first_run["run_id"]
    # Then the run succeeded and the CLI showed each stage and the summary
    assert first_run["code"] == 0
    for state in ("Snapshot", "Validate", "DriftCheck", "Train", "Evaluate", "Register", "Registered"):
        assert f"-> {state}" in first_run["output"]
    assert "== succeeded" in first_run["output"] and "metrics vs gates" in first_run["output"]
    # And one model version, in shadow, whose lineage names the run and the dataset version
    (model,) = registry.list()
    snapshot = store.get_json(stage_key(run_id, "snapshot"))
    assert (model.status, model.run_id, model.dataset_version) == (SHADOW, run_id, snapshot["dataset_version"])
    assert model.parameters["max_iter"] == 20 and model.code_version
    assert model.metrics["candidate"]["harrell_c"] > 0.6
    assert 0.5 < model.metrics["candidate"]["harrell_c_first_visit"] < 1.0  # the prediction at presentation
    # And its artifacts are in the store: native bundle, model, card data, drift reference profile
    for key in ("native_bundle", "native_model", "model", "model_card_data", "reference_profile", "evaluation"):
        assert store.exists(model.artifacts[key]), key
    bundle = store.get_json(model.artifacts["native_bundle"])
    assert bundle["metadata"]["feature_names"] and "parity" in bundle
    card = store.get_json(model.artifacts["model_card_data"])
    assert card["dataset_version"] == model.dataset_version and card["baselines"] and card["evaluation"]["by"]
    assert store.get_bytes(model.artifacts["model_card"]).startswith(b"<!doctype html>")
    # And the dataset version is the immutable snapshot of exactly the three contract tables
    manifest = store.get_json(snapshot["manifest_key"])
    assert sorted(manifest["tables"]) == ["assessments", "patients", "wounds"]
    # And the run record holds every stage as succeeded, the counts and the outcome
    record = runs.get(run_id)
    assert record.outcome == SUCCEEDED and record.reason == f"model {model.version} registered as shadow"
    stages = ["snapshot", "validate", "drift_check", "train", "evaluate", "register", "finish"]
    assert [name for name in stages if record.stages[name]["status"] == SUCCEEDED] == stages
    assert record.metrics["validation"]["quarantined_rows"] == 0
    assert record.inputs["extract_date"] == EXTRACT_DATE.isoformat()
    # And the audit chain records each stage once, in order, and is intact
    actions = [r.action for r in audit.records() if r.details.get("run_id") == run_id]
    assert actions == [*STAGE_ACTIONS, "model.register", "run.finish"]
    assert audit.verify() == []


def test_same_extract_again_gives_the_same_dataset_version_and_no_retrain_against_its_own_model(first_run, extracts):
    # Given the first run's model promoted to production, and the same extract landing again
    home = first_run["home"]
    store, registry, _, runs = services(home)
    (model,) = registry.list()
    registry.transition(model.version, SHADOW, PRODUCTION, "clinical-lead", "approved for the test")
    datasets_before = store.list("datasets/")
    # When the pipeline runs on it, not forced
    with woundcare_env(home, **FAST):
        result = run_local(extracts["clean"], extract_date=EXTRACT_DATE, run_id="same-extract-again")
    # Then the run ends NoRetrainNeeded: no drift against its own reference, no new matured outcomes
    assert result.succeeded and states(result)[-1] == "NoRetrainNeeded"
    drift = store.get_json(stage_key("same-extract-again", "drift_check"))
    assert drift["production_version"] == model.version
    assert (drift["drift_detected"], drift["new_matured_outcomes"], drift["retrain"]) == (False, 0, False)
    # And the snapshot found the same dataset version and wrote nothing new
    snapshot = store.get_json(stage_key("same-extract-again", "snapshot"))
    assert snapshot["dataset_version"] == model.dataset_version and snapshot["created"] is False
    assert store.list("datasets/") == datasets_before
    assert runs.get("same-extract-again").outcome == SKIPPED
    assert len(registry.list()) == 1


def test_stages_are_idempotent_on_the_run_id(first_run, monkeypatch):
    # Given a finished run, and each stage's handler called again with that run's id (a retry after a lost reply)
    monkeypatch.syspath_prepend(str(REPO))  # image handlers are module paths from the repository root
    from functions.register.app import lambda_handler as register_handler
    from functions.snapshot.app import lambda_handler as snapshot_handler

    home, run_id = first_run["home"], first_run["run_id"]
    store, registry, audit, _ = services(home)
    snapshot = store.get_json(stage_key(run_id, "snapshot"))
    registered = store.get_json(stage_key(run_id, "register"))
    audit_before, versions_before = len(audit.records()), len(registry.list())
    context = LambdaContext("register", "arn:aws:lambda:us-east-1:123456789012:function:register", 1024, 900)
    # When they run again
    with woundcare_env(home, **FAST):
        again = register_handler({"run_id": run_id, "dataset_version": snapshot["dataset_version"]}, context)
        snapshot_again = snapshot_handler({"run_id": run_id, "request": {"extract": "/nowhere"}}, context)
    # Then they return their first outputs and change nothing: no new model, no new audit record
    assert again == registered and snapshot_again == snapshot
    assert len(registry.list()) == versions_before and len(audit.records()) == audit_before


def test_dirty_extract_fails_the_run_with_data_quality_failed(tmp_path, extracts):
    # Given an extract with a fifth of its rows corrupted, above the 5 % quarantine limit
    with woundcare_env(tmp_path, **FAST):
        # When the pipeline runs on it
        result = run_local(extracts["dirty"], extract_date=EXTRACT_DATE, run_id="dirty")
    # Then the Choice stops it before DriftCheck with DataQualityFailed and the share in the cause
    assert (result.status, result.error) == ("FAILED", "DataQualityFailed")
    assert "DriftCheck" not in states(result) and "above the limit of 5.00%" in result.cause
    store, registry, audit, runs = services(tmp_path)
    record = runs.get("dirty")
    assert record.outcome == FAILED and record.reason == result.cause
    assert record.metrics["validation"]["quarantined_share"] > 0.05
    # And the quarantine and its report are kept for the data engineer; nothing was trained
    assert store.exists("runs/dirty/validation/quarantine.jsonl")
    assert registry.list() == []
    assert [r.action for r in audit.records()] == ["dataset.snapshot", "dataset.validate", "run.finish"]


def test_a_transient_stage_error_is_retried_and_the_run_goes_on(tmp_path, extracts):
    # Given Validate set to fail transiently on its first two attempts (fault injection)
    with woundcare_env(tmp_path, **FAST, fault_injection="validate:2"):
        # When the pipeline runs
        result = run_local(extracts["dirty"], extract_date=EXTRACT_DATE, run_id="flaky")
    # Then the state machine retried Validate, which succeeded on its third attempt, and the run went on
    assert attempts(result, "Validate") == 3
    failures = [e.error for e in result.events if e.kind == "task_failed" and e.state == "Validate"]
    assert failures == ["TransientStageError", "TransientStageError"]
    assert states(result)[:3] == ["Snapshot", "Validate", "DataQualityGate"]
    _, _, _, runs = services(tmp_path)
    assert runs.get("flaky").stages["validate"]["status"] == SUCCEEDED


def test_a_non_transient_error_is_not_retried_but_recorded_and_notified(tmp_path):
    # Given an extract folder without its tables
    (tmp_path / "empty").mkdir()
    with woundcare_env(tmp_path, **FAST):
        # When the pipeline runs on it
        result = run_local(tmp_path / "empty", run_id="no-tables")
    # Then Snapshot fails once (no retry), the Catch records the failure and the run ends PipelineFailed
    assert attempts(result, "Snapshot") == 1
    assert states(result) == ["Snapshot", "RecordFailure", "PipelineFailed"]
    assert (result.error, result.cause) == ("PipelineFailed", "ExtractNotFoundError in stage snapshot")
    _, _, audit, runs = services(tmp_path)
    assert runs.get("no-tables").outcome == FAILED
    assert [r.action for r in audit.records()] == ["run.finish"]


def test_failing_gates_end_the_run_rejected_by_gates_with_the_reasons(tmp_path, extracts):
    # Given a C-index floor no model reaches
    with woundcare_env(tmp_path, **FAST, gate_min_c_index="0.99"):
        # When the pipeline runs on a clean extract
        result = run_local(extracts["clean"], extract_date=EXTRACT_DATE, run_id="strict")
        summary = run_summary("strict")
    # Then it ends RejectedByGates, naming the failed gate, and registers nothing
    assert (result.status, result.error) == ("FAILED", "RejectedByGates")
    assert "below the floor 0.990" in result.cause and "Register" not in states(result)
    assert summary["evaluation"]["passed"] is False and summary["model_version"] is None
    _, registry, audit, runs = services(tmp_path)
    assert registry.list() == [] and runs.get("strict").reason == result.cause
    assert [r.action for r in audit.records()] == [*STAGE_ACTIONS, "run.finish"]


def test_registry_and_audit_commands_read_what_the_run_wrote(first_run):
    # Given the first run's home
    lines: list[str] = []
    with woundcare_env(first_run["home"]), pytest.MonkeyPatch.context() as patch:
        patch.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
        # When the registry is listed, one version shown and the audit log verified
        assert main(["registry", "list"]) == 0
        version = lines[1].split()[0]
        assert main(["registry", "show", version]) == 0
        shown = json.loads("\n".join(lines[2:]))
        del lines[:]
        assert main(["audit", "verify"]) == 0
    # Then they show the registered model and an intact chain
    assert shown["run_id"] == first_run["run_id"] and shown["version"] == version
    assert lines == ["audit log intact"]
