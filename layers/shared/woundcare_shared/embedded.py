"""Embedded runtime: execute the real Step Functions ASL of template.yaml on a laptop, with no AWS account.

Three parts, usable alone or through `run_state_machine`:

- `load_template` reads a SAM template (short-form tags included), resolves the intrinsics a local run needs
  and describes every function (handler, environment) and state machine (definition, substitutions).
- `LocalLambdaInvoker` is a loopback HTTP server speaking the Lambda Invoke API; it calls the handler named
  in template.yaml in this process.
- `run_state_machine` / `execute` run a definition in moto's Step Functions interpreter (LocalStack's, carried
  in moto) with `AWS_ENDPOINT_URL_LAMBDA` pointed at the invoker, and stream state transitions to a callback.

Handler conventions. Zip functions: `CodeUri` + `Handler` ("app.lambda_handler" -> <CodeUri>/app.py,
function `lambda_handler`); the module is loaded from its file under a per-function module name, with CodeUri
on sys.path during the call as in Lambda. Image functions: `ImageConfig.Command[0]` is a dotted path
("functions.train.app.lambda_handler") imported from the repository root, because the Dockerfile copies the
repository into the image so the same module paths hold there.

What moto 5.2's interpreter was verified to run (fixture tests and trials): Task with a Lambda ARN resource
and with "arn:aws:states:::lambda:invoke" (Parameters, Payload.$, ResultSelector), Pass, Choice, Succeed,
Fail (Error/Cause reach describe_execution), Parallel, inline Map (ItemsPath/ItemProcessor), InputPath,
ResultPath, OutputPath, intrinsic functions (States.Format, States.StringToJson, States.JsonMerge, ...),
Retry (ErrorEquals on the handler's exception class name, MaxAttempts, BackoffRate) and Catch.
Retry really sleeps IntervalSeconds x BackoffRate^n, like AWS (and Wait really waits): there is no local
shortening, so keep retry intervals modest in the ASL (they cost nothing on the success path). A Task's
TimeoutSeconds is enforced (States.Timeout), but the handler still runs to its end in the background.
Not available: JSONata (QueryLanguage) and variables (Assign, $name): moto ships their evaluator stubbed out,
so they fail with States.Runtime. Other service integrations (sns:publish, ...) call moto's mocked services.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import yaml
from moto import mock_aws

DEFAULT_REGION = "us-east-1"
DEFAULT_STACK_NAME = "woundcare-local"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account: ARNs built here match the ones moto issues
LOCAL_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/woundcare-local-states"


class TemplateError(ValueError):
    """template.yaml cannot be turned into something runnable locally."""


class UnresolvedSubstitutionError(TemplateError):
    """A `${Name}` placeholder in an ASL definition has no DefinitionSubstitutions entry."""


class FunctionNotFoundError(LookupError):
    """No function of the template answers to the requested name or ARN."""


class _HandlerNotFoundError(Exception):
    """The handler module imports but does not define the handler function."""


# --- template reading -------------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that also understands CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...)."""


def _construct_short_form(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_form)


def parse_cfn_yaml(text: str) -> dict[str, Any]:
    """Parse CloudFormation YAML, turning short-form tags into their long form ({"Fn::GetAtt": [...]})."""
    return yaml.load(text, Loader=_CfnLoader)


_NO_VALUE = object()  # AWS::NoValue: the enclosing key or list item disappears
_NAME_PROPERTIES = ("FunctionName", "StateMachineName", "Name", "BucketName", "TableName", "TopicName", "QueueName")
_REF_RETURNS_ARN = {"AWS::SNS::Topic", "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"}
_ARN_FORMATS = {
    "AWS::Serverless::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Serverless::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::Serverless::SimpleTable": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
}


