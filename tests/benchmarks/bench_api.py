"""Benchmark: the inference API's full POST /v1/predictions (trajectory and ranked options included) on the
compiled scorer vs the same handler on the scikit-learn model; cold starts; the inference package's size.

Targets (issue 6): warm p50 >= 20x faster than scikit-learn, cold start < 300 ms, package < 10 MB (zipped).
Both paths run in this one run, through the Chalice app, with API Gateway proxy events.
Warm: in-process latency of the app call; the two paths take turns in blocks of WARM_BLOCK requests, so both
see the same load on a shared machine; the model call alone (margins of the request's latest row) is timed too,
to tell the scorer's speed-up from the handler's. Cold start = from just before a fresh interpreter is spawned to
its first response (imports, configuration, model fetch into an empty cache directory as in a new Lambda's /tmp,
checksum, dlopen, first request); interpreter teardown is left out. Three cold paths: compiled and scikit-learn
from the source tree with bytecode (the bench keeps its own cache, filled by an untimed first run), and compiled
from the built function package with no bytecode for the function's own modules, as the Makefile ships it (Lambda
cannot write __pycache__ under /var/task; the runtime and the layer keep theirs). The AWS runtime adds the SDK
(boto3 import and the S3 and DynamoDB clients) and, with Tracing: Active, the X-Ray SDK, both measured here in
fresh interpreters, and the network round trips (not measured here).
Package = functions/inference/Makefile's output (the function) plus the SharedLayer (woundcare_shared and the
dependencies layers/shared/requirements.txt names, as installed here, without boto3, which the Lambda runtime
provides), each zipped with deflate. Prints a table and writes out/bench/api.json.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from importlib import metadata
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "functions" / "inference" / "app.py"
OUT = Path("out/bench/api.json")
WARM_REQUESTS = 200  # per path
WARM_BLOCK = 20
COLD_RUNS = 7
TARGETS = {"warm_speedup_p50": 20.0, "cold_start_ms": 300.0, "package_zip_bytes": 10_000_000}
# The SharedLayer's distributions (layers/shared/requirements.txt and their dependencies, minus the runtime's boto3).
LAYER_DISTRIBUTIONS = (
    "aws-lambda-powertools",
    "aws-xray-sdk",
    "wrapt",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "typing-extensions",
    "typing-inspection",
    "annotated-types",
)


def build_state(home: Path) -> tuple[dict, str]:
    """Train, compile and register a production model under `home`; return one open wound's request and version."""
    from model_build.compile import compile_model
    from model_build.features_table import landmarks
    from model_build.healing import HealingParams, fit_healing_model
    from model_build.histories import wound_history
    from model_build.synth import SynthConfig, generate_cohort, write_cohort
    from model_build.validate import validate_extract
    from woundcare_shared.registry import PRODUCTION, SHADOW, open_registry, version_id
    from woundcare_shared.storage import open_store

    config = SynthConfig(n_patients=1000, seed=3)
    write_cohort(generate_cohort(config), home / "extract")
    clean = validate_extract(home / "extract", extract_date=config.extract_date).clean
    rows = landmarks(clean["patients"], clean["wounds"], clean["assessments"])
    model = fit_healing_model(rows, HealingParams(max_iter=100, min_samples_leaf=20))
    meta = model.serving_meta()
    bundle = compile_model(model.survival.estimator_, home / "bundle", meta["design_columns"], meta)
    store, registry = open_store(f"file://{home / 'store'}"), open_registry(f"sqlite://{home / 'woundcare.db'}")
    version = version_id("bench-run")
    for path in sorted(bundle.iterdir()):
        store.put_file(f"models/{version}/native/{path.name}", path)
    store.put_bytes(f"models/{version}/model.pkl", pickle.dumps(model))
    artifacts = {
        "native_bundle": f"models/{version}/native/bundle.json",
        "native_model": f"models/{version}/native/model.so",
        "model": f"models/{version}/model.pkl",
    }
    registry.register(
        run_id="bench-run",
        created_by="bench",
        dataset_version="bench",
        code_version="bench",
        parameters={},
        metrics={},
        artifacts=artifacts,
        status=SHADOW,
        reason="benchmark",
    )
    registry.transition(version, SHADOW, PRODUCTION, "bench", "benchmark")
    patient, wound, visits = wound_history(clean, rows.ids["wound_key"].iloc[0])
    request = {"patient": patient, "wound": {**wound, "end_date": None, "end_reason": None}, "assessments": visits[:3]}
    return request, version


