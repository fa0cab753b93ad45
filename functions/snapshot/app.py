"""Snapshot stage: the landed extract becomes an immutable, content-hashed dataset version."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from woundcare_shared.observability import logger, metrics, tracer
from woundcare_shared.pipeline import SnapshotInput, snapshot


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return snapshot(SnapshotInput.model_validate(event)).model_dump(mode="json")
