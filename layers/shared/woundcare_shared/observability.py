"""The one Logger, Tracer and Metrics of every woundcare Lambda, configured by POWERTOOLS_* variables.

Handlers stack `@logger.inject_lambda_context`, `@metrics.log_metrics`, `@tracer.capture_lambda_handler`.
Tracing goes through Powertools only (the X-Ray SDK is in maintenance), so its backend can change freely.
Powertools reads its variables when these objects are made, i.e. at first import: a process that imports
this module before a function's environment applies (the embedded runtime's CLI) gets the defaults below.

Where Powertools would disable tracing anyway (POWERTOOLS_TRACE_DISABLED, or outside Lambda, or under SAM local
or `chalice local`), the Tracer gets a no-op provider: Powertools' default provider imports the X-Ray SDK (and
botocore with it, ~300 ms of a cold start) even when tracing is off.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "woundcare")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Woundcare")
_TRUE = ("1", "y", "yes", "t", "true", "on")  # Powertools' truthy values


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Powertools' rule: trace in Lambda, not under SAM local or `chalice local`, unless POWERTOOLS_TRACE_DISABLED."""
    if environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in _TRUE:
        return False
    local = environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE")
    return bool(environ.get("LAMBDA_TASK_ROOT")) and not local


class _NoOpSegment(BaseSegment):
    """A segment that records nothing."""

    def close(self, end_time: int | None = None) -> None:
        """Nothing to close."""

    def add_subsegment(self, subsegment: Any) -> None:
        """Nothing is recorded."""

    def remove_subsegment(self, subsegment: Any) -> None:
        """Nothing is recorded."""

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing is recorded."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Nothing is recorded."""

    def add_exception(self, exception: BaseException, stack: list[Any], remote: bool = False) -> None:
        """Nothing is recorded."""


class NoOpTraceProvider(BaseProvider):
    """The Tracer's provider while tracing is disabled: same interface, no X-Ray SDK, nothing recorded."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _NoOpSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _NoOpSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing is recorded."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Nothing is recorded."""

    def patch(self, modules: Sequence[str]) -> None:
        """Nothing to patch."""

    def patch_all(self) -> None:
        """Nothing to patch."""


def _tracer() -> Tracer:
    if tracing_enabled():
        return Tracer(service=SERVICE)
    return Tracer(service=SERVICE, disabled=True, provider=NoOpTraceProvider())


logger = Logger(service=SERVICE)
tracer = _tracer()
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
