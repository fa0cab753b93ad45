"""The one Logger, Tracer and Metrics of every woundcare Lambda, configured by POWERTOOLS_* variables.

Handlers stack `@logger.inject_lambda_context`, `@metrics.log_metrics`, `@tracer.capture_lambda_handler`.
Tracing goes through Powertools only (the X-Ray SDK is in maintenance), so its backend can change freely.
Powertools reads its variables when these objects are made, i.e. at first import: a process that imports
this module before a function's environment applies (the embedded runtime's CLI) gets the defaults below.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "woundcare")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Woundcare")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