def _as_str(value: Any) -> str:
    """Render a resolved scalar the way CloudFormation puts it into a string (env var, substitution)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"expected a scalar, got a {type(value).__name__}")
    return str(value)


class _Resolver:
    """Evaluates intrinsic functions to the values they take in a local run (local names and ARNs)."""

    def __init__(self, doc: dict[str, Any], region: str, stack_name: str, parameters: Mapping[str, Any]):
        self._doc = doc
        self._resources: dict[str, Any] = doc.get("Resources") or {}
        self._fmt = {"region": region, "account": LOCAL_ACCOUNT_ID}
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:stack/{stack_name}/local",
            "AWS::NoValue": _NO_VALUE,
        }
        declared: dict[str, Any] = doc.get("Parameters") or {}
        unknown = set(parameters) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameters: {sorted(unknown)}")
        self._params = {name: parameters.get(name, spec.get("Default")) for name, spec in declared.items()}
        self._fns: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": lambda a: _as_str(a[0]).join(_as_str(v) for v in self(a[1])),
            "Fn::Select": lambda a: self(a[1])[int(self(a[0]))],
            "Fn::Split": lambda a: _as_str(self(a[1])).split(a[0]),
            "Fn::If": lambda a: self(a[1] if self.condition(a[0]) else a[2]),
            "Fn::Equals": lambda a: self(a[0]) == self(a[1]),
            "Fn::Not": lambda a: not self(a[0]),
            "Fn::And": lambda a: all(self(c) for c in a),
            "Fn::Or": lambda a: any(self(c) for c in a),
            "Condition": self.condition,
            "Fn::FindInMap": lambda a: self._doc["Mappings"][self(a[0])][self(a[1])][self(a[2])],
        }

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                (key, arg), *_ = value.items()
                if key in self._fns:
                    return self._fns[key](arg)
                if key.startswith("Fn::"):
                    raise TemplateError(f"intrinsic {key} is not supported for local runs")
            resolved = {k: self(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [v for v in map(self, value) if v is not _NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        try:
            return bool(self(self._doc["Conditions"][name]))
        except KeyError:
            raise TemplateError(f"unknown condition {name!r}") from None

    def physical_name(self, logical_id: str) -> str:
        props = self._resource(logical_id).get("Properties") or {}
        named = next((props[p] for p in _NAME_PROPERTIES if p in props), None)
        return logical_id if named is None else _as_str(self(named))

    def arn(self, logical_id: str) -> str:
        typ = self._resource(logical_id)["Type"]
        default = "arn:aws:" + typ.split("::")[1].lower() + ":{region}:{account}:{name}"
        return _ARN_FORMATS.get(typ, default).format(name=self.physical_name(logical_id), **self._fmt)

    def _resource(self, logical_id: str) -> dict[str, Any]:
        if logical_id not in self._resources:
            raise TemplateError(f"reference to unknown resource {logical_id!r}")
        return self._resources[logical_id]

    def _ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._params:
            if self._params[name] is None:
                raise TemplateError(f"parameter {name!r} has no Default: pass it in `parameters`")
            return self._params[name]
        if self._resource(name)["Type"] in _REF_RETURNS_ARN:
            return self.arn(name)
        return self.physical_name(name)

    def _get_att(self, arg: list[str]) -> str:
        logical_id, attribute = self(arg)
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "Name":
            return self.physical_name(logical_id)
        raise TemplateError(f"!GetAtt {logical_id}.{attribute}: only .Arn and .Name resolve locally")

    def _sub(self, arg: str | list[Any]) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):  # ${!Literal} is an escaped, literal ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return _as_str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(name.split(".", 1))
            return _as_str(self._ref(name))

        return re.sub(r"\$\{([^}]*)\}", replace, text)


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function as a local run sees it."""

    logical_id: str
    name: str
    arn: str
    package_type: str  # "Zip" or "Image"
    handler: str  # dotted "module.function"; for images the module path is from the repository root
    code_dir: Path | None  # zip functions only
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int


@dataclass(frozen=True)
class StateMachineSpec:
    """One AWS::Serverless::StateMachine with its DefinitionSubstitutions resolved for a local run."""

    logical_id: str
    name: str
    arn: str
    definition_uri: Path | None
    inline_definition: dict[str, Any] | None
    substitutions: dict[str, str]

    def definition(self) -> str:
        """The ASL text with `${Name}` substituted, as SAM would deploy it; fails on any placeholder left."""
        if self.definition_uri is not None:
            text = self.definition_uri.read_text(encoding="utf-8")
        else:
            text = json.dumps(self.inline_definition)
        text = re.sub(r"\$\{([^}]+)\}", lambda m: self.substitutions.get(m[1], m[0]), text)
        left = sorted(set(re.findall(r"\$\{([^}]*)\}", text)))
        if left:
            raise UnresolvedSubstitutionError(f"state machine {self.logical_id}: no DefinitionSubstitutions for {left}")
        return text


