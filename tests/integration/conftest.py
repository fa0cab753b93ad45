"""Fixtures for the service contract suites: each service once on local files, once on AWS under moto."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from woundcare_shared.audit import AuditLog, DynamoAuditLog, get_audit_log, open_audit_log
from woundcare_shared.registry import DynamoRegistry, Registry, get_registry, open_registry
from woundcare_shared.runs import DynamoRunTracker, RunTracker, get_run_tracker, open_run_tracker
from woundcare_shared.settings import get_settings
from woundcare_shared.storage import ObjectStore, get_store, open_store

# DynamoDB applies each write (and each transaction) atomically on the server. moto's in-memory
# backend checks conditions and writes in plain Python, and rolls a failed transaction back by
# restoring a copy of the whole table, so racing threads could interleave inside one request.
# Serialising backend calls gives moto the service's atomicity; the conditions stay ours to get right.
_BACKEND_CALLS = ("put_item", "get_item", "update_item", "delete_item", "scan", "query", "transact_write_items")
_BACKEND_LOCK = threading.RLock()


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _BACKEND_LOCK:
            return method(*args, **kwargs)

    return call


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-memory AWS with fake credentials, so nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in _BACKEND_CALLS:
        monkeypatch.setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    with mock_aws():
        yield


def create_table(name: str, keys: dict[str, Any]) -> str:
    """A DynamoDB table under moto with the key schema an adapter declares; returns its name."""
    boto3.client("dynamodb").create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **keys)
    return name


def _backend(request: pytest.FixtureRequest) -> str:
    if request.param == "aws":
        request.getfixturevalue("aws")
    return str(request.param)


@pytest.fixture(params=["local", "aws"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if _backend(request) == "local":
        return open_store(f"file://{tmp_path / 'store'}")
    boto3.client("s3").create_bucket(
        Bucket="woundcare-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return open_store("s3://woundcare-test/env/dev")


@pytest.fixture(params=["local", "aws"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if _backend(request) == "local":
        return open_registry(f"sqlite://{tmp_path / 'woundcare.db'}")
    return open_registry(f"dynamodb://{create_table('registry', DynamoRegistry.TABLE_KEYS)}")


@pytest.fixture(params=["local", "aws"])
def audit_log(request: pytest.FixtureRequest, tmp_path: Path) -> AuditLog:
    if _backend(request) == "local":
        return open_audit_log(f"sqlite://{tmp_path / 'woundcare.db'}")
    return open_audit_log(f"dynamodb://{create_table('audit', DynamoAuditLog.TABLE_KEYS)}")


@pytest.fixture(params=["local", "aws"])
def runs(request: pytest.FixtureRequest, tmp_path: Path) -> RunTracker:
    if _backend(request) == "local":
        return open_run_tracker(f"sqlite://{tmp_path / 'woundcare.db'}")
    return open_run_tracker(f"dynamodb://{create_table('runs', DynamoRunTracker.TABLE_KEYS)}")


_CACHED = (get_settings, get_store, get_registry, get_audit_log, get_run_tracker)


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set WOUNDCARE_<NAME> variables for one test; cached settings and services are forgotten around it."""

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"WOUNDCARE_{name.upper()}", value)
        for cached in _CACHED:
            cached.cache_clear()

    yield set_env
    for cached in _CACHED:
        cached.cache_clear()


@pytest.fixture
def race() -> Callable[..., list[Any]]:
    """Run calls on threads released together; each one's result, or the exception it raised."""
    return _race


def _race(*calls: Callable[[], Any]) -> list[Any]:
    start = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = calls[i]()
        except Exception as error:
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
