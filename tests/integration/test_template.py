"""template.yaml is deployable and consistent with the code: linters pass, every ASL placeholder has a
substitution, every handler imports, table keys match the adapters, the audit log stays append-only, and the
inference API is IAM-signed, configured for the stack's stores and allowed no more than its code does."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from woundcare_shared import serving
from woundcare_shared.audit import DynamoAuditLog
from woundcare_shared.embedded import load_template, parse_cfn_yaml
from woundcare_shared.registry import DynamoRegistry
from woundcare_shared.runs import DynamoRunTracker

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
SAM_VENV = REPO / ".venv-sam"  # aws-sam-cli pins its own boto3 & co: never installed into .venv
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "SAM_CLI_TELEMETRY": "0",
}


@pytest.fixture(scope="module")
def doc() -> dict:
    return parse_cfn_yaml(TEMPLATE.read_text())


@pytest.fixture(scope="session")
def sam() -> Path:
    """The `sam` CLI from its own venv, created on first use (needs the package index once)."""
    binary = SAM_VENV / "bin" / "sam"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SAM_VENV)], check=True)
        pip = [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "aws-sam-cli"]
        subprocess.run(pip, check=True, timeout=900)
    return binary


def test_cfn_lint_passes():
    # Given the template; When cfn-lint checks it (SAM transform included); Then it reports nothing
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_sam_validate_lint_passes(sam):
    # Given the template and dummy credentials (validation is offline); When `sam validate --lint` runs
    env = {**os.environ, **DUMMY_AWS}
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template-file", str(TEMPLATE)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    # Then it finds the template valid
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_every_asl_placeholder_has_a_substitution_and_every_asl_file_is_used(doc):
    # Given every state machine of the template and every ASL file in statemachines/
    template = load_template(TEMPLATE)
    used = {spec.definition_uri for spec in template.state_machines.values()}
    # Then each ASL file belongs to a state machine
    assert set((REPO / "statemachines").glob("*.asl.json")) <= used
    for spec in template.state_machines.values():
        raw = spec.definition_uri.read_text()
        placeholders = set(re.findall(r"\$\{([^}]+)\}", raw))
        # And its placeholders are exactly its substitutions: none missing, none left over
        assert placeholders == set(spec.substitutions), spec.logical_id
        # And the substituted text is valid ASL JSON with no placeholder left (definition() raises otherwise)
        assert json.loads(spec.definition())["StartAt"]


@pytest.fixture
def empty_home(tmp_path, monkeypatch) -> Iterator[Path]:
    """The inference app starts its server on import: give it an empty home, and forget that server afterwards."""
    monkeypatch.setenv("WOUNDCARE_HOME", str(tmp_path))
    serving.get_server.cache_clear()
    yield tmp_path
    serving.get_server.cache_clear()


def test_every_handler_in_the_template_imports(monkeypatch, empty_home):
    # Given every function of the template (image handlers are module paths from the repository root)
    monkeypatch.syspath_prepend(str(REPO))
    template = load_template(TEMPLATE)
    assert template.functions
    for spec in template.functions.values():
        module_path, _, name = spec.handler.rpartition(".")
        # When its handler module is imported the way Lambda would
        if spec.code_dir is None:
            module = importlib.import_module(module_path)
        else:
            source = spec.code_dir / (module_path.replace(".", "/") + ".py")
            loader = importlib.util.spec_from_file_location(f"_template_check_{spec.logical_id}", source)
            assert loader is not None and loader.loader is not None, spec.logical_id
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        # Then the handler is a function
        assert callable(getattr(module, name, None)), spec.logical_id


def test_image_functions_build_from_the_one_dockerfile_at_the_repository_root(doc):
    # Given the image functions; Then they all build from functions/Dockerfile with the repository as context
    images = [r for r in doc["Resources"].values() if r["Properties"].get("PackageType") == "Image"]
    assert len(images) >= 5
    assert {(r["Metadata"]["Dockerfile"], r["Metadata"]["DockerContext"]) for r in images} == {
        ("functions/Dockerfile", ".")
    }
    assert (REPO / "functions" / "Dockerfile").is_file()


DOCKER_CONTEXT_FILES = """
import json, sys
from docker.utils.build import exclude_paths
root, dockerfile = sys.argv[1:]
with open(root + "/.dockerignore") as f:  # read as docker-py's APIClient.build reads it
    patterns = [line.strip() for line in f.read().splitlines() if line.strip() and not line.strip().startswith("#")]
print(json.dumps(sorted(exclude_paths(root, patterns, dockerfile=dockerfile))))
"""


def dockerfile_copy_sources(dockerfile: Path) -> list[str]:
    """The build-context paths a Dockerfile's COPY instructions read (not --from stages)."""
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        arguments = [w for w in words[1:] if not w.startswith("--")]
        sources += [source.rstrip("/") for source in arguments[:-1]]
    return sources


