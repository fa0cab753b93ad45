"""Tracing follows Powertools' rule, and the inference path's imports stay light while tracing is off: no X-Ray SDK,
no pydantic, no boto3 (each costs a cold start tens to hundreds of milliseconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from woundcare_shared.observability import tracing_enabled

LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task"}


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),  # outside Lambda
        (LAMBDA, True),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({**LAMBDA, "AWS_SAM_LOCAL": "true"}, False),
        ({**LAMBDA, "AWS_CHALICE_CLI_MODE": "true"}, False),
    ],
)
def test_tracing_is_on_in_lambda_unless_disabled_or_emulated(environ, enabled):
    assert tracing_enabled(environ) is enabled


def _fresh(code: str, **env: str) -> dict:
    """Run `code` (which prints JSON) in a fresh interpreter with the given environment on top of a clean one."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}, check=True)
    return json.loads(done.stdout.splitlines()[-1])


LOADED = (
    "import json, sys\n"
    "import woundcare_shared.serving\n"
    "from woundcare_shared.observability import tracer\n"
    "heavy = ('aws_xray_sdk.core', 'pydantic', 'pydantic_settings', 'boto3')\n"
    "print(json.dumps({'loaded': [m for m in heavy if m in sys.modules], 'disabled': tracer.disabled}))\n"
)


def test_the_serving_path_imports_no_xray_pydantic_or_boto3_while_tracing_is_off():
    found = _fresh(LOADED, POWERTOOLS_TRACE_DISABLED="true", **LAMBDA)
    assert found == {"loaded": [], "disabled": True}


def test_with_tracing_on_in_lambda_the_tracer_uses_the_xray_sdk():
    found = _fresh(LOADED, AWS_DEFAULT_REGION="eu-west-1", **LAMBDA)
    assert found == {"loaded": ["aws_xray_sdk.core"], "disabled": False}
