"""The inference API end to end: Chalice's test client and real API Gateway proxy events routed by the template's
paths, over a registry and store built here (a small model compiled, uploaded, registered in shadow or production).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import logging
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import jsonschema_rs
import pytest
from chalice.test import Client
from woundcare_testing import wound_history

from model_build.costs import load_catalog
from model_build.predict import OptionsRequest, Scorer, predict_history
from model_build.recommend import load_rules
from woundcare_scoring.healing import CompiledHealingModel
from woundcare_shared import serving
from woundcare_shared.audit import AuditError, open_audit_log
from woundcare_shared.embedded import parse_cfn_yaml
from woundcare_shared.registry import PRODUCTION, SHADOW, open_registry, version_id
from woundcare_shared.storage import open_store

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "functions" / "inference" / "app.py"
TEMPLATE = ROOT / "template.yaml"
JSON = {"Content-Type": "application/json"}


def _register(home: Path, bundle: Path, run_id: str, status: str = SHADOW) -> str:
    """Upload a compiled bundle under models/<version>/native/ and register it as the pipeline does."""
    store, registry = open_store(f"file://{home / 'store'}"), open_registry(f"sqlite://{home / 'woundcare.db'}")
    version = version_id(run_id)
    for path in sorted(bundle.iterdir()):
        store.put_file(f"models/{version}/native/{path.name}", path)
    store.put_json(f"models/{version}/card.json", {"model_version": version})
    artifacts = {
        "native_bundle": f"models/{version}/native/bundle.json",
        "native_model": f"models/{version}/native/model.so",
        "model_card_data": f"models/{version}/card.json",
    }
    metrics = {"candidate": {"harrell_c": 0.7123456789, "mae_weeks": 1.9923103, "ibs": None}}
    registry.register(run_id=run_id, created_by="test", dataset_version="ds-1", code_version="test",
                      parameters={}, metrics=metrics, artifacts=artifacts,
                      status=SHADOW, reason="passed the quality gates")  # fmt: skip
    if status == PRODUCTION:
        registry.transition(version, SHADOW, PRODUCTION, "clinical-lead", "live evidence reviewed")
    return version


def _start(monkeypatch: pytest.MonkeyPatch, home: Path, capture: str | None = None):
    """Point the process at `home`, start a fresh server and (re)import the app: a cold start."""
    monkeypatch.setenv("WOUNDCARE_HOME", str(home))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    if capture:
        monkeypatch.setenv("WOUNDCARE_CAPTURE_URL", capture)
    serving.get_server.cache_clear()
    spec = importlib.util.spec_from_file_location("inference_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def _captures(home: Path) -> list[dict]:
    """The captured records, each checked against the capture schema the OpenAPI document publishes."""
    path = home / "captures" / "predictions.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for record in records:
        CAPTURE_SCHEMA.validate(record)
    return records


CAPTURE_SCHEMA = jsonschema_rs.validator_for(
    json.loads((APP.parent / "openapi.json").read_text())["components"]["schemas"]["PredictionCapture"]
)


@pytest.fixture(scope="module")
def history(small_cohort):
    """An open wound's first two visits as the EHR sends them."""
    _, clean, rows = small_cohort
    patient, wound, visits = wound_history(clean, rows.ids["wound_key"].iloc[0])
    return {"patient": patient, "wound": {**wound, "end_date": None, "end_reason": None}, "assessments": visits[:2]}


@pytest.fixture
def shadow_only(tmp_path, monkeypatch, small_bundle):
    version = _register(tmp_path, small_bundle, "run-shadow")
    return _start(monkeypatch, tmp_path), tmp_path, version


@pytest.fixture
def production_and_shadow(tmp_path, monkeypatch, small_bundle):
    production = _register(tmp_path, small_bundle, "run-prod", PRODUCTION)
    shadow = _register(tmp_path, small_bundle, "run-challenger")
    return _start(monkeypatch, tmp_path), tmp_path, production, shadow


def _post(app, path: str, body) -> SimpleNamespace:
    with Client(app) as client:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return client.http.post(path, headers=JSON, body=raw)


# --- shadow and production ---------------------------------------------------------------------------------


def test_a_shadow_only_model_is_scored_and_captured_but_its_clinical_output_withheld(shadow_only, history):
    # Given the only registered model is in shadow
    app, home, version = shadow_only
    # When the EHR asks for a prediction
    response = _post(app, "/v1/predictions", history)
    # Then it gets 200 with the derived fields, no clinical output, and the reason
    body = response.json_body
    assert response.status_code == 200
    assert body["clinical_output"] is None and body["model"] is None
    assert body["withheld"]["code"] == "model_in_shadow" and "shadow" in body["withheld"]["reason"]
    assert [row["assessment_key"] for row in body["derived"]] == [a["assessment_key"] for a in history["assessments"]]
    # And the shadow model was still scored and its answer captured
    (record,) = _captures(home)
    assert record["models"] == {"production": None, "shadow": version} and record["served_version"] is None
    assert record["outputs"][version]["status"] == "open" and record["request_id"] == body["request_id"]


