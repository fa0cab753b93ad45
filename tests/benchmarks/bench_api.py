"""Benchmark: the inference API's full POST /v1/predictions (trajectory and ranked options included) on the
compiled scorer vs the same handler on the scikit-learn model; cold starts; the inference package's size.

Targets (issue 6): warm p50 >= 20x faster than scikit-learn, cold start < 300 ms, package < 10 MB (zipped).
Both paths run in this one run, through the Chalice app, with API Gateway proxy events. Cold start = a fresh
interpreter's wall time from exec to the first response printed (imports, configuration, model fetch + checksum
+ dlopen, first request). Package = functions/inference/Makefile's output (the function) plus the SharedLayer
(woundcare_shared and the dependencies layers/shared/requirements.txt names, as installed here, without boto3,
which the Lambda runtime provides), each zipped with deflate. Prints a table and writes out/bench/api.json.
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
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "functions" / "inference" / "app.py"
OUT = Path("out/bench/api.json")
WARM_REQUESTS = 200
COLD_RUNS = 7
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
    from woundcare_testing import wound_history

    from model_build.compile import compile_model
    from model_build.features_table import landmarks
    from model_build.healing import HealingParams, fit_healing_model
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

# The reference path: the same server and handler, scoring with the pickled scikit-learn model.
SKLEARN_LOADER = """
import pickle
from model_build.predict import Scorer
def load_pickled(record, store, cache_dir):
    model = pickle.loads(store.get_bytes(record.artifacts["model"]))
    return Scorer(record.version, model.margins, model.serving_meta())
"""

COLD = """
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
sys.stderr.write("STATUS %d\\n" % response["statusCode"])
"""


def sklearn_setup() -> str:
    return SKLEARN_LOADER + (
        "from functools import lru_cache\nfrom woundcare_shared import serving\n"
        "serving.get_server = lru_cache(maxsize=1)(lambda: serving.start(loader=load_pickled))\n"
    )


def warm(app, body: dict) -> list[float]:
    app(event(body), CONTEXT)
    times = []
    for _ in range(WARM_REQUESTS):
        e = event(body)
        began = time.perf_counter()
        response = app(e, CONTEXT)
        times.append(time.perf_counter() - began)
        assert response["statusCode"] == 200 and json.loads(response["body"])["clinical_output"]
    return times


def cold(setup: str, body: dict, env: dict) -> list[float]:
    code = COLD.format(setup=setup, app=str(APP))
    times = []
    for _ in range(COLD_RUNS):
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(event(body)),
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        times.append(time.perf_counter() - began)
        assert "STATUS 200" in done.stderr, done.stderr[-2000:]
    return times


def package_sizes(work: Path) -> dict:
    """Zipped and unzipped bytes of the function package and the SharedLayer."""
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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        home = Path(tmp)
        request, version = build_state(home)
        env = {
            **os.environ,
            "WOUNDCARE_HOME": str(home),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "WOUNDCARE_CAPTURE_URL": f"file://{home / 'captures.jsonl'}",
        }
        os.environ.update(env)
        from functools import lru_cache
        from importlib.util import module_from_spec, spec_from_file_location

        from woundcare_shared import serving

        spec = spec_from_file_location("inference_app", APP)
        module = module_from_spec(spec)
        spec.loader.exec_module(module)
        compiled_warm = warm(module.app, request)
        namespace: dict = {}
        exec(SKLEARN_LOADER, namespace)
        started = serving.get_server
        serving.get_server = lru_cache(maxsize=1)(lambda: serving.start(loader=namespace["load_pickled"]))
        sklearn_warm = warm(module.app, request)
        serving.get_server = started
        compiled_cold, sklearn_cold = cold("", request, env), cold(sklearn_setup(), request, env)
        sizes = package_sizes(home / "package")
    paths = {"compiled": (compiled_warm, compiled_cold), "scikit-learn": (sklearn_warm, sklearn_cold)}
    results = {
        name: {
            "warm_p50_ms": ms(statistics.median(w)),
            "warm_p99_ms": ms(pct(w, 99)),
            "cold_start_median_ms": ms(statistics.median(c)),
            "cold_start_min_ms": ms(min(c)),
        }
        for name, (w, c) in paths.items()
    }
    speedup = results["scikit-learn"]["warm_p50_ms"] / results["compiled"]["warm_p50_ms"]
    total_zip = sizes["function"]["zipped_bytes"] + sizes["shared_layer"]["zipped_bytes"]
    print(f"{'path':<14}{'warm p50 ms':>13}{'warm p99 ms':>13}{'cold med ms':>13}{'cold min ms':>13}")
    for name, r in results.items():
        print(
            f"{name:<14}{r['warm_p50_ms']:>13.2f}{r['warm_p99_ms']:>13.2f}{r['cold_start_median_ms']:>13.1f}"
            f"{r['cold_start_min_ms']:>13.1f}"
        )
    print(f"warm p50 speed-up {speedup:.1f}x (target >= 20x); model {version}; {WARM_REQUESTS} warm requests")
    for part, size in sizes.items():
        print(f"{part:<14} zip {size['zipped_bytes'] / 1e6:6.2f} MB, unzipped {size['unzipped_bytes'] / 1e6:6.2f} MB")
    print(f"package total zip {total_zip / 1e6:.2f} MB (target < 10 MB); cold start target < 300 ms")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average": os.getloadavg(),
                },
                "paths": results,
                "warm_speedup_p50": speedup,
                "package": sizes,
                "package_total_zip_bytes": total_zip,
            },
            indent=2,
        )
    )
    print(f"written to {OUT.resolve()}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    raise SystemExit(main())
