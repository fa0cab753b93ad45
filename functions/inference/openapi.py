"""The inference API's OpenAPI 3.1 document, built from the contract (model_build.schema) so the two never drift.

`python functions/inference/openapi.py` rewrites openapi.json next to it; a test holds the file equal to this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_build.derive import PUSH_TISSUE_SCORES
from model_build.features import FEATURE_NAMES
from model_build.plans import TREATMENT_COLUMNS
from model_build.precision import statement as precision_statement
from model_build.predict import FINAL_ENDS
from model_build.recommend import OBJECTIVES
from model_build.schema import ASSESSMENTS, PATIENTS, PI_STAGES_WITHOUT_DEPTH, WOUNDS, Column, Table
from model_build.trajectory import MILESTONE_WEEKS
from model_build.validate_history import MAX_ASSESSMENTS
from woundcare_shared.serving import (
    CAPTURE_KIND,
    CAPTURE_SCHEMA,
    OPTION_LIMITS,
    OUTCOME_FIELDS,
    OUTCOME_REASONS,
)

OUT = Path(__file__).with_name("openapi.json")
_KINDS = {"key": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "string", "enum": "string"}
# Contract fields required only in some cases (checked across fields): nullable here, with their condition said.
_CONDITIONS = {
    "pi_stage": "Required when wound_type is pressure_injury; null or absent otherwise.",
    "wagner_grade": "Required when wound_type is diabetic_foot_ulcer; null or absent otherwise.",
    "depth_cm": f"Required unless the wound's pi_stage is {', '.join(PI_STAGES_WITHOUT_DEPTH)}.",
}
_INHERITED = "May be left out: it is the request's wound.wound_key, which it must equal when given."


def _of(kind: str, nullable: bool = False, **keywords: Any) -> dict[str, Any]:
    """A schema of one JSON type, or of that type or null."""
    return {"type": [kind, "null"] if nullable else kind, **keywords}


def _object(properties: dict[str, Any], *optional: str, **keywords: Any) -> dict[str, Any]:
    """An object whose properties are all present but the `optional` ones; it may gain properties later."""
    required = [name for name in properties if name not in optional]
    return {"type": "object", **keywords, "required": required, "properties": properties}


def _array(items: dict[str, Any], **keywords: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **keywords}


def _ref(schema: str, nullable: bool = False) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"anyOf": [ref, {"type": "null"}]} if nullable else ref


def _column(column: Column, required: bool) -> dict[str, Any]:
    """One contract column. A required one is never null: the API takes null, absent and "" alike as missing."""
    schema = _of(_KINDS[column.kind], not required)
    if column.kind == "date":
        schema["format"] = "date"
    if column.kind == "key" and required:
        schema["minLength"] = 1
    if column.values:
        schema["enum"] = [*column.values] if required else [*column.values, None]
    if column.low is not None:
        schema |= {"minimum": column.low, "maximum": column.high}
    if column.name in _CONDITIONS:
        schema["description"] = _CONDITIONS[column.name]
    return schema


def _table(table: Table) -> dict[str, Any]:
    inherited = "wound_key" if table is ASSESSMENTS else None
    required = [c.name for c in table.columns if c.required and c.name != inherited]
    properties = {c.name: _column(c, c.name in required) for c in table.columns}
    if inherited:
        properties[inherited]["description"] = _INHERITED
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _refusals(*statuses: int) -> dict[str, Any]:
    words = {
        400: "not strict UTF-8 JSON (no byte order mark, NaN, Infinity, key twice or unpaired surrogate), or not "
        "an object",
        409: "client key used for another outcome",
        413: "body too large",
        422: "breaks the contract or the envelope (findings by path)",
    }
    return {str(s): _json("Error", words[s]) for s in statuses}


def _operation(operation_id: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    """One operation, with the refusals API Gateway answers itself in AWS (never the local server)."""
    gateway = {
        "403": _json("GatewayError", "API Gateway (AWS only): missing or invalid SigV4 signature, or access denied"),
        "429": _json("GatewayError", "API Gateway (AWS only): throttled; retry with backoff"),
    }
    return {"operationId": operation_id, "summary": summary, **more, "responses": {**responses, **gateway}}


def _post(operation_id: str, summary: str, request: str, ok: dict[str, Any], *refusals: int, **more: Any) -> dict:
    body = {"required": True, "content": {"application/json": {"schema": _ref(request)}}}
    responses = {
        **ok,
        **_refusals(*refusals),
        "415": _json("FrameworkError", "Content-Type is not application/json (Chalice's own error shape)"),
    }
    return {"post": _operation(operation_id, summary, responses, **more, requestBody=body)}


def _capture(options: dict[str, Any]) -> dict[str, Any]:
    """The record captured for every scored request (a log line in AWS, a JSONL line locally): not a response, the
    contract of the feedback loop's data. No patient field: the wound key is the EHR's pseudonymous one."""
    version = {"type": ["string", "null"]}
    versions = {
        "type": "object",
        "required": ["production", "shadow"],
        "additionalProperties": False,
        "properties": {"production": version, "shadow": version},
    }
    output = {
        "type": "object",
        "required": ["status", "median_weeks", "p_healed_by_week", "recommended", "progress_score"],
        "additionalProperties": False,
        "properties": {
            "status": {"enum": ["open", *FINAL_ENDS]},
            "median_weeks": {"type": ["number", "null"]},
            "p_healed_by_week": {"type": ["object", "null"], "additionalProperties": {"type": "number"}},
            "recommended": {"type": ["string", "null"]},
            "progress_score": {"type": ["number", "null"]},
        },
    }
    fields = ["capture", "schema", "request_id", "time", "wound_key", "models", "served_version", "options"]
    return {
        "description": "One captured prediction: ids, model versions, the latest visit's features, each model's "
        "summary. Shadow outputs appear here only.",
        "type": "object",
        "required": [*fields, "features", "outputs"],
        "additionalProperties": False,
        "properties": {
            "capture": {"const": CAPTURE_KIND},
            "schema": {"const": CAPTURE_SCHEMA},
            "request_id": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "wound_key": {"type": "string"},
            "models": versions,
            "served_version": {"type": ["string", "null"]},
            "options": {**options, "required": list(options["properties"])},
            "features": {
                "type": "object",
                "required": list(FEATURE_NAMES),
                "additionalProperties": False,
                "properties": {name: {"type": ["number", "string", "null"]} for name in FEATURE_NAMES},
            },
            "outputs": {"type": "object", "minProperties": 1, "additionalProperties": output},
        },
    }


def _clinical() -> dict[str, dict[str, Any]]:
    """The schemas of the clinical answer: derived fields, progress, trajectory and treatment options."""
    number, integer, text, flag = _of("number"), _of("integer"), _of("string"), _of("boolean")
    outcome = {
        "plan_id": text,
        "plan": _ref("TreatmentPlan"),
        "median_weeks": _of("number", True, description="null when it is not reached within the horizon"),
        "healing_weeks_p10_p90": _array(_of("number", True), minItems=2, maxItems=2),
        "restricted_mean_weeks": _of("number", description="expected weeks open within the horizon"),
        "p_healed_12w": number,
        "p_healed_by_horizon": number,
        "weekly_cost_usd": number,
        "expected_cost_usd": number,
        "cost_per_healed_usd": _of("number", True, description="null when no wound is expected to heal"),
        "meets_min_p_healed_12w": flag,
        "weekly_cost_items_usd": {"type": "object", "additionalProperties": number},
        "support": _of("integer", description="comparable training wounds that received the plan"),
        "low_support": flag,
        "caveats": _array(_ref("Caveat")),
    }
    visit = _object({"days_since_first_assessment": integer, "push_total": integer, "progress_score": number})
    return {
        "DerivedFields": _object(
            {
                "assessment_key": text,
                "area_cm2": _of("number", description="as given, or length × width when missing"),
                "area_calculated": flag,
                "volume_cm3": _of("number", True, description="area × depth; null without depth"),
                "bmi": _of("number", True, description="as given, or from weight and height when missing"),
                "bmi_calculated": flag,
                "wound_age_days": _of("integer", True, description="days since onset; null without onset_date"),
                "days_since_first_assessment": integer,
                "percent_area_reduction": _of(
                    "number", True, description="since the first assessment; null when its area was 0"
                ),
                "weekly_healing_rate_cm2": _of(
                    "number", True, description="cm² closed per week since the previous assessment (null at the first)"
                ),
                "push_area_score": integer,
                "push_exudate_score": integer,
                "push_tissue_score": integer,
                "push_total": _of("integer", description="PUSH 3.0 total"),
                "dominant_tissue": _of("string", enum=list(PUSH_TISSUE_SCORES)),
            },
            description="One assessment's auto-calculated fields (EHR extract contract).",
        ),
        "Progress": _object(
            {
                "push_total": integer,
                "push_change_since_first": _of("integer", description="negative: improving"),
                "push_change_since_previous": _of("integer", True, description="null at the first assessment"),
                "progress_score": _of("number", description="learned score of changes since the first assessment"),
                "progress_change_since_previous": _of("number", True, description="null at the first assessment"),
                "visits": _array(visit, minItems=1),
            },
            description="PUSH and the progress score at the latest assessment, and per assessment in date order.",
        ),
        "Trajectory": _object(
            {
                "horizon_weeks": integer,
                "median_weeks": _of("number", True, description="null when it is not reached within the horizon"),
                "median_interval_weeks": _array(_of("number", True), minItems=2, maxItems=2),
                "p_healed_by_week": {
                    "type": "object",
                    "description": f"at weeks {', '.join(map(str, MILESTONE_WEEKS))} within the horizon",
                    "additionalProperties": number,
                },
                "weekly": _object(
                    {
                        "week": _array(integer),
                        "p_healed": _array(number),
                        "area_cm2": _array(number),
                        "area_low_cm2": _array(number),
                        "area_high_cm2": _array(number),
                    },
                    description="one value per week 0..horizon_weeks, as columns",
                ),
            },
            description="When the wound is predicted to heal under its current plan, and its area week by week.",
        ),
        "TreatmentOptions": _object(
            {
                "objective": _of("string", enum=list(OBJECTIVES)),
                "min_p_healed_12w": number,
                "horizon_weeks": integer,
                "method": text,
                "comparable_wounds": text,
                "catalog_version": text,
                "rules_version": text,
                "recommended": _of("string", True, description="plan_id; null when no plan meets the minimum"),
                "ranked_plans": _of("integer", description="admissible plans ranked; `options` lists the first"),
                "current": _ref("CurrentTreatment", nullable=True),
                "options": _array(_ref("TreatmentOption")),
                "excluded": _array(_ref("ExcludedPlan")),
            },
            description="Admissible plans ranked by the objective; contraindicated ones under `excluded`.",
        ),
        "TreatmentPlan": _object({name: _column(ASSESSMENTS.column(name), True) for name in TREATMENT_COLUMNS}),
        "TreatmentOption": _object(
            {
                **outcome,
                "vs_current": {**_ref("VersusCurrent", nullable=True), "description": "null when current is null"},
                "rank": integer,
            },
        ),
        "CurrentTreatment": _object(
            {**outcome, "contraindications": _array(_ref("Caveat")), "in_candidate_plans": flag},
            description="The plan recorded at the latest assessment; null in `current` when it is incomplete.",
        ),
        "VersusCurrent": _object(
            {
                "restricted_mean_weeks": number,
                "p_healed_12w": number,
                "expected_cost_usd": number,
                "healed_weeks_gained": _of("number", description="current minus option restricted mean weeks"),
                "icer_usd_per_healed_week": _of(
                    "number", True, description="stated only for a trade-off (dearer and faster, or cheaper and slower)"
                ),
                "dominance": _of(
                    "string",
                    True,
                    enum=["dominates", "dominated", None],
                    description="dominates: no dearer, no slower, and cheaper or faster; null for a trade-off or equal",
                ),
            },
            description="The option against the current plan, between the figures shown: option minus current.",
        ),
        "ExcludedPlan": _object({"plan_id": text, "reasons": _array(_ref("Caveat"))}),
        "Caveat": _object(
            {"id": text, "reason": text, "source": text},
            description="A caveat, contraindication or exclusion reason, and its source.",
        ),
    }


def _requests() -> dict[str, dict[str, Any]]:
    """The request bodies: a wound history in the contract's field names, a prediction request, an outcome."""
    history: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["patient", "wound", "assessments"],
        "properties": {
            "patient": _ref("Patient"),
            "wound": _ref("Wound"),
            "assessments": _array(_ref("Assessment"), minItems=1, maxItems=MAX_ASSESSMENTS),
        },
    }
    return {
        "Patient": _table(PATIENTS),
        "Wound": _table(WOUNDS),
        "Assessment": _table(ASSESSMENTS),
        "History": history,
        "PredictionRequest": {**history, "properties": {**history["properties"], "options": _options()}},
        "Outcome": {
            "type": "object",
            "additionalProperties": False,
            "required": list(OUTCOME_FIELDS),
            "properties": {
                "client_key": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                "wound_key": {"type": "string", "minLength": 1, "maxLength": 128},
                "end_reason": {"type": "string", "enum": list(OUTCOME_REASONS)},
                "end_date": {"type": "string", "format": "date"},
            },
        },
    }