def test_with_a_production_model_the_answer_is_production_and_the_shadow_is_only_captured(
    production_and_shadow, history, small_bundle
):
    # Given a production model and a shadow challenger
    app, home, production, shadow = production_and_shadow
    ask = {"objective": "cheapest", "horizon_weeks": 26, "min_p_healed_12w": 0.1, "max_options": 2}
    # When the EHR asks for a prediction with options
    response = _post(app, "/v1/predictions", {**history, "options": ask})
    # Then the answer is the production model's, exactly as predict_history gives it
    body = response.json_body
    assert response.status_code == 200 and body["withheld"] is None
    assert body["model"] == {"version": production, "status": "production"}
    compiled = CompiledHealingModel.load(small_bundle)
    patient, wound, visits = history["patient"], {**history["wound"], "end_reason": "open"}, history["assessments"]
    scorer = Scorer(production, compiled.margins, compiled.meta, compiled.summarise)
    expected = predict_history(patient, wound, visits, scorer, load_catalog(), load_rules(), OptionsRequest(**ask))
    assert body["clinical_output"] == json.loads(json.dumps(expected))
    ranked = body["clinical_output"]["options"]
    assert ranked["objective"] == "cheapest" and len(ranked["options"]) == 2 < ranked["ranked_plans"]
    # And the shadow model's answer is captured but appears nowhere in the response
    assert shadow not in response.body.decode()
    (record,) = _captures(home)
    assert set(record["outputs"]) == {production, shadow} and record["served_version"] == production


def test_integral_numbers_are_integers_in_the_options_as_in_the_history(production_and_shadow, history):
    app = production_and_shadow[0]
    response = _post(app, "/v1/predictions", {**history, "options": {"horizon_weeks": 26.0, "max_options": 2.0}})
    options = response.json_body["clinical_output"]["options"]
    assert response.status_code == 200 and options["horizon_weeks"] == 26 and len(options["options"]) == 2
    refused = _post(app, "/v1/predictions", {**history, "options": {"max_options": 2.5}})
    assert (refused.status_code, refused.json_body["errors"][0]["path"]) == (422, "options.max_options")


def test_a_horizon_beyond_the_models_is_capped_with_a_warning(production_and_shadow, history):
    app = production_and_shadow[0]
    response = _post(app, "/v1/predictions", {**history, "options": {"horizon_weeks": 104}})
    body = response.json_body
    horizon = body["clinical_output"]["options"]["horizon_weeks"]
    assert response.status_code == 200 and horizon == body["clinical_output"]["prediction"]["horizon_weeks"] < 104
    (capped,) = [w for w in body["warnings"] if w["code"] == "horizon_capped"]
    assert capped["path"] == "options.horizon_weeks" and str(horizon) in capped["message"]
    within = _post(app, "/v1/predictions", {**history, "options": {"horizon_weeks": horizon}}).json_body
    assert not any(w["code"] == "horizon_capped" for w in within["warnings"])


# The decimals each kind of number is stated to, by the nearest key naming it (model_build/precision.py).
DECIMALS = [("usd", 2), ("weeks", 1), ("cm2", 2), ("cm3", 3), ("p_healed", 3), ("progress", 3), ("percent", 1),
            ("bmi", 1)]  # fmt: skip


def _floats(value, keys=()):
    """(the keys leading to it, value) for every float in a JSON value."""
    if isinstance(value, float):
        yield keys, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _floats(item, (*keys, key))
    elif isinstance(value, list):
        for item in value:
            yield from _floats(item, keys)


def _stated_decimals(keys) -> int:
    return next(d for key in reversed(keys) for pattern, d in DECIMALS if pattern in key)


def test_the_answer_states_its_numbers_at_clinical_precision_and_the_date_it_is_as_of(production_and_shadow, history):
    app, _, _, _ = production_and_shadow
    body = _post(app, "/v1/predictions", history).json_body
    # Then week 0 is the latest assessment's date
    assert body["as_of"] == max(visit["assessed_on"] for visit in history["assessments"])
    # and every computed number has its kind's decimals at most (a derived area is as given)
    computed = [{k: v for k, v in row.items() if k != "area_cm2"} for row in body["derived"]]
    numbers = list(_floats({"clinical_output": body["clinical_output"], "derived": computed}))
    assert len(numbers) > 300
    for keys, number in numbers:
        assert len(repr(number).partition(".")[2]) <= _stated_decimals(keys), keys
    # and counts are integers
    assert all(isinstance(v["push_total"], int) for v in body["clinical_output"]["progress"]["visits"])


