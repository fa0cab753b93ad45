"""Run tracking contract: the SQLite and DynamoDB (moto) adapters behave the same."""

from __future__ import annotations

import pytest

from woundcare_shared.runs import (
    FAILED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    RunError,
    RunFinishedError,
    RunNotFoundError,
    RunTracker,
)

INPUTS = {"extract": "s3://bucket/landing/2026-11-27/", "dataset_version": "ds-1f2e"}
PARAMETERS = {"max_depth": 6, "learning_rate": 0.1, "horizons_days": [28, 84]}


def start(runs: RunTracker, run_id: str = "run-1"):
    return runs.start(run_id, INPUTS, PARAMETERS)


def test_a_started_run_records_inputs_and_parameters_and_is_running(runs):
    started = start(runs)
    stored = runs.get("run-1")
    assert stored == started
    assert (stored.inputs, stored.parameters) == (INPUTS, PARAMETERS)
    assert (stored.outcome, stored.ended_at, stored.stages, stored.metrics) == (RUNNING, "", {}, {})


def test_starting_a_run_again_returns_the_first_record(runs):
    first = start(runs)
    again = runs.start("run-1", {"extract": "other"}, {})
    assert again == first
    assert [r.run_id for r in runs.list()] == ["run-1"]


def test_a_stage_that_succeeds_is_recorded_with_its_duration(runs):
    # Given a started run
    start(runs)
    # When a stage does its work inside the tracker's stage block
    with runs.stage("run-1", "validate"):
        seen_while_running = runs.get("run-1").stages["validate"]["status"]
        sum(range(10_000))
    # Then it was visible as running, and is now succeeded with a duration
    entry = runs.get("run-1").stages["validate"]
    assert seen_while_running == RUNNING
    assert (entry["status"], entry["error"]) == (SUCCEEDED, "")
    assert 0 < entry["duration_s"] < 60
    assert entry["started_at"] >= runs.get("run-1").started_at


def test_a_stage_that_fails_is_recorded_by_error_type_only_and_the_error_propagates(runs):
    start(runs)
    with pytest.raises(ValueError, match="patient p-123"), runs.stage("run-1", "train"):
        raise ValueError("bad value for patient p-123")
    entry = runs.get("run-1").stages["train"]
    assert (entry["status"], entry["error"]) == (FAILED, "ValueError")
    assert "p-123" not in str(runs.get("run-1"))


def test_stages_accumulate_and_a_retried_stage_replaces_its_entry(runs):
    start(runs)
    with pytest.raises(RuntimeError), runs.stage("run-1", "train"):
        raise RuntimeError
    with runs.stage("run-1", "train"):
        pass
    with runs.stage("run-1", "evaluate"):
        pass
    stages = runs.get("run-1").stages
    assert {name: s["status"] for name, s in stages.items()} == {"train": SUCCEEDED, "evaluate": SUCCEEDED}


def test_concurrent_stage_updates_are_all_kept(runs, race):
    # Given parallel branches of one run recording their stages at the same moment
    start(runs)
    race(*[lambda i=i: runs.record_stage("run-1", f"branch-{i}", {"status": SUCCEEDED}) for i in range(4)])
    # Then no branch's entry was lost
    assert sorted(runs.get("run-1").stages) == [f"branch-{i}" for i in range(4)]


def test_metrics_merge_across_calls_and_keep_exact_values(runs):
    start(runs)
    runs.add_metrics("run-1", {"c_index": 0.7312345678901234, "rows": {"clean": 950, "quarantined": 50}})
    runs.add_metrics("run-1", {"ibs": 0.12, "c_index": 0.74})
    runs.add_metrics("run-1", {})
    assert runs.get("run-1").metrics == {"c_index": 0.74, "rows": {"clean": 950, "quarantined": 50}, "ibs": 0.12}


def test_finish_records_the_outcome_and_repeating_it_is_harmless(runs):
    start(runs)
    finished = runs.finish("run-1", SKIPPED, "no new data since the production model")
    assert (finished.outcome, finished.reason) == (SKIPPED, "no new data since the production model")
    assert finished.ended_at >= finished.started_at
    assert runs.finish("run-1", SKIPPED) == finished


def test_a_finished_run_cannot_end_a_second_way(runs):
    start(runs)
    runs.finish("run-1", FAILED, "validation: too many quarantined rows")
    with pytest.raises(RunFinishedError, match="'failed'"):
        runs.finish("run-1", SUCCEEDED)
    assert runs.get("run-1").outcome == FAILED


def test_unknown_outcomes_and_unknown_runs_are_refused(runs):
    start(runs)
    with pytest.raises(RunError):
        runs.finish("run-1", "done")
    with pytest.raises(RunNotFoundError):
        runs.get("run-404")
    with pytest.raises(RunNotFoundError):
        runs.add_metrics("run-404", {"x": 1})
    with pytest.raises(RunNotFoundError):
        runs.finish("run-404", SUCCEEDED)
    assert [r.run_id for r in runs.list()] == ["run-1"]


def test_runs_are_listed_newest_first(runs):
    for run_id in ["run-a", "run-b", "run-c"]:
        start(runs, run_id)
    assert [r.run_id for r in runs.list()] == ["run-c", "run-b", "run-a"]
