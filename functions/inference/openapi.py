"""The inference API's OpenAPI 3 document, built from the contract (model_build.schema) so the two never drift.

`python functions/inference/openapi.py` rewrites openapi.json next to it; a test holds the file equal to this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_build.features import FEATURE_NAMES
from model_build.recommend import OBJECTIVES
from model_build.schema import ASSESSMENTS, PATIENTS, WOUNDS, Column, Table
from model_build.validate_history import MAX_ASSESSMENTS
from woundcare_shared.serving import CAPTURE_KIND, CAPTURE_SCHEMA, OPTION_LIMITS, OUTCOME_REASONS

OUT = Path(__file__).with_name("openapi.json")
_KINDS = {"key": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "string", "enum": "string"}


def _column(column: Column) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [_KINDS[column.kind], "null"]}
    if column.kind == "date":
        schema["format"] = "date"
    if column.values:
        schema["enum"] = [*column.values, None]
    if column.low is not None:
        schema |= {"minimum": column.low, "maximum": column.high}
    return schema


def _table(table: Table) -> dict[str, Any]:
    required = [c.name for c in table.columns if c.required and not (table is ASSESSMENTS and c.name == "wound_key")]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {c.name: _column(c) for c in table.columns},
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _refusals(*statuses: int) -> dict[str, Any]:
    words = {
        400: "not strict UTF-8 JSON (no byte order mark, NaN, Infinity, key twice or unpaired surrogate), or not "
        "an object",
        409: "client key used for another outcome",
        413: "body too large",
        422: "breaks the contract or the envelope (findings by path)",
    }
    return {str(s): _json("Error", words[s]) for s in statuses}


def _post(summary: str, request: str, ok: dict[str, Any], *refusals: int) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{request}"}}},
            },
            "responses": {
                **ok,
                **_refusals(*refusals),
                "415": _json("FrameworkError", "Content-Type is not application/json (Chalice's own error shape)"),
            },
        }
    }


def _nullable_object() -> dict[str, Any]:
    return {"type": ["object", "null"]}


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
            "status": {"enum": ["open", "healed", "died", "amputated"]},
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


def build_openapi() -> dict[str, Any]:
    finding = {
        "type": "object",
        "required": ["code", "path", "field", "message"],
        "properties": {k: {"type": "string"} for k in ("code", "path", "field", "message")},
    }
    history = {
        "type": "object",
        "additionalProperties": False,
        "required": ["patient", "wound", "assessments"],
        "properties": {
            "patient": {"$ref": "#/components/schemas/Patient"},
            "wound": {"$ref": "#/components/schemas/Wound"},
            "assessments": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ASSESSMENTS,
                "items": {"$ref": "#/components/schemas/Assessment"},
            },
        },
    }
    options = {
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
    ranked_options = {
        "type": "object",
        "required": ["objective", "horizon_weeks", "recommended", "ranked_plans", "current", "options", "excluded"],
        "properties": {
            "objective": {"type": "string", "enum": list(OBJECTIVES)},
            "horizon_weeks": {"type": "integer"},
            "recommended": {"type": ["string", "null"]},
            "ranked_plans": {"type": "integer", "description": "admissible plans ranked; `options` lists the first"},
            "current": {"type": ["object", "null"]},
            "options": {"type": "array", "items": {"type": "object", "required": ["plan_id", "rank", "caveats"]}},
            "excluded": {"type": "array", "items": {"type": "object", "required": ["plan_id", "reasons"]}},
        },
    }
    model = {
        "type": ["object", "null"],
        "required": ["version", "status", "created_at", "metrics", "model_card"],
        "properties": {
            "version": {"type": "string"},
            "status": {"type": "string"},
            "created_at": {"type": "string"},
            "metrics": {"type": "object"},
            "model_card": {"type": "object"},
        },
    }
    schemas = {
        "Patient": _table(PATIENTS),
        "Wound": _table(WOUNDS),
        "Assessment": _table(ASSESSMENTS),
        "History": history,
        "PredictionRequest": {**history, "properties": {**history["properties"], "options": options}},
        "Outcome": {
            "type": "object",
            "additionalProperties": False,
            "required": ["client_key", "wound_key", "end_reason", "end_date"],
            "properties": {
                "client_key": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                "wound_key": {"type": "string", "minLength": 1, "maxLength": 128},
                "end_reason": {"type": "string", "enum": list(OUTCOME_REASONS)},
                "end_date": {"type": "string", "format": "date"},
            },
        },
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
        "Derivation": {
            "type": "object",
            "required": ["api_version", "ok", "errors", "warnings", "derived", "request_id"],
            "properties": {
                "api_version": {"const": "v1"},
                "ok": {"type": "boolean"},
                "errors": {"type": "array", "items": finding},
                "warnings": {"type": "array", "items": finding},
                "derived": _nullable_object(),
                "request_id": {"type": "string"},
            },
        },
        "Prediction": {
            "type": "object",
            "required": [
                "api_version",
                "wound_key",
                "model",
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
                "derived": {"type": "array", "items": {"type": "object"}},
                "warnings": {"type": "array", "items": finding},
                "clinical_output": {
                    "type": ["object", "null"],
                    "required": ["model_version", "status", "progress"],
                    "properties": {
                        "model_version": {"type": "string"},
                        "status": {"enum": ["open", "healed", "died", "amputated"]},
                        "progress": {"type": "object"},
                        "prediction": {
                            "type": "object",
                            "required": ["horizon_weeks", "median_weeks", "median_interval_weeks", "weekly"],
                            "properties": {
                                "horizon_weeks": {"type": "integer"},
                                "median_weeks": {"type": ["number", "null"]},
                                "p_healed_by_week": {"type": "object", "additionalProperties": {"type": "number"}},
                                "weekly": {
                                    "type": "object",
                                    "description": "one value per week 0..horizon_weeks, as columns",
                                    "required": ["week", "p_healed", "area_cm2", "area_low_cm2", "area_high_cm2"],
                                    "additionalProperties": {"type": "array", "items": {"type": "number"}},
                                },
                            },
                        },
                        "options": ranked_options,
                    },
                },
                "withheld": {
                    "type": ["object", "null"],
                    "required": ["code", "reason"],
                    "properties": {"code": {"enum": ["model_in_shadow", "no_model"]}, "reason": {"type": "string"}},
                },
                "request_id": {"type": "string"},
            },
        },
        "OutcomeRecorded": {
            "type": "object",
            "required": ["api_version", "recorded", "outcome", "request_id"],
            "properties": {
                "api_version": {"const": "v1"},
                "recorded": {"type": "boolean"},
                "outcome": {"type": "object"},
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
                "models": {"type": "object"},
                "unloaded": {"type": "array", "items": {"type": "string"}, "description": "versions not loaded"},
            },
        },
    }
    schemas["PredictionCapture"] = _capture(options)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "woundcare inference API",
            "version": "1.0.0",
            "description": "Derived fields, healing-time predictions, trajectories, progress and ranked treatment "
            "options for one wound history (EHR extract contract field names); outcomes for the feedback loop.",
        },
        "servers": [{"url": "/"}],
        "security": [{"sigv4": []}],
        "paths": {
            "/v1/assessments/derive": _post(
                "Validation findings and auto-calculated fields of the latest assessment (by assessed_on)",
                "History",
                {"200": _json("Derivation", "findings and derived fields")},
                400,
                413,
            ),
            "/v1/predictions": _post(
                "Prediction, trajectory, progress and ranked options for one wound history",
                "PredictionRequest",
                {"200": _json("Prediction", "answer (clinical output withheld while the only model is in shadow)")},
                400,
                413,
                422,
            ),
            "/v1/outcomes": _post(
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
                "get": {
                    "summary": "Models served, headline metrics, model card locations",
                    "responses": {"200": _json("ModelInfo", "models")},
                }
            },
            "/health": {
                "get": {
                    "summary": "Liveness and the loaded model versions",
                    "security": [],
                    "responses": {"200": _json("Health", "alive")},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
        },
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build_openapi(), indent=2) + "\n", encoding="utf-8")