@pytest.mark.parametrize("end_reason", ["died", "amputated", "healed"])
def test_a_wound_whose_record_ends_it_gets_no_prediction_and_the_status_says_why(
    production_and_shadow, history, end_reason
):
    # Given an open last visit, and the wound's record ending it that day
    app, home, production, _ = production_and_shadow
    wound = {**history["wound"], "end_reason": end_reason, "end_date": history["assessments"][-1]["assessed_on"]}
    body = _post(app, "/v1/predictions", {**history, "wound": wound, "options": {"horizon_weeks": 104}}).json_body
    # Then the answer says how it ended, with progress and no healing prediction, options or warnings about them,
    # and so does the capture
    output = body["clinical_output"]
    assert output["status"] == end_reason and output["progress"]["visits"]
    assert "prediction" not in output and "options" not in output and body["warnings"] == []
    assert _captures(home)[-1]["outputs"][production]["status"] == end_reason


@pytest.mark.parametrize("end_reason", ["discharged", "transferred"])
def test_a_discharged_wound_is_predicted_from_its_last_visit_with_a_warning(production_and_shadow, history, end_reason):
    app, _, _, _ = production_and_shadow
    wound = {**history["wound"], "end_reason": end_reason, "end_date": history["assessments"][-1]["assessed_on"]}
    body = _post(app, "/v1/predictions", {**history, "wound": wound}).json_body
    assert body["clinical_output"]["status"] == "open" and body["clinical_output"]["prediction"]["weekly"]
    (ended,) = [w for w in body["warnings"] if w["code"] == "course_ended"]
    assert ended["path"] == "wound.end_reason" and end_reason in ended["message"]
    assert not any(w["code"] == "course_ended" for w in _post(app, "/v1/predictions", history).json_body["warnings"])


def test_a_discharged_wound_whose_prediction_is_withheld_gets_no_course_ended_warning(shadow_only, history):
    app, _, _ = shadow_only
    wound = {**history["wound"], "end_reason": "discharged", "end_date": history["assessments"][-1]["assessed_on"]}
    body = _post(app, "/v1/predictions", {**history, "wound": wound}).json_body
    assert body["clinical_output"] is None and not any(w["code"] == "course_ended" for w in body["warnings"])


def test_the_capture_schema_refuses_a_record_with_a_patient_field_or_without_features(production_and_shadow, history):
    # Given a real captured record, which the schema accepts
    app, home, _, _ = production_and_shadow
    _post(app, "/v1/predictions", history)
    record = _captures(home)[-1]
    # Then a record that gained a patient field, or lost its features, is refused
    for broken in ({**record, "patient": history["patient"]}, {k: v for k, v in record.items() if k != "features"}):
        assert not CAPTURE_SCHEMA.is_valid(broken)


def test_model_route_names_the_versions_their_metrics_and_the_model_card(production_and_shadow):
    app, _, production, shadow = production_and_shadow
    with Client(app) as client:
        body = client.http.get("/v1/model").json_body
        health = client.http.get("/health").json_body
    assert body["production"]["version"] == production and body["shadow"]["version"] == shadow
    assert body["production"]["metrics"] == {"harrell_c": 0.712, "mae_weeks": 2.0, "ibs": None}  # as stated
    assert body["production"]["model_card"]["model_card_data"].endswith(f"models/{production}/card.json")
    assert health["status"] == "ok" and health["models"] == {"production": production, "shadow": shadow}


def test_a_bundle_altered_in_the_store_is_refused_at_load_and_nothing_is_served(tmp_path, monkeypatch, small_bundle):
    # Given a production model whose library was altered in the store after it was built
    version = _register(tmp_path, small_bundle, "run-tampered", PRODUCTION)
    library = tmp_path / "store" / "models" / version / "native" / "model.so"
    library.write_bytes(library.read_bytes() + b"\0")
    # When the API starts and is asked for a prediction
    app = _start(monkeypatch, tmp_path)
    with Client(app) as client:
        health = client.http.get("/health").json_body
    # Then the checksum check kept the model out, and health says so
    assert health["models"] == {"production": None, "shadow": None}
    assert (health["status"], health["unloaded"]) == ("degraded", [version])


def test_a_damaged_cached_copy_is_fetched_again_from_the_store(tmp_path, monkeypatch, small_bundle):
    # Given a production model served once, so its bundle sits in the model cache, and then damaged there
    version = _register(tmp_path, small_bundle, "run-cached", PRODUCTION)
    _start(monkeypatch, tmp_path)
    (cached,) = [p for p in tmp_path.rglob("model.so") if version in str(p) and "store" not in p.parts]
    cached.unlink()  # a new file: this process still maps the library it loaded
    cached.write_bytes(b"\0" * 64)
    # When the API starts again
    app = _start(monkeypatch, tmp_path)
    with Client(app) as client:
        health = client.http.get("/health").json_body
    # Then it verified the cache, found the damage, fetched the intact store copy and serves the model
    assert health["models"]["production"] == version and (health["status"], health["unloaded"]) == ("ok", [])
    assert cached.read_bytes() == (small_bundle / "model.so").read_bytes()


