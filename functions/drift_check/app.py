"""DriftCheck stage: drift against the production model's reference profile, and the retrain decision."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from woundcare_shared.observability import logger, metrics, tracer
from woundcare_shared.pipeline import DriftInput, drift_check


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return drift_check(DriftInput.model_validate(event)).model_dump(mode="json")
