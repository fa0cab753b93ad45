"""The embedded runtime runs real ASL in moto's interpreter against real handlers named in template.yaml."""

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from woundcare_shared.embedded import (
    LocalLambdaInvoker,
    StateEvent,
    TemplateError,
    UnresolvedSubstitutionError,
    load_template,
    parse_cfn_yaml,
    run_state_machine,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "embedded"
TEMPLATE = FIXTURE / "template.yaml"
ACCOUNT = "123456789012"


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


# --- template reading -------------------------------------------------------------------------------------


def test_short_form_tags_load_as_long_form_intrinsics():
    # Given CloudFormation YAML written with short-form tags, nested inside each other
    text = """
    A: !GetAtt TrainFunction.Arn
    B: !Sub "${AWS::StackName}-x"
    C: !If [IsProd, !Ref Big, !Join ["-", [a, !Select [0, [x, y]]]]]
    D: !Condition IsProd
    """
    # When it is parsed
    doc = parse_cfn_yaml(text)
    # Then every tag is the long form CloudFormation defines, nesting preserved
    assert doc == {
        "A": {"Fn::GetAtt": ["TrainFunction", "Arn"]},
        "B": {"Fn::Sub": "${AWS::StackName}-x"},
        "C": {
            "Fn::If": [
                "IsProd",
                {"Ref": "Big"},
                {"Fn::Join": ["-", ["a", {"Fn::Select": [0, ["x", "y"]]}]]},
            ]
        },
        "D": {"Condition": "IsProd"},
    }


def test_functions_resolve_handlers_environment_and_globals():
    # Given the fixture template with zip and image functions and Globals.Function
    # When it is loaded
    template = load_template(TEMPLATE)
    intake = template.functions["IntakeFunction"]
    score = template.functions["ScoreFunction"]
    # Then a zip function's handler file is <CodeUri>/<module>.py and its FunctionName intrinsic is resolved
    assert intake.package_type == "Zip"
    assert intake.code_dir == FIXTURE / "zip_functions" / "intake"
    assert intake.handler == "app.lambda_handler"
    assert intake.name == "woundcare-local-intake"
    assert intake.arn == lambda_arn("woundcare-local-intake")
    # And Globals merge under the function's own variables, every value a string as Lambda requires
    assert intake.environment == {
        "WOUNDCARE_STAGE": "local",
        "FIXTURE_SHARED": "from-globals",
        "FIXTURE_GREETING": "hello-local",
        "FIXTURE_TOPIC_ARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:woundcare-local-alerts",
        "FIXTURE_LARGE_CM2": "10",
    }
    assert (intake.memory_mb, intake.timeout_s) == (256, 30)
    # And an image function is the dotted module path of its Command, its own MemorySize overriding Globals
    assert score.package_type == "Image"
    assert score.code_dir is None
    assert score.handler == "embedded_fixture_stages.score.lambda_handler"
    assert score.name == "ScoreFunction"
    assert score.environment["FIXTURE_MULTIPLIER"] == "2"
    assert (score.memory_mb, score.timeout_s) == (1024, 30)


def test_parameter_override_flips_the_conditional_environment():
    # Given the Stage parameter set to prod (IsProd condition true)
    # When the template is loaded
    template = load_template(TEMPLATE, parameters={"Stage": "prod"})
    # Then !Ref Stage and !If [IsProd, ...] follow it
    env = template.functions["IntakeFunction"].environment
    assert (env["WOUNDCARE_STAGE"], env["FIXTURE_GREETING"]) == ("prod", "hello-prod")


def test_definition_substitutions_become_local_arns_in_the_asl():
    # Given the pipeline state machine's DefinitionSubstitutions (!GetAtt .Arn, !Ref topic, !Sub, !Join)
    machine = load_template(TEMPLATE, region="eu-west-1").state_machine("PipelineStateMachine")
    # Then they resolve to local ARNs and plain strings
    assert machine.substitutions == {
        "IntakeFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:woundcare-local-intake",
        "ScoreFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:ScoreFunction",
        "AlertTopicArn": "arn:aws:sns:eu-west-1:123456789012:woundcare-local-alerts",
        "RunRegion": "eu-west-1",
        "StageName": "woundcare-local",
    }
    # And the definition is the ASL file with every ${...} replaced
    definition = json.loads(machine.definition())
    assert "${" not in machine.definition()
    assert definition["States"]["Intake"]["Resource"] == machine.substitutions["IntakeFunctionArn"]
    assert definition["States"]["Score"]["Parameters"]["FunctionName"] == machine.substitutions["ScoreFunctionArn"]


def test_unresolved_substitution_fails_before_anything_runs():
    # Given a state machine whose ASL uses ${TrainFunctionArn}, absent from its DefinitionSubstitutions
    machine = load_template(TEMPLATE).state_machine("BrokenStateMachine")
    # When its definition is requested, or it is run
    # Then both fail, naming the placeholder left
    with pytest.raises(UnresolvedSubstitutionError, match=r"BrokenStateMachine.*TrainFunctionArn"):
        machine.definition()
    with pytest.raises(UnresolvedSubstitutionError, match="TrainFunctionArn"):
        run_state_machine(TEMPLATE, "BrokenStateMachine", {})


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("F: {Type: AWS::Serverless::Function, Properties: {Handler: app.h}}", "CodeUri"),
        ("F: {Type: AWS::Serverless::Function, Properties: {PackageType: Image}}", "ImageConfig.Command"),
        (
            "F: {Type: AWS::Serverless::Function, Properties: {CodeUri: f/, Handler: app.h,"
            " Environment: {Variables: {Z: !GetAZs ''}}}}",
            "Fn::GetAZs",
        ),
        (
            "F: {Type: AWS::Serverless::Function, Properties: {CodeUri: f/, Handler: app.h,"
            " Environment: {Variables: {Z: !Ref Missing}}}}",
            "Missing",
        ),
    ],
    ids=["zip-without-code-uri", "image-without-command", "unsupported-intrinsic", "unknown-reference"],
)
def test_template_errors_name_what_cannot_run_locally(tmp_path, resources, message):
    # Given a template with something a local run cannot resolve
    path = tmp_path / "template.yaml"
    path.write_text(f"Resources:\n  {resources}\n")
    # When it is loaded
    # Then loading fails with a message that points at it
    with pytest.raises(TemplateError, match=message):
        load_template(path)