def test_a_capture_that_cannot_be_written_does_not_cost_the_answer(production_and_shadow, history, monkeypatch):
    # Given a capture sink that fails, as a full disk would
    app = production_and_shadow[0]

    def full_disk(record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serving.get_server().capture, "write", full_disk)
    # When the EHR asks for a prediction, Then it gets the clinical output all the same
    response = _post(app, "/v1/predictions", history)
    assert response.status_code == 200 and response.json_body["clinical_output"]["status"] == "open"


def test_no_model_at_all_still_answers_the_derived_fields(tmp_path, monkeypatch, history):
    app = _start(monkeypatch, tmp_path)
    body = _post(app, "/v1/predictions", history).json_body
    assert body["withheld"]["code"] == "no_model" and len(body["derived"]) == 2
    assert _captures(tmp_path) == []


# --- derive -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("newest_first", [False, True])
def test_derive_returns_the_latest_assessments_calculated_fields(shadow_only, history, newest_first):
    app, _, _ = shadow_only
    last = {**history["assessments"][-1], "length_cm": 2.0, "width_cm": 1.5, "area_cm2": None}
    visits = [last, history["assessments"][0]] if newest_first else [history["assessments"][0], last]
    response = _post(app, "/v1/assessments/derive", {**history, "assessments": visits})
    body = response.json_body
    assert response.status_code == 200 and body["ok"] is True and body["errors"] == []
    assert body["derived"]["assessment_key"] == last["assessment_key"]
    assert body["derived"]["area_cm2"] == 3.0 and body["derived"]["area_calculated"] is True


def test_derive_reports_errors_by_field_path_without_values(shadow_only, history):
    app, _, _ = shadow_only
    broken = {**history["assessments"][-1], "length_cm": 75.0, "exudate_amount": "SENTINEL-EXUDATE"}
    body = _post(app, "/v1/assessments/derive", {**history, "assessments": [broken]}).json_body
    assert body["ok"] is False and body["derived"] is None
    paths = {(e["code"], e["path"]) for e in body["errors"]}
    assert {("out_of_range", "assessments[0].length_cm"), ("bad_enum", "assessments[0].exudate_amount")} <= paths
    assert "SENTINEL" not in json.dumps(body)


# --- bad input ----------------------------------------------------------------------------------------------


def _case(history, **changes):
    """The history with one section's fields replaced: changes like patient={"age_years": "84"}."""
    out = json.loads(json.dumps(history))
    for section, fields in changes.items():
        if section == "assessments":
            out["assessments"][0].update(fields)
        else:
            out[section].update(fields)
    return out