@dataclass(frozen=True)
class SamTemplate:
    """The functions and state machines of one template.yaml, resolved for a local run."""

    path: Path
    region: str
    functions: dict[str, FunctionSpec]
    state_machines: dict[str, StateMachineSpec]

    def function(self, name_or_arn: str) -> FunctionSpec:
        """Find a function by logical id, function name, or (possibly qualified) function ARN."""
        parts = name_or_arn.split(":")
        name = parts[parts.index("function") + 1] if "function" in parts else parts[0]
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        raise FunctionNotFoundError(f"no function {name!r} in {self.path.name}")

    def state_machine(self, logical_id: str) -> StateMachineSpec:
        if logical_id not in self.state_machines:
            raise TemplateError(f"no state machine {logical_id!r} in {self.path.name}")
        return self.state_machines[logical_id]


def _merge_globals(global_value: Any, value: Any) -> Any:
    """SAM's Globals rule: maps merge (the function wins), lists concatenate, scalars are overridden."""
    if isinstance(global_value, dict) and isinstance(value, dict):
        return {**global_value, **{k: _merge_globals(global_value.get(k), v) for k, v in value.items()}}
    if isinstance(global_value, list) and isinstance(value, list):
        return global_value + value
    return value


def _function_spec(logical_id: str, props: dict[str, Any], resolve: _Resolver, base: Path) -> FunctionSpec:
    package_type = props.get("PackageType", "Zip")
    code_dir: Path | None = None
    if package_type == "Image":
        command = (props.get("ImageConfig") or {}).get("Command") or []
        if len(command) != 1:
            raise TemplateError(f"{logical_id}: image functions need ImageConfig.Command: [<module.function>]")
        handler = command[0]
    else:
        if not isinstance(props.get("CodeUri"), str) or "Handler" not in props:
            raise TemplateError(f"{logical_id}: zip functions need a local CodeUri folder and a Handler")
        handler, code_dir = props["Handler"], (base / props["CodeUri"]).resolve()
    environment = (props.get("Environment") or {}).get("Variables") or {}
    return FunctionSpec(
        logical_id=logical_id,
        name=resolve.physical_name(logical_id),
        arn=resolve.arn(logical_id),
        package_type=package_type,
        handler=handler,
        code_dir=code_dir,
        environment={k: _as_str(v) for k, v in resolve(environment).items()},
        memory_mb=int(resolve(props.get("MemorySize", 128))),
        timeout_s=int(resolve(props.get("Timeout", 3))),
    )


