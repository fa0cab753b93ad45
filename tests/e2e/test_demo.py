"""`woundcare demo` end to end through the installed console script, on a small cohort in a temporary home:
synthetic extract -> the real training ASL -> approval -> the served API over HTTP -> predictions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from woundcare_shared.audit import open_audit_log
from woundcare_shared.demo import HOME_MARKER, fresh_home
from woundcare_shared.registry import PRODUCTION, open_registry

WOUNDCARE = Path(sys.executable).with_name("woundcare")  # the console script of the environment running the tests
# The steps and the API are under test here, not the model: fewer boosting rounds compile to native code faster.
SMALL_MODEL = {"WOUNDCARE_MODEL_MAX_ITER": "30"}


def demo(home: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `woundcare demo` on 150 patients in `home`, with only the given WOUNDCARE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOUNDCARE_")} | settings
    command = [str(WOUNDCARE), "demo", "--patients", "150", "--home", str(home), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict:
    """One demo run: its process, its home and its JSON summary."""
    root = tmp_path_factory.mktemp("demo")
    done = demo(root / "home", "--json", str(root / "summary.json"), **SMALL_MODEL)
    assert done.returncode == 0, done.stderr
    return {"done": done, "home": root / "home", "summary": json.loads((root / "summary.json").read_text())}


def test_each_step_prints_one_line_with_its_timing(finished):
    lines = finished["done"].stdout.splitlines()
    steps = [line for line in lines if re.match(r"\[\d/6\] ", line)]
    assert [s[:5] for s in steps] == [f"[{n}/6]" for n in range(1, 7)]
    assert all(re.search(r"\(\d+\.\d s\)$", step) for step in steps)
    assert "registered as shadow" in steps[2] and "http://127.0.0.1:" in steps[4]
    assert finished["done"].stderr == ""


def test_the_pipeline_registered_a_model_that_the_demo_approved_into_production(finished):
    # Given the demo's run (its own home, its own registry and audit log)
    summary, home = finished["summary"], finished["home"]
    pipeline = summary["pipeline"]
    # Then the pipeline registered a model that passed the gates
    assert pipeline["outcome"] == "succeeded" and pipeline["dataset_version"].startswith("ds-")
    assert pipeline["metrics"]["harrell_c"] >= pipeline["gates"]["min_c_index"]
    # And that model is in production, approved by a named local user with the demo's reason, audited
    database = f"sqlite://{home / 'woundcare.db'}"
    record = open_registry(database).get(pipeline["model_version"])
    assert record.status == PRODUCTION and record.run_id == pipeline["run_id"]
    (approval,) = [r for r in open_audit_log(database).records() if r.action == "model.approve"]
    assert approval.subject == record.version and approval.reason == "demo: approved for local demonstration"
    assert approval.actor == summary["approved_by"] and approval.actor
    assert open_audit_log(database).verify() == []


def test_the_served_api_answered_real_predictions_from_the_approved_model(finished):
    api, version = finished["summary"]["api"], finished["summary"]["pipeline"]["model_version"]
    assert api["model"] == {"production": version, "shadow": None}
    assert api["derive"]["area_cm2"] > 0 and api["derive"]["push_total"] is not None
    predictions = api["predictions"]
    assert len(predictions) == 3 and len({p["wound_type"] for p in predictions}) == 3
    for p in predictions:
        assert p["model_version"] == version and p["area_cm2"] > 0
        low, high = p["median_interval_weeks"]
        assert 0 < low <= p["median_weeks"] <= high
        assert 0 <= p["p_healed_12w"] <= 1 and p["progress_score"] is not None
        ranks = [o["rank"] for o in p["options"]]
        assert 1 <= len(ranks) <= 3 and ranks == list(range(1, len(ranks) + 1))
        assert all(o["expected_cost_usd"] > 0 and o["plan"]["primary_dressing"] for o in p["options"])


def test_predictions_print_readably_with_the_wound_id_and_no_patient_identifier(finished):
    out = finished["done"].stdout
    for p in finished["summary"]["api"]["predictions"]:
        assert f"wound {p['wound_key']}: {p['wound_type'].replace('_', ' ')}" in out
    assert "P(healed by 12 weeks)" in out and "treatment options (fastest first" in out
    assert re.search(r"\bP\d{7}\b", out) is None  # synthetic patient keys look like P0000042


def test_a_run_the_gates_reject_exits_non_zero_naming_the_end_state(tmp_path):
    # Given a C-index floor no model can reach
    done = demo(tmp_path / "home", **SMALL_MODEL, WOUNDCARE_GATE_MIN_C_INDEX="0.999")
    # Then the demo stops after the pipeline, exit code 1, with the end state and the failed gate in words
    assert done.returncode == 1
    failed = "error: step 3/6 (training pipeline) failed: the training pipeline ended RejectedByGates"
    assert done.stderr.startswith(failed)
    assert "below the floor 0.999" in done.stderr and "[4/6]" not in done.stdout


def test_the_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    done = demo(tmp_path)
    assert done.returncode == 1 and "was not made by the demo" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_a_home_an_earlier_demo_made_is_emptied_for_a_clean_rerun(tmp_path):
    home = tmp_path / "home"
    fresh_home(home)
    (home / "woundcare.db").write_text("an earlier run's state")
    fresh_home(home)
    assert [p.name for p in home.iterdir()] == [HOME_MARKER]
