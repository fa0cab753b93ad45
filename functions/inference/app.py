"""The inference API: thin Chalice routes over woundcare_shared.serving, where the logic lives.

Powertools wraps every request through one Chalice middleware: Logger (correlation id = API Gateway request id; the
event is never logged), Metrics (EMF), Tracer (responses and errors are not recorded: they hold clinical data). Its
decorators are applied once, at import: Chalice's ConvertToMiddleware would apply them again on every request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request

from woundcare_shared import serving
from woundcare_shared.observability import logger, metrics, tracer

app = Chalice(app_name="woundcare-inference")
app.api.binary_types = []  # JSON only: Chalice need not test each response for a binary type to base64-encode


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def handle_request(event: dict[str, Any], context: Any, *, respond: Callable[[], Response]) -> Response:
    """One request, with Powertools around it (decorated once, at import; its X-Ray subsegment is named after it)."""
    logger.set_correlation_id(event.get("requestContext", {}).get("requestId"))  # a plain read: no JMESPath query
    return respond()


@app.middleware("http")
def _observe(event: Request, get_response: Callable[[Request], Response]) -> Response:
    return handle_request(event.to_original_event(), event.lambda_context, respond=lambda: get_response(event))


serving.get_server()  # cold start: configuration, services, and the models loaded and checksum-verified


def _request_id() -> str:
    # API Gateway's request id; Chalice's local server sets none, so the Lambda request id stands in.
    return app.current_request.context.get("requestId") or app.lambda_context.aws_request_id


def _respond(reply: serving.Reply) -> Response:
    return Response(body=reply.body, status_code=reply.status, headers={"Content-Type": "application/json"})


@app.route("/v1/assessments/derive", methods=["POST"])
def derive() -> Response:
    return _respond(serving.get_server().derive(app.current_request.raw_body, _request_id()))


@app.route("/v1/predictions", methods=["POST"])
def predict() -> Response:
    return _respond(serving.get_server().predict(app.current_request.raw_body, _request_id()))


@app.route("/v1/outcomes", methods=["POST"])
def record_outcome() -> Response:
    actor = serving.caller(app.current_request.context.get("identity"))
    return _respond(serving.get_server().record_outcome(app.current_request.raw_body, _request_id(), actor))


@app.route("/v1/model", methods=["GET"])
def model() -> Response:
    return _respond(serving.get_server().model_info())


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _respond(serving.get_server().health())
