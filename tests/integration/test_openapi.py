"""The OpenAPI document matches the API: schemathesis drives `woundcare serve`'s local server with generated
requests (valid and invalid) and checks no 5xx, documented status codes and content types, and response schemas.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import socketserver
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_inference_api import _register
from woundcare_testing import wound_history

from woundcare_shared import serving
from woundcare_shared.cli import build_parser, local_server, main
from woundcare_shared.observability import logger
from woundcare_shared.registry import PRODUCTION
from woundcare_shared.serving import OPTION_LIMITS

OPENAPI = Path(__file__).resolve().parents[2] / "functions" / "inference" / "openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Undeclared methods: API Gateway refuses them before the function runs; locally Chalice answers 405. TRACE and
# the like are left out: Python's http.server (under Chalice's local server) answers them 501 itself.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"unexpected-methods": ["put", "patch", "delete"]}}})
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)


def test_the_committed_openapi_document_is_the_generated_one():
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("inference_openapi", OPENAPI.with_name("openapi.py"))
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads(OPENAPI.read_text()) == module.build_openapi()


def test_serve_binds_to_this_machine_only_by_default():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize("port", ["-1", "70000", "http"])
def test_serve_refuses_a_port_that_is_none(port, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--port", port])
    assert "port" in capsys.readouterr().err


def test_serve_says_in_one_line_when_it_cannot_listen_and_warns_off_loopback(tmp_path, monkeypatch, capsys):
    # Given a port another program holds
    monkeypatch.setenv("WOUNDCARE_HOME", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When the API is asked to serve there for every interface
        status = main(["serve", "--host", "0.0.0.0", "--port", str(port)])
    # Then it warns that others could reach it, and stops with one line, not a traceback
    err = capsys.readouterr().err
    assert status == 2 and "warning: serving on 0.0.0.0" in err
    assert f"cannot listen on 0.0.0.0:{port}" in err and "Traceback" not in err


def test_serve_says_where_it_listens_from_which_home_and_with_which_models(tmp_path, monkeypatch, capsys, small_bundle):
    # Given a home with a production model, and a server stopped with Ctrl-C as soon as it runs
    monkeypatch.setenv("WOUNDCARE_HOME", str(tmp_path))
    monkeypatch.setenv("WOUNDCARE_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    version = _register(tmp_path, small_bundle, "run-serve", PRODUCTION)
    serving.get_server.cache_clear()

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(socketserver.BaseServer, "serve_forever", interrupted)
    try:
        status = main(["serve", "--port", "0"])
    finally:
        serving.get_server.cache_clear()
    # Then it named the port it bound, the home and the models
    out = capsys.readouterr().out
    assert status == 0 and f"from {tmp_path} (production {version}, shadow none)" in out
    assert re.search(r"Serving on http://127\.0\.0\.1:[1-9]\d*", out)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, small_bundle):
    """`woundcare serve`'s server on a free loopback port, serving a production model."""
    home = tmp_path_factory.mktemp("served")
    _register(home, small_bundle, "run-openapi", PRODUCTION)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WOUNDCARE_HOME", str(home))
        env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        serving.get_server.cache_clear()
        server = local_server("127.0.0.1", 0)
        host, port = server.server.server_address
        assert host == "127.0.0.1"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with socket.create_connection((host, port), timeout=5):
                pass
            yield f"http://{host}:{port}"
        finally:
            server.shutdown()
            serving.get_server.cache_clear()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_its_openapi_document_says(case, base_url):
    case.call_and_validate(base_url=base_url, checks=CHECKS, excluded_checks=[], timeout=30)


def test_concurrent_requests_are_served_one_at_a_time_so_log_lines_are_whole_and_their_own(base_url, capsys):
    # Given 16 refused requests at once, each logging a line and flushing its metrics
    def refused(_: int) -> int:
        request = urllib.request.Request(f"{base_url}/v1/predictions", data=b"{}", method="POST")
        request.add_header("Content-Type", "application/json")
        try:
            urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            return error.code
        return 200

    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    capsys.readouterr()
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            assert set(pool.map(refused, range(16))) == {422}
    finally:
        logger.removeHandler(handler)
    # Then each refusal logged its own request's id, and every metrics line printed is one JSON object
    refusals = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert len({line["function_request_id"] for line in refusals if line["message"] == "request refused"}) == 16
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert sum("ValidationFailures" in line for line in printed) == 16


def test_the_access_log_names_the_path_and_never_the_query_string(base_url, capfd):
    with urllib.request.urlopen(f"{base_url}/health?patient_name=Jane-Doe", timeout=10) as response:
        assert response.status == 200
    # and a request line too malformed to parse gets its 400, logged without the line
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"GET /health?patient_name=Jane-Roe HTTP/1.1 extra\r\n\r\n")
        assert b" 400 " in raw.recv(1024)
    err = capfd.readouterr().err
    assert '"GET /health" 200' in err and "request refused: 400" in err
    assert "Jane" not in err and "Traceback" not in err


@pytest.fixture(scope="module")
def histories(small_cohort):
    """Wounds as recorded (healed ones are not predicted, discharged ones are), and each one's first visit alone
    as an open wound."""
    _, clean, _ = small_cohort
    out = []
    for key in clean["wounds"]["wound_key"][:8]:
        patient, wound, visits = wound_history(clean, key)
        out.append({"patient": patient, "wound": wound, "assessments": visits})
        out.append(
            {"patient": patient, "wound": {**wound, "end_date": None, "end_reason": None}, "assessments": visits[:1]}
        )
    return out


def test_real_answers_match_the_documents_schemas(base_url, histories):
    # Given recorded wound histories, When each is derived, and predicted with every ranked plan described
    options = {"max_options": OPTION_LIMITS["max_options"][1]}
    statuses = set()
    for history in histories:
        for path, body in (("/v1/assessments/derive", history), ("/v1/predictions", {**history, "options": options})):
            response = schema[path]["POST"].Case(body=body).call_and_validate(base_url=base_url, checks=CHECKS)
            assert response.status_code == 200
        statuses.add(response.json()["clinical_output"]["status"])
    # Then every answer matched its schema (the checks above), for open wounds and healed ones
    assert {"open", "healed"} <= statuses


@pytest.mark.parametrize("sent", ["null", "absent"])
def test_every_field_the_document_requires_is_refused_as_missing_when_null_or_absent(base_url, histories, sent):
    # Given an open wound's valid history, and the fields the document requires (never null)
    history, schemas = histories[1], json.loads(OPENAPI.read_text())["components"]["schemas"]
    for row, name in {"patient": "Patient", "wound": "Wound", "assessments[0]": "Assessment"}.items():
        for field in schemas[name]["required"]:
            # When one of them is sent null, or left out
            body = json.loads(json.dumps(history))
            target = body["assessments"][0] if row == "assessments[0]" else body[row]
            if sent == "null":
                target[field] = None
            else:
                del target[field]
            response = schema["/v1/predictions"]["POST"].Case(body=body).call(base_url=base_url)
            # Then the API refuses it as missing, at that field
            found = {(e["code"], e["path"]) for e in response.json().get("errors", [])}
            assert response.status_code == 422 and ("missing_required", f"{row}.{field}") in found