BAD_INPUTS = [
    ("malformed JSON", lambda h: b'{"patient": ', 400, "malformed_json", None),
    ("not an object", lambda h: [h], 400, "bad_type", None),
    ("unknown top-level field", lambda h: {**h, "mrn": "x"}, 422, "invalid_request", "mrn"),
    ("unknown field in a section", lambda h: _case(h, patient={"name": "x"}), 422, "invalid_history", "patient.name"),
    ("wrong type", lambda h: _case(h, patient={"age_years": "84"}), 422, "invalid_history", "patient.age_years"),
    ("out of range", lambda h: _case(h, assessments={"length_cm": 61.0}), 422, "invalid_history",
     "assessments[0].length_cm"),
    ("contract violation", lambda h: _case(h, assessments={"compression": True, "ankle_brachial_index": 0.4}),
     422, "invalid_history", "assessments[0].compression"),
    ("bad option", lambda h: {**h, "options": {"horizon_weeks": 4}}, 422, "invalid_options", "options.horizon_weeks"),
    ("unknown option", lambda h: {**h, "options": {"seed": 1}}, 422, "invalid_options", "options.seed"),
    ("no options asked", lambda h: {**h, "options": {"max_options": 0}}, 422, "invalid_options", "options.max_options"),
    ("option of the wrong type", lambda h: {**h, "options": {"max_options": "3"}}, 422, "invalid_options",
     "options.max_options"),
    ("NaN", lambda h: json.dumps(_case(h, assessments={"pain_score": math.nan})).encode(), 400, "malformed_json", None),
    ("Infinity", lambda h: json.dumps(_case(h, patient={"age_years": math.inf})).encode(), 400, "malformed_json",
     None),
    ("a key twice", lambda h: json.dumps(h).replace('"patient": {', '"patient": {"sex": "female", ', 1).encode(),
     400, "malformed_json", None),
    ("byte order mark", lambda h: b"\xef\xbb\xbf" + json.dumps(h).encode(), 400, "malformed_json", None),
    ("UTF-16", lambda h: json.dumps(h).encode("utf-16"), 400, "malformed_json", None),
    ("unpaired surrogate", lambda h: json.dumps(_case(h, wound={"wound_key": "W\ud800"})).encode(), 400,
     "malformed_json", None),
    ("unpaired surrogate in a key", lambda h: json.dumps({**h, "\udc00": 1}).encode(), 400, "malformed_json", None),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "status", "code", "path"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_a_4xx_with_a_code_and_the_field_path(shadow_only, history, case, make, status, code, path):
    app, home, _ = shadow_only
    response = _post(app, "/v1/predictions", make(history))
    body = response.json_body
    assert (response.status_code, body["code"]) == (status, code)
    if path is not None:
        assert path in [e["path"] for e in body["errors"]]
    assert _captures(home) == []


def test_a_surrogate_pair_is_a_character_like_any_other(shadow_only, history):
    app, _, _ = shadow_only
    key = "W-\U0001f9b6"  # json.dumps escapes it as a surrogate pair
    visits = [{**visit, "wound_key": key} for visit in history["assessments"]]
    response = _post(app, "/v1/predictions", {**history, "wound": {**history["wound"], "wound_key": key},
                                               "assessments": visits})  # fmt: skip
    assert response.status_code == 200 and response.json_body["wound_key"] == key


def test_an_open_wound_recorded_with_area_zero_is_predicted_not_called_healed(production_and_shadow, history):
    # Given a latest visit measured 1.3 × 0.8 cm whose area was entered as 0 (closed means length = width = 0)
    app = production_and_shadow[0]
    visits = [*history["assessments"][:-1], {**history["assessments"][-1], "length_cm": 1.3, "width_cm": 0.8,
                                             "area_cm2": 0.0}]  # fmt: skip
    response = _post(app, "/v1/predictions", {**history, "assessments": visits})
    # Then the wound is open and gets its prediction
    output = response.json_body["clinical_output"]
    assert response.status_code == 200 and output["status"] == "open" and output["prediction"]["median_weeks"]


def test_a_body_that_is_not_declared_json_gets_the_documented_415(shadow_only, history):
    app, _, _ = shadow_only
    with Client(app) as client:
        response = client.http.post("/v1/predictions", headers={"Content-Type": "text/plain"}, body=b"{}")
    schemas = json.loads((APP.parent / "openapi.json").read_text())["components"]["schemas"]
    assert response.status_code == 415
    jsonschema_rs.validator_for(schemas["FrameworkError"]).validate(response.json_body)


def test_an_oversized_body_is_refused_with_413(shadow_only, history):
    app, _, _ = shadow_only
    padded = {**history, "assessments": history["assessments"] * 2000}
    response = _post(app, "/v1/predictions", padded)
    assert response.status_code == 413 and response.json_body["code"] == "payload_too_large"


# --- outcomes -----------------------------------------------------------------------------------------------


def test_an_outcome_is_recorded_once_per_client_key_and_audited(shadow_only):
    app, home, _ = shadow_only
    outcome = {"client_key": "ehr-42:closure", "wound_key": "w-7", "end_reason": "healed", "end_date": "2026-01-20"}
    first, retry = _post(app, "/v1/outcomes", outcome), _post(app, "/v1/outcomes", outcome)
    clash = _post(app, "/v1/outcomes", {**outcome, "end_reason": "died"})
    assert (first.status_code, first.json_body["recorded"]) == (201, True)
    assert (retry.status_code, retry.json_body["recorded"]) == (200, False)
    assert retry.json_body["outcome"]["request_id"] == first.json_body["request_id"]
    assert (clash.status_code, clash.json_body["code"]) == (409, "client_key_reused")
    store = open_store(f"file://{home / 'store'}")
    audit = [r for r in open_audit_log(f"sqlite://{home / 'woundcare.db'}").records() if r.action == "outcome.report"]
    assert len(store.list("outcomes/")) == 1 and len(audit) == 1 and audit[0].subject == "w-7"
    assert first.json_body["warnings"] == retry.json_body["warnings"] == []


def test_a_wound_reported_again_under_another_client_key_is_recorded_with_a_warning(shadow_only):
    # Given a wound reported healed, then amputated under another client key (a later end, or a correction)
    app, home, _ = shadow_only
    healed = {"client_key": "ehr-50", "wound_key": "w-50", "end_reason": "healed", "end_date": "2026-01-20"}
    amputated = {**healed, "client_key": "ehr-51", "end_reason": "amputated", "end_date": "2026-02-03"}
    first, second, retry = (_post(app, "/v1/outcomes", o) for o in (healed, amputated, amputated))
    # Then both are recorded; the second says the wound has another report, and so does its retry
    assert (first.status_code, first.json_body["warnings"]) == (201, [])
    assert second.status_code == 201 and retry.status_code == 200
    (warning,) = second.json_body["warnings"]
    assert (warning["code"], warning["path"]) == ("wound_already_reported", "wound_key")
    assert "1 other" in warning["message"] and retry.json_body["warnings"] == second.json_body["warnings"]
    # And the wound's index names both reports with when they were recorded
    store = open_store(f"file://{home / 'store'}")
    entries = [store.get_json(key) for key in store.list("outcomes-by-wound/")]
    recorded = {response.json_body["outcome"]["recorded_at"] for response in (first, second)}
    assert {entry["recorded_at"] for entry in entries} == recorded and len(store.list("outcomes/")) == 2


def test_an_outcomes_wound_key_forgives_surrounding_spaces_as_a_predictions_does(shadow_only):
    app, _, _ = shadow_only
    outcome = {"client_key": "ehr-45", "wound_key": " W0000001 ", "end_reason": "healed", "end_date": "2026-01-21"}
    response = _post(app, "/v1/outcomes", outcome)
    assert response.status_code == 201 and response.json_body["outcome"]["wound_key"] == "W0000001"


def test_an_outcome_with_an_unpaired_surrogate_is_refused_not_a_server_error(shadow_only):
    app, _, _ = shadow_only
    outcome = {"client_key": "ehr-46", "wound_key": "W\ud800", "end_reason": "healed", "end_date": "2026-01-21"}
    response = _post(app, "/v1/outcomes", outcome)
    assert (response.status_code, response.json_body["code"]) == (400, "malformed_json")


def test_an_outcome_is_never_stored_without_its_audit_record(shadow_only, monkeypatch):
    # Given an audit log that fails once, as a database outage would
    app, home, _ = shadow_only
    audit = serving.get_server().audit
    append = audit.append
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise AuditError("audit database unavailable")
        return append(*args, **kwargs)

    monkeypatch.setattr(audit, "append", failing_once)
    outcome = {"client_key": "ehr-43:closure", "wound_key": "w-8", "end_reason": "healed", "end_date": "2026-01-21"}
    # When the EHR reports a wound's end, and retries after the error
    failed, retried = _post(app, "/v1/outcomes", outcome), _post(app, "/v1/outcomes", outcome)
    # Then the failed report stored nothing, and the retry stored the outcome with its one audit record
    assert failed.status_code == 500 and (retried.status_code, retried.json_body["recorded"]) == (201, True)
    stored = open_store(f"file://{home / 'store'}").list("outcomes/")
    records = [r for r in open_audit_log(f"sqlite://{home / 'woundcare.db'}").records() if r.action == "outcome.report"]
    assert len(stored) == 1 and len(records) == 1
    assert records[0].details["request_id"] == retried.json_body["request_id"]


def test_a_report_whose_storing_failed_is_audited_and_its_retry_stored(shadow_only, monkeypatch):
    # Given an object store that fails once after the report was audited
    app, home, _ = shadow_only
    store = serving.get_server().store
    put_if_absent, calls = store.put_if_absent, []

    def failing_once(key, data):
        calls.append(key)
        if len(calls) == 1:
            raise OSError("store unavailable")
        return put_if_absent(key, data)

    monkeypatch.setattr(store, "put_if_absent", failing_once)
    outcome = {"client_key": "ehr-44:closure", "wound_key": "w-9", "end_reason": "healed", "end_date": "2026-01-22"}
    # When the EHR reports a wound's end, and retries after the error
    failed, retried = _post(app, "/v1/outcomes", outcome), _post(app, "/v1/outcomes", outcome)
    # Then both reports are audited and the retry's is the one stored
    assert failed.status_code == 500 and retried.status_code == 201
    records = [r for r in open_audit_log(f"sqlite://{home / 'woundcare.db'}").records() if r.action == "outcome.report"]
    outcome_puts = [key for key in calls if key.startswith("outcomes/")]
    assert [r.details["object_key"] for r in records] == outcome_puts and len(set(outcome_puts)) == 1
    stored = open_store(f"file://{home / 'store'}").get_json(calls[0])
    assert stored["request_id"] == retried.json_body["request_id"] == records[1].details["request_id"]


def test_a_report_stored_but_not_indexed_by_wound_is_indexed_by_its_retry(shadow_only, monkeypatch):
    # Given an object store that fails once on the per-wound index, after the outcome itself was stored
    app, home, _ = shadow_only
    store = serving.get_server().store
    put_if_absent, failed_once = store.put_if_absent, []

    def failing_on_the_index(key, data):
        if key.startswith("outcomes-by-wound/") and not failed_once:
            failed_once.append(key)
            raise OSError("store unavailable")
        return put_if_absent(key, data)

    monkeypatch.setattr(store, "put_if_absent", failing_on_the_index)
    outcome = {"client_key": "ehr-47", "wound_key": "w-47", "end_reason": "healed", "end_date": "2026-01-22"}
    failed, retried = _post(app, "/v1/outcomes", outcome), _post(app, "/v1/outcomes", outcome)
    # Then the retry answers the stored outcome and the wound's index names it
    assert failed.status_code == 500 and (retried.status_code, retried.json_body["recorded"]) == (200, False)
    assert open_store(f"file://{home / 'store'}").list("outcomes-by-wound/") == failed_once


@pytest.mark.parametrize(
    ("change", "path"),
    [({"end_reason": "open"}, "end_reason"), ({"end_date": "2999-01-01"}, "end_date"),
     ({"client_key": "a/b"}, "client_key"), ({"note": "x"}, "note"), ({"wound_key": 7}, "wound_key")],
)  # fmt: skip
def test_an_invalid_outcome_is_refused_with_the_field(shadow_only, change, path):
    app, _, _ = shadow_only
    outcome = {"client_key": "k1", "wound_key": "w-7", "end_reason": "healed", "end_date": "2026-01-20"}
    response = _post(app, "/v1/outcomes", {**outcome, **change})
    assert response.status_code == 422 and path in [e["path"] for e in response.json_body["errors"]]


def test_an_outcome_dated_today_where_it_is_latest_is_recorded_and_a_day_later_refused(shadow_only, monkeypatch):
    app, _, _ = shadow_only
    latest = dt.date(2026, 3, 2)  # a clinic at UTC+14 may report it today, while it is 1 March at the server
    monkeypatch.setattr(serving, "latest_date_anywhere", lambda: latest)
    outcome = {"client_key": "k-latest", "wound_key": "w-7", "end_reason": "healed", "end_date": latest.isoformat()}
    assert _post(app, "/v1/outcomes", outcome).status_code == 201
    later = {**outcome, "client_key": "k-later", "end_date": (latest + dt.timedelta(days=1)).isoformat()}
    assert _post(app, "/v1/outcomes", later).status_code == 422


# --- API Gateway events routed by the template -------------------------------------------------------------


def _template_routes() -> dict[str, set[str]]:
    """The API routes of the whole template, which must all be the inference function's events on InferenceApi."""
    resources = parse_cfn_yaml(TEMPLATE.read_text())["Resources"]
    routes: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        for event in (resource.get("Properties") or {}).get("Events", {}).values():
            if event["Type"] not in ("Api", "HttpApi"):
                continue
            assert logical_id == "InferenceFunction", logical_id  # no other function answers on the API
            assert event["Type"] == "Api"  # REST (v1) events: Chalice does not read HTTP API (v2) events
            assert event["Properties"]["RestApiId"] == {"Ref": "InferenceApi"}  # not SAM's implicit API
            routes.setdefault(event["Properties"]["Path"], set()).add(event["Properties"]["Method"].upper())
    return routes


def test_template_api_events_are_exactly_the_chalice_routes(shadow_only):
    app, _, _ = shadow_only
    chalice_routes = {path: set(methods) for path, methods in app.routes.items()}
    assert _template_routes() == chalice_routes


def _proxy_event(path: str, method: str, body: dict | None) -> dict:
    """An API Gateway REST proxy event for a resource declared in the template, as AWS sends it (IAM-signed)."""
    request_id = str(uuid.uuid4())
    stage = parse_cfn_yaml(TEMPLATE.read_text())["Resources"]["InferenceApi"]["Properties"]["StageName"]
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "identity": {
                "userArn": "arn:aws:sts::123456789012:assumed-role/ehr-integration/session",
                "sourceIp": "10.0.0.1",
            },
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def _context() -> SimpleNamespace:
    return SimpleNamespace(function_name="InferenceFunction", memory_limit_in_mb=1024, aws_request_id="lambda-1",
                           invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:inference",
                           get_remaining_time_in_millis=lambda: 29000)  # fmt: skip


def test_api_gateway_proxy_events_on_every_template_path_are_routed_and_answered(production_and_shadow, history):
    # Given the app behind API Gateway, which sends one event per declared resource
    app = production_and_shadow[0]
    bodies = {
        "/v1/predictions": history,
        "/v1/assessments/derive": history,
        "/v1/outcomes": {"client_key": "k-apigw", "wound_key": "w-1", "end_reason": "healed",
                         "end_date": "2026-01-02"},
    }  # fmt: skip
    expected = {"/v1/outcomes": 201}
    for path, methods in _template_routes().items():
        for method in methods:
            # When each is invoked as the Lambda handler with a real proxy event
            event = _proxy_event(path, method, bodies.get(path))
            response = app(event, _context())
            # Then it is routed to its view and answers JSON carrying API Gateway's request id
            body = json.loads(response["body"])
            assert response["statusCode"] == expected.get(path, 200), path
            if path != "/health" and path != "/v1/model":
                assert body["request_id"] == event["requestContext"]["requestId"]
    assert app(_proxy_event("/v1/predictions", "POST", history), _context())["statusCode"] == 200


def test_the_audit_names_the_iam_caller_api_gateway_verified(production_and_shadow):
    app, home, _, _ = production_and_shadow
    outcome = {"client_key": "k-iam", "wound_key": "w-2", "end_reason": "discharged", "end_date": "2026-01-03"}
    assert app(_proxy_event("/v1/outcomes", "POST", outcome), _context())["statusCode"] == 201
    (record,) = [r for r in open_audit_log(f"sqlite://{home / 'woundcare.db'}").records() if r.subject == "w-2"]
    assert record.actor.endswith("assumed-role/ehr-integration/session")


# --- observability and PHI ----------------------------------------------------------------------------------


@contextmanager
def _logger_lines(level: int | None = None) -> Iterator[io.StringIO]:
    """What the Powertools Logger writes meanwhile (at `level`, if given), formatted as in Lambda."""
    from woundcare_shared.observability import logger

    lines, before = io.StringIO(), logger.log_level
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    logger.setLevel(level or before)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def test_no_log_line_carries_row_values_and_the_capture_line_only_pseudonymous_keys(
    tmp_path, monkeypatch, small_bundle, history, capsys
):
    # Given the API in AWS mode (capture as a log line) and requests carrying recognisable values
    _register(tmp_path, small_bundle, "run-phi", PRODUCTION)
    app = _start(monkeypatch, tmp_path, capture="log://")
    sentinel = "SENTINEL-PHI-7731"
    good = json.loads(json.dumps(history))
    good["patient"]["patient_key"] = good["wound"]["patient_key"] = f"{sentinel}-patient"
    for i, visit in enumerate(good["assessments"]):
        visit["assessment_key"] = f"{sentinel}-visit-{i}"
    bad = _case(good, patient={"sex": f"{sentinel}-sex"}, assessments={"pain_score": 99})
    unknown = _case(good, patient={f"{sentinel}-field": "x"})  # a field name is the caller's text too
    capsys.readouterr()
    with _logger_lines(logging.DEBUG) as lines:  # the per-prediction line is DEBUG: it must be PHI-free too
        # When it answers a good request, two bad ones, and an outcome, through API Gateway events
        for body in (good, bad, unknown):
            app(_proxy_event("/v1/predictions", "POST", body), _context())
        outcome = {"client_key": "k-phi", "wound_key": "w-9", "end_reason": "healed", "end_date": "2026-01-05"}
        app(_proxy_event("/v1/outcomes", "POST", outcome), _context())
    stdout = capsys.readouterr().out.splitlines()
    # Then Logger wrote structured lines with the correlation id, and none carries a row value or a date
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert {"prediction served", "request refused"} <= {line["message"] for line in logged}
    assert all(line.get("correlation_id") for line in logged)
    dates = {v["assessed_on"] for v in good["assessments"]}
    everything = lines.getvalue() + "\n".join(stdout)
    captures = [line for line in stdout if '"capture":"prediction"' in line]
    assert len(captures) == 1
    assert sentinel not in everything
    assert not any(day in line for day in dates for line in [lines.getvalue(), *stdout])
    assert json.loads(captures[0])["wound_key"] == good["wound"]["wound_key"]
    CAPTURE_SCHEMA.validate(json.loads(captures[0]))


def test_a_predictions_lines_at_info_are_its_capture_and_its_metrics_both_naming_the_request(
    tmp_path, monkeypatch, small_bundle, history, capsys
):
    # Given the API in AWS mode at the default log level (INFO)
    _register(tmp_path, small_bundle, "run-lines", PRODUCTION)
    app = _start(monkeypatch, tmp_path, capture="log://")
    capsys.readouterr()
    event = _proxy_event("/v1/predictions", "POST", history)
    with _logger_lines() as lines:
        # When it answers one prediction
        assert app(event, _context())["statusCode"] == 200
    # Then no Logger line repeats it; the capture line and the EMF line each carry the API request id
    assert lines.getvalue() == ""
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    request_id = event["requestContext"]["requestId"]
    (capture,) = [line for line in printed if line.get("capture") == "prediction"]
    (emf,) = [line for line in printed if "_aws" in line]
    assert capture["request_id"] == emf["request_id"] == request_id
    assert emf["PredictionLatency"][0] > 0 and emf["model_versions"]["production"] == capture["served_version"]