def event(body: dict) -> dict:
    """An API Gateway REST proxy event for POST /v1/predictions."""
    return {
        "resource": "/v1/predictions",
        "path": "/v1/predictions",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/v1/predictions",
            "httpMethod": "POST",
            "path": "/v1/predictions",
            "requestId": str(uuid.uuid4()),
            "identity": {},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


CONTEXT = SimpleNamespace(
    function_name="inference",
    memory_limit_in_mb=1024,
    aws_request_id="bench",
    invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:inference",
    get_remaining_time_in_millis=lambda: 29000,
)

# The reference path: the same server and handler, scoring with the pickled scikit-learn model. Only the model call
# differs: the curve arithmetic (trajectory, options) is the bundle's native twin on both paths.
SKLEARN_LOADER = """
import pickle
from model_build.predict import Scorer
from woundcare_shared.serving import load_compiled
def load_pickled(record, store, cache_dir):
    model = pickle.loads(store.get_bytes(record.artifacts["model"]))
    arithmetic = load_compiled(record, store, cache_dir).summarise
    return Scorer(record.version, model.margins, model.serving_meta(), arithmetic)
"""

COLD = """
import time
import json, sys
{setup}
import importlib.util
spec = importlib.util.spec_from_file_location("inference_app", {app!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from types import SimpleNamespace
ctx = SimpleNamespace(function_name="f", memory_limit_in_mb=1024, aws_request_id="r", invoked_function_arn="a",
                      get_remaining_time_in_millis=lambda: 29000)
response = module.app(json.loads(sys.stdin.read()), ctx)
sys.stderr.write("STATUS %d AT %r\\n" % (response["statusCode"], time.monotonic()))
"""

# What the AWS runtime adds to a cold start, in a fresh interpreter that has imported Powertools (the local cold
# start does too): boto3 and the S3 and DynamoDB clients (no call made), then the Tracer with the X-Ray SDK, which
# Powertools loads and patches in with Tracing: Active (LAMBDA_TASK_ROOT set, tracing not disabled).
AWS_EXTRAS = """
import sys, time
import aws_lambda_powertools
began = time.monotonic()
import boto3
boto3.client("s3")
boto3.client("dynamodb")
sdk = time.monotonic()
from woundcare_shared.observability import tracer
assert not tracer.disabled
sys.stderr.write("AT %r %r\\n" % (sdk - began, time.monotonic() - sdk))
"""


def sklearn_setup() -> str:
    return SKLEARN_LOADER + (
        "from functools import lru_cache\nfrom woundcare_shared import serving\n"
        "serving.get_server = lru_cache(maxsize=1)(lambda: serving.start(loader=load_pickled))\n"
    )


def load_app(path: Path = APP):
    spec = spec_from_file_location("inference_app", path)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def warm(app, body: dict, servers: dict) -> dict[str, list[float]]:
    """Seconds per request of each path; the paths alternate in blocks of WARM_BLOCK requests."""
    from woundcare_shared import serving

    times: dict[str, list[float]] = {name: [] for name in servers}
    started = serving.get_server
    try:
        for server in servers.values():  # one untimed request per path first
            serving.get_server = lambda server=server: server
            app(event(body), CONTEXT)
        for _ in range(WARM_REQUESTS // WARM_BLOCK):
            for name, server in servers.items():
                serving.get_server = lambda server=server: server
                for _ in range(WARM_BLOCK):
                    e = event(body)
                    began = time.perf_counter()
                    response = app(e, CONTEXT)
                    times[name].append(time.perf_counter() - began)
                    assert response["statusCode"] == 200 and json.loads(response["body"])["clinical_output"]
    finally:
        serving.get_server = started
    return times


def scorer_only(body: dict, servers: dict) -> dict[str, list[float]]:
    """Seconds per call of each path's model alone: the margins of the request's latest feature row."""
    from model_build.features import history_features
    from model_build.validate_history import typed_history

    row = history_features(*typed_history(body))[-1]
    times: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(WARM_REQUESTS // WARM_BLOCK):
        for name, server in servers.items():
            margins = server.models.production.scorer.margins
            for _ in range(WARM_BLOCK):
                began = time.perf_counter()
                margins([row])
                times[name].append(time.perf_counter() - began)
    return times


def cold(setup: str, body: dict, env: dict, app: Path = APP) -> list[float]:
    """Seconds from spawning a fresh interpreter to its first response, each run with an empty model cache.

    One untimed run first fills the bench's bytecode cache (PYTHONPYCACHEPREFIX), if the environment lets it.
    """
    code = COLD.format(setup=setup, app=str(app))
    times = []
    for _ in range(1 + COLD_RUNS):
        run_env = {**env, "WOUNDCARE_MODEL_CACHE_DIR": tempfile.mkdtemp(prefix="models-", dir=env["WOUNDCARE_HOME"])}
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", code], input=json.dumps(event(body)), capture_output=True, text=True, env=run_env
        )
        status, _, at = done.stderr.rpartition("STATUS ")[2].partition(" AT ")
        assert done.returncode == 0 and status == "200", done.stderr[-2000:]
        times.append(float(at) - began)
    return times[1:]


def aws_extras(env: dict) -> dict[str, list[float]]:
    """Seconds a fresh interpreter spends on the AWS SDK and on the X-Ray tracer (see AWS_EXTRAS)."""
    aws = {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    kept = {k: v for k, v in env.items() if not k.startswith("AWS_") and k != "POWERTOOLS_TRACE_DISABLED"}
    run_env = kept | aws | {"LAMBDA_TASK_ROOT": "/tmp"}  # placeholder keys: clients are made, never called
    times: dict[str, list[float]] = {"aws_sdk": [], "xray_tracer": []}
    for run in range(1 + COLD_RUNS):  # the first run fills the bytecode cache, untimed
        done = subprocess.run([sys.executable, "-c", AWS_EXTRAS], capture_output=True, text=True, env=run_env)
        assert done.returncode == 0, done.stderr[-2000:]
        sdk, xray = done.stderr.rpartition("AT ")[2].split()
        if run:
            times["aws_sdk"].append(float(sdk))
            times["xray_tracer"].append(float(xray))
    return times


def package_sizes(work: Path) -> dict:
    """Zipped and unzipped bytes of the function package (built into work/function) and the SharedLayer."""
    function = work / "function"
    subprocess.run(
        [
            "make",
            "-s",
            "-f",
            str(ROOT / "functions/inference/Makefile"),
            "build-InferenceFunction",
            f"ARTIFACTS_DIR={function}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
    )
    layer_files = [
        (p, Path("python") / p.relative_to(ROOT / "layers/shared"))
        for p in (ROOT / "layers/shared/woundcare_shared").rglob("*.py")
    ]
    for name in LAYER_DISTRIBUTIONS:
        dist = metadata.distribution(name)
        for file in dist.files or ():
            if "__pycache__" not in file.parts and not str(file).endswith(".pyc"):
                layer_files.append((Path(dist.locate_file(file)), Path("python") / file))
    function_files = [(p, p.relative_to(function)) for p in function.rglob("*") if p.is_file()]
    return {
        "function": _zip(function_files, work / "function.zip"),
        "shared_layer": _zip(layer_files, work / "layer.zip"),
    }


def _zip(files: list[tuple[Path, Path]], target: Path) -> dict:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, name in files:
            archive.write(source, str(name))
    return {"zipped_bytes": target.stat().st_size, "unzipped_bytes": sum(p.stat().st_size for p, _ in files)}


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def spread(values: list[float]) -> dict:
    return {"median_ms": ms(statistics.median(values)), "min_ms": ms(min(values)), "max_ms": ms(max(values))}


def main() -> int:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        home = Path(tmp)
        request, version = build_state(home)
        # Subprocesses keep their bytecode in the bench's own cache, written whatever the caller's setting.
        inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env = {
            **inherited,
            "PYTHONPYCACHEPREFIX": str(home / "pycache"),
            "WOUNDCARE_HOME": str(home),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "WOUNDCARE_CAPTURE_URL": f"file://{home / 'captures.jsonl'}",
        }
        os.environ.update({k: v for k, v in env.items() if not k.startswith("PYTHON")})
        from woundcare_shared import serving

        namespace: dict = {}
        exec(SKLEARN_LOADER, namespace)
        servers = {"compiled": serving.start(), "scikit-learn": serving.start(loader=namespace["load_pickled"])}
        warm_times = warm(load_app(), request, servers)
        scorer_times = scorer_only(request, servers)
        sizes = package_sizes(home / "package")
        packaged = {**env, "PYTHONPATH": str(home / "package" / "function"), "PYTHONDONTWRITEBYTECODE": "1"}
        cold_times = {
            "compiled": cold("", request, env),
            "scikit-learn": cold(sklearn_setup(), request, env),
            "compiled, package as shipped": cold("", request, packaged, home / "package" / "function" / "app.py"),
        }
        extras = aws_extras(env)
    warm_results = {
        name: {"p50_ms": ms(statistics.median(t)), "p99_ms": ms(pct(t, 99)), "requests": len(t)}
        for name, t in warm_times.items()
    }
    cold_results = {name: spread(t) for name, t in cold_times.items()}
    scorer_results = {name: {"p50_ms": ms(statistics.median(t))} for name, t in scorer_times.items()}
    speedup = warm_results["scikit-learn"]["p50_ms"] / warm_results["compiled"]["p50_ms"]
    scorer_speedup = scorer_results["scikit-learn"]["p50_ms"] / scorer_results["compiled"]["p50_ms"]
    total_zip = sizes["function"]["zipped_bytes"] + sizes["shared_layer"]["zipped_bytes"]
    cold_ms = cold_results["compiled"]["median_ms"]
    met = {
        "warm_speedup_p50": speedup >= TARGETS["warm_speedup_p50"],
        "cold_start_ms": cold_ms < TARGETS["cold_start_ms"],
        "package_zip_bytes": total_zip < TARGETS["package_zip_bytes"],
    }
    print(
        f"{'path':<30}"
        + "".join(f"{h:>12}" for h in ("warm p50 ms", "warm p99 ms", "cold med ms", "cold min ms", "cold max ms"))
    )
    for name, cold_result in cold_results.items():
        warm_result = warm_results.get(name, {})
        p50, p99 = (f"{warm_result[k]:>12.2f}" if warm_result else f"{'':>12}" for k in ("p50_ms", "p99_ms"))
        print(
            f"{name:<30}{p50}{p99}{cold_result['median_ms']:>12.1f}{cold_result['min_ms']:>12.1f}"
            f"{cold_result['max_ms']:>12.1f}"
        )
    aws = {name: spread(t) for name, t in extras.items()}
    labels = {"aws_sdk": "AWS: boto3 + S3, DynamoDB clients", "xray_tracer": "AWS: Tracer with X-Ray SDK"}
    for name, label in labels.items():
        print(f"{label:<54}" + "".join(f"{aws[name][k]:>12.1f}" for k in ("median_ms", "min_ms", "max_ms")))
    for part, size in sizes.items():
        print(f"{part:<14} zip {size['zipped_bytes'] / 1e6:6.2f} MB, unzipped {size['unzipped_bytes'] / 1e6:6.2f} MB")
    print(
        f"model call alone (margins of the latest row), p50: compiled {scorer_results['compiled']['p50_ms']:.3f} ms, "
        f"scikit-learn {scorer_results['scikit-learn']['p50_ms']:.3f} ms, {scorer_speedup:.0f}x"
    )
    print(f"model {version}; {WARM_REQUESTS} warm requests per path in blocks of {WARM_BLOCK}; {COLD_RUNS} cold runs")
    print(
        f"warm p50 speed-up {speedup:.1f}x (target >= 20x: {_verdict(met['warm_speedup_p50'])}); "
        f"cold start {cold_ms:.0f} ms (target < 300 ms: {_verdict(met['cold_start_ms'])}); "
        f"package {total_zip / 1e6:.2f} MB (target < 10 MB: {_verdict(met['package_zip_bytes'])})"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg(),
                },
                "warm": warm_results,
                "warm_speedup_p50": speedup,
                "model_call_alone": scorer_results,
                "model_call_speedup_p50": scorer_speedup,
                "cold_start": cold_results,
                "aws_extras": aws,
                "package": sizes,
                "package_total_zip_bytes": total_zip,
                "targets": TARGETS,
                "met": met,
            },
            indent=2,
        )
    )
    print(f"written to {OUT.resolve()}")
    return 0


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    raise SystemExit(main())