def _options() -> dict[str, Any]:
    """What a prediction request may ask of the treatment options."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "objective": {"type": "string", "enum": list(OBJECTIVES)},
            "horizon_weeks": {
                "type": "integer",
                "minimum": OPTION_LIMITS["horizon_weeks"][0],
                "maximum": OPTION_LIMITS["horizon_weeks"][1],
            },
            "min_p_healed_12w": {"type": "number", "minimum": 0, "maximum": 1},
            "max_options": {
                "type": "integer",
                "minimum": OPTION_LIMITS["max_options"][0],
                "maximum": OPTION_LIMITS["max_options"][1],
                "description": "how many of the ranked plans `options` describes (default 5)",
            },
        },
    }


def _answers() -> dict[str, dict[str, Any]]:
    """The routes' answers but the clinical parts (`_clinical`)."""
    finding = {
        "type": "object",
        "required": ["code", "path", "field", "message"],
        "properties": {k: {"type": "string"} for k in ("code", "path", "field", "message")},
    }
    version = _of("string", True)
    model = {
        "type": ["object", "null"],
        "required": ["version", "status", "created_at", "metrics", "model_card"],
        "properties": {
            "version": {"type": "string"},
            "status": {"type": "string"},
            "created_at": {"type": "string"},
            "dataset_version": {"type": "string"},
            "code_version": {"type": "string"},
            "metrics": {"type": "object"},
            "model_card": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    return {
        "Finding": finding,
        "Error": {
            "type": "object",
            "required": ["code", "message", "errors", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "errors": {"type": "array", "items": finding},
                "request_id": {"type": "string"},
            },
        },
        "FrameworkError": {  # what Chalice answers before a route runs (415, and 405 for a method not listed)
            "type": "object",
            "required": ["Code", "Message"],
            "properties": {"Code": {"type": "string"}, "Message": {"type": "string"}},
        },
        "GatewayError": _object(
            {"message": {"type": "string"}}, description="API Gateway's own answer (AWS only), e.g. 403 and 429."
        ),
        "Derivation": {
            "type": "object",
            "required": ["api_version", "ok", "errors", "warnings", "derived", "request_id"],
            "properties": {
                "api_version": {"const": "v1"},
                "ok": {"type": "boolean"},
                "errors": {"type": "array", "items": finding},
                "warnings": {"type": "array", "items": finding},
                "derived": {
                    **_ref("DerivedFields", nullable=True),
                    "description": "the latest assessment's (by assessed_on); null when ok is false",
                },
                "request_id": {"type": "string"},
            },
        },
        "Prediction": {
            "type": "object",
            "required": [
                "api_version",
                "wound_key",
                "model",
                "as_of",
                "derived",
                "warnings",
                "clinical_output",
                "withheld",
                "request_id",
            ],
            "properties": {
                "api_version": {"const": "v1"},
                "wound_key": {"type": "string"},
                "model": {
                    "type": ["object", "null"],
                    "properties": {"version": {"type": "string"}, "status": {"const": "production"}},
                },
                "as_of": _of(
                    "string", format="date", description="the date of the latest assessment: week 0 of the trajectory"
                ),
                "derived": _array(_ref("DerivedFields"), description="every assessment's, in date order"),
                "warnings": {"type": "array", "items": finding},
                "clinical_output": _ref("ClinicalOutput", nullable=True),
                "withheld": {
                    "type": ["object", "null"],
                    "required": ["code", "reason"],
                    "properties": {"code": {"enum": ["model_in_shadow", "no_model"]}, "reason": {"type": "string"}},
                },
                "request_id": {"type": "string"},
            },
        },
        "ClinicalOutput": _object(
            {
                "model_version": _of("string"),
                "status": {"enum": ["open", *FINAL_ENDS]},
                "progress": _ref("Progress"),
                "prediction": _ref("Trajectory"),
                "options": _ref("TreatmentOptions"),
            },
            "prediction",
            "options",
            description="The production model's answer; `prediction` and `options` only while the status is open.",
        ),
        "OutcomeRecorded": {
            "type": "object",
            "required": ["api_version", "recorded", "outcome", "warnings", "request_id"],
            "properties": {
                "api_version": {"const": "v1"},
                "recorded": {"type": "boolean"},
                "outcome": _object(
                    {
                        **{name: _of("string") for name in OUTCOME_FIELDS},
                        "recorded_at": _of("string", format="date-time"),
                        "request_id": _of("string"),
                        "recorded_by": _of("string"),
                    },
                    description="the outcome as first recorded under its client key",
                ),
                "warnings": _array(
                    _ref("Finding"),
                    description="wound_already_reported: the wound has other reports under other client keys "
                    "(its outcome is its latest report by recorded_at)",
                ),
                "request_id": {"type": "string"},
            },
        },
        "ModelInfo": {
            "type": "object",
            "required": ["api_version", "production", "shadow"],
            "properties": {"api_version": {"const": "v1"}, "production": model, "shadow": model},
        },
        "Health": {
            "type": "object",
            "required": ["status", "api_version", "models", "unloaded"],
            "properties": {
                "status": {"enum": ["ok", "degraded"]},
                "api_version": {"const": "v1"},
                "models": _object({"production": version, "shadow": version}),
                "unloaded": {"type": "array", "items": {"type": "string"}, "description": "versions not loaded"},
            },
        },
    }


def _paths() -> dict[str, Any]:
    return {
        "/v1/assessments/derive": _post(
            "deriveAssessment",
            "Validation findings and auto-calculated fields of the latest assessment (by assessed_on)",
            "History",
            {"200": _json("Derivation", "findings and derived fields")},
            400,
            413,
            description="Any JSON object is answered 200: a history that breaks the contract, including one the "
            "request schema refuses, gets ok false and its findings (for an EHR form to show), not a 4xx.",
        ),
        "/v1/predictions": _post(
            "createPrediction",
            "Prediction, trajectory, progress and ranked options for one wound history",
            "PredictionRequest",
            {"200": _json("Prediction", "answer (clinical output withheld while the only model is in shadow)")},
            400,
            413,
            422,
        ),
        "/v1/outcomes": _post(
            "recordOutcome",
            "Record a wound's end, idempotent on client_key",
            "Outcome",
            {
                "201": _json("OutcomeRecorded", "recorded"),
                "200": _json("OutcomeRecorded", "already recorded under this client key"),
            },
            400,
            409,
            413,
            422,
        ),
        "/v1/model": {
            "get": _operation(
                "getModel",
                "Models served, headline metrics, model card locations",
                {"200": _json("ModelInfo", "models")},
            )
        },
        "/health": {
            "get": _operation("getHealth", "Liveness and the loaded model versions", {"200": _json("Health", "alive")})
        },
    }


def build_openapi() -> dict[str, Any]:
    schemas = {**_requests(), **_answers(), **_clinical()}
    schemas["PredictionCapture"] = _capture(_options())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "woundcare inference API",
            "version": "1.0.0",
            "description": "Derived fields, healing-time predictions, trajectories, progress and ranked treatment "
            "options for one wound history (EHR extract contract field names); outcomes for the feedback loop.\n\n"
            "This is an OpenAPI 3.1 document: its schemas are JSON Schema 2020-12, and a value that may be null has "
            'a type array holding "null" (e.g. ["number", "null"]), not OpenAPI 3.0\'s `nullable`. A required '
            'request field is never null: the API takes null, an absent field and "" alike as missing. Fields '
            "the contract requires only in some cases are nullable, their condition in their description.\n\n"
            "Every route needs a SigV4 (IAM) signature in AWS, where API Gateway answers 403 (missing or invalid "
            "signature) and 429 (throttled) itself, with a GatewayError body.\n\n"
            f"Numbers are stated to clinical precision: {precision_statement()}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"sigv4": []}],
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 with the caller's IAM credentials (service execute-api)",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
        },
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build_openapi(), indent=2) + "\n", encoding="utf-8")