# --- the invoker, through the real Lambda client ----------------------------------------------------------


def lambda_client(endpoint_url: str):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_invoker_answers_the_lambda_invoke_api_like_lambda():
    # Given a running invoker and botocore's own Lambda client pointed at it
    with LocalLambdaInvoker(load_template(TEMPLATE)) as invoker:
        client = lambda_client(invoker.endpoint_url)
        # When a function is invoked by ARN, then the handler's return value is the payload
        ok = client.invoke(FunctionName=lambda_arn("RejectFunction"), Payload=json.dumps({"reject": False}))
        assert "FunctionError" not in ok
        assert json.load(ok["Payload"]) == {"accepted": True}
        # When the handler raises, then Lambda's unhandled-error shape comes back
        failed = client.invoke(FunctionName="RejectFunction", Payload=json.dumps({"reject": True}))
        assert failed["FunctionError"] == "Unhandled"
        error = json.load(failed["Payload"])
        assert (error["errorType"], error["errorMessage"]) == ("ValueError", "extract rejected by the fixture stage")
        # When the function does not exist, then it is Lambda's ResourceNotFoundException
        with pytest.raises(ClientError) as missing:
            client.invoke(FunctionName=lambda_arn("NoSuchFunction"), Payload=b"{}")
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [("handlers.no_such_handler", "Runtime.HandlerNotFound"), ("no_such_module.flaky", "Runtime.ImportModuleError")],
)
def test_handler_that_cannot_be_loaded_fails_with_the_lambda_runtime_error(handler, error_type):
    # Given a function whose Handler names a missing function, or a missing module
    template = load_template(TEMPLATE)
    broken = dataclasses.replace(template.functions["RejectFunction"], handler=handler)
    template = dataclasses.replace(template, functions={**template.functions, "RejectFunction": broken})
    # When it is invoked
    with LocalLambdaInvoker(template) as invoker:
        payload, failed = invoker.invoke("RejectFunction", b"{}")
    # Then the error is typed as the Lambda runtime types it, so Retry/Catch can tell it apart
    assert failed
    assert json.loads(payload)["errorType"] == error_type