def test_the_docker_context_is_the_allow_listed_files_every_copy_needs(sam):
    # Given the files `sam build`'s Docker client (docker-py, in the sam venv) sends as the image functions' context
    # (read from the context root only: a functions/Dockerfile.dockerignore would be ignored)
    assert (REPO / ".dockerignore").is_file() and not (REPO / "functions" / "Dockerfile.dockerignore").exists()
    dockerfile = "functions/Dockerfile"
    done = subprocess.run([str(sam.parent / "python"), "-c", DOCKER_CONTEXT_FILES, str(REPO), dockerfile],
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    context = set(json.loads(done.stdout))
    # Then .venv, tests and bytecode stay out of it
    assert not {path.split("/")[0] for path in context} & {".venv", ".venv-sam", ".git", "tests", "out"}
    assert not [path for path in context if "__pycache__" in path or path.endswith(".pyc")]
    # And every file under every COPY source that the repository tracks is in it
    sources = dockerfile_copy_sources(REPO / dockerfile)
    assert {"pyproject.toml", "README.md", "model_build", "layers", "functions"} <= set(sources)
    tracked = subprocess.run(["git", "ls-files", "--", *sources], capture_output=True, text=True, cwd=REPO, check=True)
    files = [path for path in tracked.stdout.splitlines() if (REPO / path).exists()]
    assert files and set(files) <= context, sorted(set(files) - context)[:10]


def test_table_key_schemas_match_the_adapters(doc):
    # Given the DynamoDB tables; Then their keys are the ones the registry, audit and run adapters use
    tables = {"RegistryTable": DynamoRegistry, "AuditTable": DynamoAuditLog, "RunsTable": DynamoRunTracker}
    for logical_id, adapter in tables.items():
        props = doc["Resources"][logical_id]["Properties"]
        assert props["KeySchema"] == adapter.TABLE_KEYS["KeySchema"], logical_id
        assert props["AttributeDefinitions"] == adapter.TABLE_KEYS["AttributeDefinitions"], logical_id
        # And they keep point-in-time recovery and KMS encryption
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEType"] == "KMS"


def test_buckets_are_versioned_encrypted_private_and_tls_only(doc):
    resources = doc["Resources"]
    buckets = [name for name, r in resources.items() if r["Type"] == "AWS::S3::Bucket"]
    policies = {r["Properties"]["Bucket"]["Ref"]: r for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"}
    assert buckets
    for name in buckets:
        props = resources[name]["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert rule["SSEAlgorithm"] == "aws:kms"
        assert all(props["PublicAccessBlockConfiguration"].values())
        (statement,) = policies[name]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_nothing_in_the_stack_may_update_or_delete_audit_records(doc):
    # Given every IAM statement of the template that names the audit table
    def statements(node):
        if isinstance(node, dict):
            if "Action" in node and "Effect" in node:
                yield node
            for value in node.values():
                yield from statements(value)
        elif isinstance(node, list):
            for value in node:
                yield from statements(value)

    on_audit = [s for s in statements(doc["Resources"]) if "AuditTable" in json.dumps(s.get("Resource"))]
    assert on_audit
    # Then none allows a write other than PutItem (conditional appends), and none uses a wildcard
    for statement in on_audit:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(actions)
        assert not any("*" in action for action in actions)


def test_every_stage_task_retries_transient_errors_only_and_is_caught(doc):
    # Given the training ASL's Lambda tasks
    definition = json.loads((REPO / "statemachines" / "training.asl.json").read_text())
    tasks = {name: s for name, s in definition["States"].items() if s["Type"] == "Task"}
    for name, task in tasks.items():
        # Then each retries the transient stage error (and Lambda service errors), never States.ALL
        errors = {e for retry in task["Retry"] for e in retry["ErrorEquals"]}
        assert "TransientStageError" in errors and "States.ALL" not in errors, name
        # And each stage (not the run-closing FinishRun tasks) routes any other error to RecordFailure
        if task["Resource"] != "${FinishRunFunctionArn}":
            assert task["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]


def test_the_state_machine_is_scheduled_weekly_and_started_by_landed_extracts(doc):
    machine = doc["Resources"]["TrainingStateMachine"]["Properties"]
    events = {e["Type"]: e["Properties"] for e in machine["Events"].values()}
    assert events["ScheduleV2"]["ScheduleExpression"].startswith("cron(")
    pattern = events["EventBridgeRule"]["Pattern"]
    assert pattern["detail-type"] == ["Object Created"] and pattern["detail"]["object"]["key"] == [{"suffix": "/READY"}]
    assert machine["Tracing"] == {"Enabled": True} and machine["Logging"]["IncludeExecutionData"] is False


def test_the_inference_function_serves_from_the_stacks_store_registry_and_audit(monkeypatch):
    # Given the inference function's environment as Lambda gets it (Globals merged; resources named locally)
    env = load_template(TEMPLATE).functions["InferenceFunction"].environment
    # Then it names the data bucket's store prefix, the registry and audit tables, and capture as a log line
    assert env["WOUNDCARE_STORE_URL"] == "s3://DataBucket/woundcare"
    assert env["WOUNDCARE_REGISTRY_URL"] == "dynamodb://RegistryTable"
    assert env["WOUNDCARE_AUDIT_URL"] == "dynamodb://AuditTable"
    assert env["WOUNDCARE_CAPTURE_URL"] == "log://"
    # And the serving settings accept them (with the bucket named as CloudFormation names it, in lower case),
    # keeping every file under /tmp, the only writable path in Lambda
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("DataBucket", "woundcare-dev-databucket-1x2y3z"))
    settings = serving.load_serving_settings()
    assert settings.capture_target() == "log://"
    assert settings.home.is_relative_to("/tmp") and settings.cache_dir().is_relative_to("/tmp")


def test_the_inference_function_reads_models_and_writes_only_outcomes_and_audit_appends(doc):
    # Given the inference function's policies and its key prefix in the data bucket ("woundcare/")
    policies = doc["Resources"]["InferenceFunction"]["Properties"]["Policies"]
    store_url = load_template(TEMPLATE).functions["InferenceFunction"].environment["WOUNDCARE_STORE_URL"]
    prefix = urlsplit(store_url).path.strip("/") + "/"
    objects = f"${{DataBucket.Arn}}/{prefix}"
    # Then the registry is read-only to it and the audit log append-only (see the audit test above)
    assert {p["Ref"] for p in policies if "Ref" in p} == {"RegistryReadPolicy", "AuditAppendPolicy"}
    (registry,) = doc["Resources"]["RegistryReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert set(registry["Action"]) == {"dynamodb:GetItem", "dynamodb:Scan"}
    # And its own statements read model bundles and outcomes, write outcomes (and their index by wound) only, and
    # list only those
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    assert not any(action.startswith("dynamodb:") for s in statements for action in s["Action"])

    def subs(resource) -> set[str]:
        return {r["Fn::Sub"] for r in (resource if isinstance(resource, list) else [resource])}

    outcomes = {f"{objects}outcomes/*", f"{objects}outcomes-by-wound/*"}
    reads = set().union(*(subs(s["Resource"]) for s in statements if "s3:GetObject" in s["Action"]))
    writes = set().union(*(subs(s["Resource"]) for s in statements if "s3:PutObject" in s["Action"]))
    assert reads == {f"{objects}models/*", *outcomes} and writes == outcomes
    listings = [s for s in statements if "s3:ListBucket" in s["Action"]]
    assert all(s["Resource"] == {"Fn::GetAtt": ["DataBucket", "Arn"]} for s in listings)
    listed = [s["Condition"]["StringLike"]["s3:prefix"] for s in listings]
    assert sorted(p for prefixes in listed for p in (prefixes if isinstance(prefixes, list) else [prefixes])) == [
        f"{prefix}models/*",
        f"{prefix}outcomes-by-wound/*",
        f"{prefix}outcomes/*",
    ]


def resolve(node, doc: dict, parameters: dict[str, str]):
    """A property as CloudFormation resolves it for these parameter values (Ref, Fn::If/Not/Equals only)."""
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return parameters.get(value, value)
        if key == "Fn::Equals":  # CloudFormation compares parameter values as strings
            return str(resolve(value[0], doc, parameters)) == str(resolve(value[1], doc, parameters))
        if key == "Fn::Not":
            return not resolve(value[0], doc, parameters)
        if key == "Fn::If":
            condition, then, otherwise = value
            chosen = then if resolve(doc["Conditions"][condition], doc, parameters) else otherwise
            return resolve(chosen, doc, parameters)
    return node


def test_inference_concurrency_is_reserved_only_when_asked_for(doc):
    # Given the reserved-concurrency parameter: a new account's limit (10) leaves nothing to reserve
    parameter = doc["Parameters"]["InferenceReservedConcurrency"]
    assert parameter["Default"] == parameter["MinValue"] == 0
    reserved = doc["Resources"]["InferenceFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved["Fn::If"][0] in doc["Conditions"]
    # When the stack is deployed with the default, Then the function has no reservation (the property is omitted)
    assert resolve(reserved, doc, {"InferenceReservedConcurrency": str(parameter["Default"])}) == "AWS::NoValue"
    # And when a reservation is asked for, it is that number
    assert resolve(reserved, doc, {"InferenceReservedConcurrency": "20"}) == "20"


def test_the_inference_api_is_iam_signed_keeps_bodies_out_of_logs_and_publishes_its_url(doc):
    api = doc["Resources"]["InferenceApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert all(setting["DataTraceEnabled"] is False for setting in api["MethodSettings"])
    url = doc["Outputs"]["InferenceApiUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${InferenceApi}.execute-api.") and url.endswith("/" + api["StageName"])
    # And the stage does not repeat the routes' version prefix (no .../v1/v1/predictions)
    events = doc["Resources"]["InferenceFunction"]["Properties"]["Events"].values()
    first_segments = {event["Properties"]["Path"].split("/")[1] for event in events}
    assert "v1" in first_segments and api["StageName"] not in first_segments
    # And the prediction capture ships the inference function's own log group
    function = doc["Resources"]["InferenceFunction"]["Properties"]
    capture = doc["Resources"]["CaptureSubscription"]["Properties"]
    assert function["LoggingConfig"]["LogGroup"] == capture["LogGroupName"] == {"Ref": "InferenceLogs"}


HEALTH_CHECK = """
import json, sys
import app
event = {"resource": "/health", "path": "/health", "httpMethod": "GET", "headers": {}, "multiValueHeaders": {},
         "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
         "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": "/health", "httpMethod": "GET", "requestId": "r-1", "identity": {}}}
context = type("Context", (), {"function_name": "inference", "memory_limit_in_mb": 1024, "aws_request_id": "l-1",
                                "invoked_function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:inference"})
reply = app.app(event, context())
heavy = sorted({"numpy", "scipy", "pandas", "sklearn", "treelite", "tl2cgen"} & set(sys.modules))
print(json.dumps({"status": reply["statusCode"], "body": json.loads(reply["body"]), "heavy": heavy}))
"""


def test_the_inference_makefile_build_is_a_package_that_starts_with_the_shared_layer_alone(tmp_path):
    # Given the package `sam build` makes for the inference function: its Makefile, run from elsewhere
    package = tmp_path / "InferenceFunction"
    make = ["make", "-s", "--makefile", str(REPO / "functions" / "inference" / "Makefile"), "build-InferenceFunction"]
    env = {**os.environ, "ARTIFACTS_DIR": str(package), "PYTHON": sys.executable}
    subprocess.run(make, env=env, cwd=tmp_path, check=True)
    # Then every module ships 3.11 bytecode that Lambda (which cannot write under /var/task) never revalidates
    modules = sorted(package.rglob("*.py"))
    assert package / "app.py" in modules and package / "chalice" / "app.py" in modules
    for module in modules:
        bytecode = module.parent / "__pycache__" / f"{module.stem}.cpython-311.pyc"
        assert bytecode.is_file(), module.relative_to(package)
        flags = int.from_bytes(bytecode.read_bytes()[4:8], "little")  # PEP 552: bit 0 hash-based, bit 1 checked
        assert flags == 0b01, module.relative_to(package)
    # When an interpreter without site initialisation imports the app from the package, the shared layer's code and
    # the installed dependencies (the layer's and the runtime's boto3), and API Gateway asks for /health
    dependencies = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    paths = [str(package), str(REPO / "layers" / "shared"), str(dependencies)]
    code = f"import sys; sys.path[:0] = {paths!r}\n" + HEALTH_CHECK
    lambda_env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_TRACE_DISABLED": "true",
                  "WOUNDCARE_HOME": str(tmp_path / "home"), "WOUNDCARE_CAPTURE_URL": "log://"}  # fmt: skip
    done = subprocess.run([sys.executable, "-S", "-c", code], env=lambda_env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    # Then every route module was packed (the app imported and answered), and nothing heavy was loaded
    assert answer["status"] == 200 and answer["body"]["models"] == {"production": None, "shadow": None}
    assert answer["heavy"] == []


def test_the_inference_makefile_refuses_a_python_other_than_the_runtimes(tmp_path):
    # Given an interpreter that reports Python 3.12 (the Lambda runtime is 3.11)
    other_python = tmp_path / "python3.12"
    other_python.write_text(f"#!{sys.executable}\nimport sys\nsys.version_info = (3, 12, 1)\nexec(sys.argv[2])\n")
    other_python.chmod(0o755)
    # When the inference package is built with it
    package = tmp_path / "InferenceFunction"
    make = ["make", "-s", "--makefile", str(REPO / "functions" / "inference" / "Makefile"), "build-InferenceFunction"]
    env = {**os.environ, "ARTIFACTS_DIR": str(package), "PYTHON": str(other_python)}
    done = subprocess.run(make, env=env, cwd=tmp_path, capture_output=True, text=True)
    # Then the build stops before packing anything, saying why
    assert done.returncode != 0 and "is not Python 3.11" in done.stderr
    assert not package.exists()