def load_template(
    path: str | Path,
    *,
    region: str = DEFAULT_REGION,
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: Mapping[str, Any] | None = None,
) -> SamTemplate:
    """Read a SAM template and resolve what a local run needs: handlers, environments, ASL substitutions."""
    path = Path(path).resolve()
    doc = parse_cfn_yaml(path.read_text(encoding="utf-8"))
    resolve = _Resolver(doc, region, stack_name, parameters or {})
    function_globals = (doc.get("Globals") or {}).get("Function") or {}
    functions: dict[str, FunctionSpec] = {}
    machines: dict[str, StateMachineSpec] = {}
    for logical_id, resource in (doc.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::Function":
            merged = _merge_globals(function_globals, props)
            functions[logical_id] = _function_spec(logical_id, merged, resolve, path.parent)
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if uri is None and "Definition" not in props:
                raise TemplateError(f"{logical_id}: needs DefinitionUri (a local file) or Definition")
            substitutions = resolve(props.get("DefinitionSubstitutions") or {})
            machines[logical_id] = StateMachineSpec(
                logical_id=logical_id,
                name=resolve.physical_name(logical_id),
                arn=resolve.arn(logical_id),
                definition_uri=None if uri is None else (path.parent / uri).resolve(),
                inline_definition=props.get("Definition"),
                substitutions={k: _as_str(v) for k, v in substitutions.items()},
            )
    return SamTemplate(path=path, region=region, functions=functions, state_machines=machines)


# --- in-process Lambda invoker ----------------------------------------------------------------------------

# os.environ and sys.path are process-wide: invocations hold this lock while a function's environment is
# applied, so calls are sequential (Parallel/Map branches queue here) and never see each other's variables.
_INVOKE_LOCK = threading.Lock()
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")


@contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore the previous values exactly."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            sys.path.remove(entry)


@dataclass
class LambdaContext:
    """The subset of the Lambda context object handlers and Powertools read; the timeout is not enforced."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/[$LATEST]{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error_document(error_type: str, exc: BaseException) -> bytes:
    """Lambda's payload for an unhandled error; Step Functions matches Retry/Catch on errorType."""
    return json.dumps(
        {
            "errorType": error_type,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
    ).encode()


class LocalLambdaInvoker:
    """Loopback server speaking the Lambda Invoke API, calling the template's handlers in this process.

    Each call applies the function's template environment (then `extra_env`, which wins) and restores the
    previous environment afterwards. Handler modules are imported once, on first call, inside that scope.
    Calls run one at a time, so a handler must not synchronously invoke another function through it.
    """

    def __init__(
        self,
        template: SamTemplate,
        repo_root: str | Path | None = None,
        extra_env: Mapping[str, str] | None = None,
    ):
        self.template = template
        self.repo_root = Path(repo_root or template.path.parent).resolve()
        self._extra_env = dict(extra_env or {})
        self._handlers: dict[str, Callable[[Any, LambdaContext], Any]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the invoker is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LocalLambdaInvoker:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _request_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-lambda", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def invoke(self, function: str, payload: bytes) -> tuple[bytes, bool]:
        """Run one invocation: (response payload, True if the function raised), as Lambda's Invoke returns."""
        spec = self.template.function(function)
        event = json.loads(payload) if payload else {}
        context = LambdaContext(spec.name, spec.arn, spec.memory_mb, spec.timeout_s)
        search_dir = spec.code_dir or self.repo_root
        with _INVOKE_LOCK, scoped_environ({**spec.environment, **self._extra_env}), _on_sys_path(search_dir):
            try:
                handler = self._handler(spec)
            except _HandlerNotFoundError as exc:
                return _error_document("Runtime.HandlerNotFound", exc), True
            except Exception as exc:
                return _error_document("Runtime.ImportModuleError", exc), True
            try:
                result = handler(event, context)
            except Exception as exc:
                return _error_document(type(exc).__name__, exc), True
        try:
            return json.dumps(result, allow_nan=False).encode(), False
        except (TypeError, ValueError) as exc:
            return _error_document("Runtime.MarshalError", exc), True

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, LambdaContext], Any]:
        if spec.logical_id not in self._handlers:
            module_path, _, attribute = spec.handler.rpartition(".")
            if spec.code_dir is None:
                module = importlib.import_module(module_path)
            else:
                module = _load_zip_module(spec, module_path)
            handler = getattr(module, attribute, None)
            if not callable(handler):
                raise _HandlerNotFoundError(f"handler {spec.handler!r} is not a function of its module")
            self._handlers[spec.logical_id] = handler
        return self._handlers[spec.logical_id]


def _load_zip_module(spec: FunctionSpec, module_path: str) -> Any:
    """Load a zip function's handler file under a per-function name, so two functions' app.py never clash."""
    assert spec.code_dir is not None
    name = f"_woundcare_local_{spec.logical_id}_{module_path.replace('.', '_')}"
    if name in sys.modules:
        return sys.modules[name]
    source = spec.code_dir / (module_path.replace(".", "/") + ".py")
    module_spec = importlib.util.spec_from_file_location(name, source)
    if module_spec is None or module_spec.loader is None or not source.is_file():
        raise ImportError(f"no handler module {source}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _request_handler(invoker: LocalLambdaInvoker) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            match = _INVOKE_PATH.fullmatch(urlsplit(self.path).path)
            if match is None:
                return self._reply(404, b'{"message": "not a Lambda Invoke path"}', "UnknownOperationException")
            if self.headers.get("X-Amz-Invocation-Type", "RequestResponse") != "RequestResponse":
                message = b'{"message": "only RequestResponse invocations run locally"}'
                return self._reply(400, message, "InvalidParameterValueException")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload, failed = invoker.invoke(unquote(match[1]), body)
            except FunctionNotFoundError as exc:
                return self._reply(404, json.dumps({"message": str(exc)}).encode(), "ResourceNotFoundException")
            except ValueError:
                message = b'{"message": "payload is not JSON"}'
                return self._reply(400, message, "InvalidRequestContentException")
            self._reply(200, payload, function_error="Unhandled" if failed else None)

        def _reply(
            self, status: int, body: bytes, error_type: str | None = None, function_error: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Amz-Executed-Version", "$LATEST")
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            if function_error:
                self.send_header("X-Amz-Function-Error", function_error)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request stderr line; callers watch the execution history instead."""

    return InvokeHandler


# --- running a state machine ------------------------------------------------------------------------------

_SCHEDULED = {"LambdaFunctionScheduled", "TaskScheduled", "ActivityScheduled"}
_FAILED = {
    "LambdaFunctionFailed",
    "LambdaFunctionScheduleFailed",
    "LambdaFunctionStartFailed",
    "LambdaFunctionTimedOut",
    "TaskFailed",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "TaskTimedOut",
    "ActivityFailed",
    "ActivityTimedOut",
}


@dataclass(frozen=True)
class StateEvent:
    """One state transition, streamed while the execution runs.

    kind: "entered", "task_scheduled" (one per attempt; attempt > 1 is a retry), "task_failed", "exited",
    or "execution_succeeded" / "execution_failed" / "execution_aborted" / "execution_timed_out" (state None).
    entry_id pairs the events of one run of a state (the id of its StateEntered history event).
    """

    kind: str
    state: str | None
    state_type: str | None
    timestamp: datetime
    entry_id: int | None = None
    attempt: int | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def is_retry(self) -> bool:
        return self.kind == "task_scheduled" and (self.attempt or 0) > 1


@dataclass(frozen=True)
class StateRun:
    """One run of one state in the timeline; exited_at is None if the execution ended inside it."""

    name: str
    state_type: str
    entered_at: datetime
    exited_at: datetime | None
    duration_s: float
    attempts: int
    error: str | None
    cause: str | None


@dataclass(frozen=True)
class ExecutionResult:
    """How an execution ended, with every streamed event and the per-state timeline."""

    execution_arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    started_at: datetime
    stopped_at: datetime
    events: tuple[StateEvent, ...]
    timeline: tuple[StateRun, ...]

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


class _HistoryReader:
    """Turns get_execution_history events into StateEvents, once each, as new events appear."""

    def __init__(self) -> None:
        self._by_id: dict[int, dict[str, Any]] = {}
        self._attempts: Counter[int] = Counter()

    def feed(self, raw_events: list[dict[str, Any]]) -> list[StateEvent]:
        fresh = [raw for raw in raw_events if raw["id"] not in self._by_id]
        self._by_id.update((raw["id"], raw) for raw in fresh)
        return [event for raw in fresh if (event := self._translate(raw)) is not None]

    def _entry(self, raw: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        """The StateEntered event a history event belongs to, found by walking previousEventId back."""
        current = self._by_id.get(raw.get("previousEventId", 0))
        while current is not None:
            entered = current["type"].endswith("StateEntered")
            if entered and name in (None, current["stateEnteredEventDetails"]["name"]):
                return current
            current = self._by_id.get(current.get("previousEventId", 0))
        raise RuntimeError(f"history event {raw['id']} belongs to no state")

    def _translate(self, raw: dict[str, Any]) -> StateEvent | None:
        typ: str = raw["type"]
        details: dict[str, Any] = next((v for k, v in raw.items() if k.endswith("EventDetails")), {})
        at = raw["timestamp"]
        if typ.endswith("StateEntered"):
            return StateEvent("entered", details["name"], typ.removesuffix("StateEntered"), at, raw["id"])
        if typ.endswith("StateExited"):
            entry = self._entry(raw, details["name"])
            return StateEvent("exited", details["name"], typ.removesuffix("StateExited"), at, entry["id"])
        if typ in _SCHEDULED or typ in _FAILED:
            entry = self._entry(raw)
            self._attempts[entry["id"]] += typ in _SCHEDULED
            kind = "task_scheduled" if typ in _SCHEDULED else "task_failed"
            state = entry["stateEnteredEventDetails"]["name"]
            state_type = entry["type"].removesuffix("StateEntered")
            attempt = self._attempts[entry["id"]]
            return StateEvent(
                kind, state, state_type, at, entry["id"], attempt, details.get("error"), details.get("cause")
            )
        if typ.startswith("Execution") and typ != "ExecutionStarted":
            kind = re.sub(r"(?<!^)(?=[A-Z])", "_", typ).lower()  # ExecutionTimedOut -> execution_timed_out
            return StateEvent(kind, None, None, at, error=details.get("error"), cause=details.get("cause"))
        return None


def _timeline(events: tuple[StateEvent, ...], stopped_at: datetime) -> tuple[StateRun, ...]:
    runs: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.kind == "entered":
            runs[event.entry_id or 0] = {
                "name": event.state,
                "state_type": event.state_type,
                "entered_at": event.timestamp,
                "exited_at": None,
                "attempts": 0,
                "error": None,
                "cause": None,
            }
        elif event.entry_id in runs:
            run = runs[event.entry_id]
            if event.kind == "exited":
                run["exited_at"] = event.timestamp
            elif event.kind == "task_scheduled":
                run["attempts"] = event.attempt
            elif event.kind == "task_failed":
                run["error"], run["cause"] = event.error, event.cause
    return tuple(
        StateRun(duration_s=((run["exited_at"] or stopped_at) - run["entered_at"]).total_seconds(), **run)
        for run in runs.values()
    )


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def execute(
    client: Any,
    state_machine_arn: str,
    execution_input: Any = None,
    *,
    on_event: Callable[[StateEvent], None] | None = None,
    execution_name: str | None = None,
    poll_interval_s: float = 0.05,
    timeout_s: float | None = None,
) -> ExecutionResult:
    """Start an execution and follow it to the end, calling on_event (on this thread) for each transition.

    The caller owns the setup: a moto `mock_aws` with execute_state_machine on, and AWS_ENDPOINT_URL_LAMBDA
    pointing at a running LocalLambdaInvoker. `run_state_machine` does all of it.
    """
    # moto names an unnamed execution "None", so a second one on the same machine would clash: always name it.
    execution_arn = client.start_execution(
        stateMachineArn=state_machine_arn,
        name=execution_name or uuid.uuid4().hex,
        input=json.dumps({} if execution_input is None else execution_input),
    )["executionArn"]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    reader = _HistoryReader()
    events: list[StateEvent] = []
    while True:
        # Describe first: once it reports a final status, the history fetched after it is complete.
        description = client.describe_execution(executionArn=execution_arn)
        pages = client.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        for event in reader.feed([raw for page in pages for raw in page["events"]]):
            events.append(event)
            if on_event is not None:
                on_event(event)
        if description["status"] != "RUNNING":
            break
        if deadline is not None and time.monotonic() > deadline:
            client.stop_execution(executionArn=execution_arn, error="Local.Timeout", cause="run_state_machine")
            raise TimeoutError(f"execution still running after {timeout_s} s; stopped")
        time.sleep(poll_interval_s)
    stopped_at = description["stopDate"]
    return ExecutionResult(
        execution_arn=execution_arn,
        status=description["status"],
        output=json.loads(description["output"]) if "output" in description else None,
        error=description.get("error"),
        cause=description.get("cause"),
        started_at=description["startDate"],
        stopped_at=stopped_at,
        events=tuple(events),
        timeline=_timeline(tuple(events), stopped_at),
    )


def run_state_machine(
    template_path: str | Path,
    machine_logical_id: str,
    execution_input: Any = None,
    *,
    on_event: Callable[[StateEvent], None] | None = None,
    execution_name: str | None = None,
    repo_root: str | Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    region: str = DEFAULT_REGION,
    poll_interval_s: float = 0.05,
    timeout_s: float | None = None,
) -> ExecutionResult:
    """Run one state machine of template.yaml end to end on this machine: moto interprets the real ASL,
    the invoker runs the real handlers. The environment is restored when it returns."""
    template = load_template(template_path, region=region, parameters=parameters)
    machine = template.state_machine(machine_logical_id)
    definition = machine.definition()
    with (
        LocalLambdaInvoker(template, repo_root, extra_env) as invoker,
        scoped_environ({"AWS_ENDPOINT_URL_LAMBDA": invoker.endpoint_url}),
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        # The interpreter logs every state failure, caught ones included, with a dump of the state; the same
        # facts arrive as StateEvents, so its logger is muted for the run.
        _quiet_logger("moto.stepfunctions.parser"),
    ):
        client = boto3.client("stepfunctions", region_name=template.region)
        arn = client.create_state_machine(name=machine.name, definition=definition, roleArn=LOCAL_ROLE_ARN)[
            "stateMachineArn"
        ]
        return execute(
            client,
            arn,
            execution_input,
            on_event=on_event,
            execution_name=execution_name,
            poll_interval_s=poll_interval_s,
            timeout_s=timeout_s,
        )