# --- executions -------------------------------------------------------------------------------------------


def entered_states(events: tuple[StateEvent, ...]) -> list[str | None]:
    return [event.state for event in events if event.kind == "entered"]


def test_pipeline_passes_data_through_task_choice_task_to_succeed():
    # Given a large wound
    wound = {"wound_id": "w-001", "area_cm2": 12.5}
    # When the pipeline state machine runs
    result = run_state_machine(TEMPLATE, "PipelineStateMachine", wound)
    # Then it takes the Task -> Choice -> Task -> Pass -> Succeed path
    assert result.succeeded, (result.error, result.cause)
    assert entered_states(result.events) == ["Intake", "IsLarge", "Score", "Notify", "Done"]
    # And data flows through ResultPath, lambda:invoke's ResultSelector, Parameters and States.Format
    assert result.output["intake"]["large"] is True
    assert result.output["score"]["value"] == 25.0
    assert result.output["message"] == "wound w-001 scored 25.0"
    assert result.output["topic"] == f"arn:aws:sns:us-east-1:{ACCOUNT}:woundcare-local-alerts"
    # And the image handler got a Lambda context describing its template function
    context = result.output["score"]["context"]
    assert context["function_name"] == "ScoreFunction"
    assert context["invoked_function_arn"] == lambda_arn("ScoreFunction")
    assert context["memory_limit_in_mb"] == 1024
    assert 0 < context["remaining_ms"] <= 30_000
    # And the timeline has one exited run per state, tasks with one attempt each
    assert [(run.name, run.attempts) for run in result.timeline] == [
        ("Intake", 1),
        ("IsLarge", 0),
        ("Score", 1),
        ("Notify", 0),
        ("Done", 0),
    ]
    assert all(run.exited_at is not None and run.duration_s >= 0 for run in result.timeline)


def test_state_transitions_stream_while_the_execution_runs():
    # Given a scoring stage that takes 0.8 s, and a callback noting when each event arrives
    received: list[tuple[StateEvent, datetime]] = []
    wound = {"wound_id": "w-002", "area_cm2": 20.0, "score_delay_s": 0.8}
    # When the pipeline runs
    result = run_state_machine(
        TEMPLATE, "PipelineStateMachine", wound, on_event=lambda e: received.append((e, datetime.now(UTC)))
    )
    # Then the callback saw every event, in the order of the result
    assert tuple(event for event, _ in received) == result.events
    # And the first state was reported while the slow stage was still running, not after the end
    intake_entered_at = next(at for event, at in received if event.kind == "entered" and event.state == "Intake")
    assert intake_entered_at < result.stopped_at - timedelta(seconds=0.3)
    # And the timeline measures the slow stage
    score = next(run for run in result.timeline if run.name == "Score")
    assert score.duration_s >= 0.8
    assert result.events[-1].kind == "execution_succeeded"


def test_fail_state_error_and_cause_reach_the_result():
    # Given a wound below the scoring threshold
    # When the pipeline runs
    result = run_state_machine(TEMPLATE, "PipelineStateMachine", {"wound_id": "w-003", "area_cm2": 3.0})
    # Then the Choice routes to the Fail state, whose Error and Cause are the execution's
    assert result.status == "FAILED"
    assert (result.error, result.cause) == ("Intake.TooSmall", "wound area below the scoring threshold")
    assert entered_states(result.events) == ["Intake", "IsLarge", "TooSmall"]
    assert result.events[-1].kind == "execution_failed"
    assert result.events[-1].error == "Intake.TooSmall"
    # And the Fail state is the timeline's last run, never exited
    assert (result.timeline[-1].name, result.timeline[-1].exited_at) == ("TooSmall", None)


def test_transient_errors_are_retried_by_the_asl_then_succeed(tmp_path):
    # Given a stage that raises TransientStageError on its first two calls (counted in a file)
    execution_input = {"counter_file": str(tmp_path / "calls"), "fail_times": 2, "reject": False}
    # When the recovery state machine runs (Retry: TransientStageError, MaxAttempts 3)
    result = run_state_machine(TEMPLATE, "RecoveryStateMachine", execution_input)
    # Then the third attempt succeeds and the execution completes normally
    assert result.succeeded, (result.error, result.cause)
    assert result.output["flaky"] == {"attempts": 3}
    assert result.output["reject"] == {"accepted": True}
    # And each failure and retry was streamed with its attempt number and the handler's exception type
    flaky = [(e.kind, e.attempt, e.error) for e in result.events if e.state == "Flaky" and e.kind.startswith("task")]
    assert flaky == [
        ("task_scheduled", 1, None),
        ("task_failed", 1, "TransientStageError"),
        ("task_scheduled", 2, None),
        ("task_failed", 2, "TransientStageError"),
        ("task_scheduled", 3, None),
    ]
    assert [e.attempt for e in result.events if e.is_retry] == [2, 3]
    assert next(run for run in result.timeline if run.name == "Flaky").attempts == 3


def test_non_retryable_error_is_caught_and_recorded(tmp_path):
    # Given a stage that rejects its input with ValueError (not in its Retry list)
    execution_input = {"counter_file": str(tmp_path / "calls"), "fail_times": 0, "reject": True}
    # When the recovery state machine runs
    result = run_state_machine(TEMPLATE, "RecoveryStateMachine", execution_input)
    # Then Catch routes the error, with the handler's type and message, to the failure-record task
    assert result.succeeded, (result.error, result.cause)
    assert result.output == {
        "recorded": True,
        "error": "ValueError",
        "message": "extract rejected by the fixture stage",
        "flaky_attempts": 1,
    }
    # And the rejecting stage ran once (no retry), exited through its Catch with the error noted
    reject = next(run for run in result.timeline if run.name == "Reject")
    assert (reject.attempts, reject.error) == (1, "ValueError")
    assert reject.exited_at is not None
    assert entered_states(result.events) == ["Flaky", "Reject", "RecordFailure"]


def test_handler_environment_is_applied_for_the_call_and_restored(monkeypatch):
    # Given a variable the template also sets, already set differently in this process
    monkeypatch.setenv("FIXTURE_SHARED", "outer")
    monkeypatch.delenv("FIXTURE_GREETING", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_LAMBDA", raising=False)
    # When the pipeline runs with an extra local variable for every function
    result = run_state_machine(
        TEMPLATE, "PipelineStateMachine", {"wound_id": "w-004", "area_cm2": 11.0}, extra_env={"FIXTURE_EXTRA": "x"}
    )
    # Then the handler saw its template environment (Globals included) and the extra variable
    assert result.output["intake"]["env"] == {
        "WOUNDCARE_STAGE": "local",
        "FIXTURE_SHARED": "from-globals",
        "FIXTURE_GREETING": "hello-local",
        "FIXTURE_TOPIC_ARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:woundcare-local-alerts",
        "FIXTURE_EXTRA": "x",
    }
    # And afterwards the process environment is as it was: nothing leaked, nothing lost
    assert os.environ["FIXTURE_SHARED"] == "outer"
    assert "FIXTURE_GREETING" not in os.environ
    assert "FIXTURE_EXTRA" not in os.environ
    assert "AWS_ENDPOINT_URL_LAMBDA" not in os.environ


def test_runs_inside_an_existing_moto_session_keep_its_data_and_get_distinct_executions():
    # Given a moto session the caller already holds, with data in it (as the CLI's local S3 would)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="woundcare-local-data")
        s3.put_object(Bucket="woundcare-local-data", Key="extract/patients.csv", Body=b"patient_key\n")
        wound = {"wound_id": "w-005", "area_cm2": 15.0}
        # When the same state machine runs twice in it, the second time under a chosen execution name
        first = run_state_machine(TEMPLATE, "PipelineStateMachine", wound)
        second = run_state_machine(TEMPLATE, "PipelineStateMachine", wound, execution_name="run-0042")
        # Then both succeed as separate executions, the named one keeping its name
        assert first.succeeded and second.succeeded
        assert first.execution_arn != second.execution_arn
        assert second.execution_arn.endswith(":execution:PipelineStateMachine:run-0042")
        # And the caller's data is still there
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="woundcare-local-data")["Contents"]]
        assert keys == ["extract/patients.csv"]
