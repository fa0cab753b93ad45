"""Run tracking: for every pipeline run, its inputs, parameters, each stage's status and duration,
its metrics and how it ended. Stage handlers wrap their work in `tracker.stage(run_id, name)`.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any, ClassVar

from woundcare_shared.settings import TABLE_SCHEMES, get_settings, parse_url
from woundcare_shared.storage import dynamodb_client, sqlite_prepare, sqlite_session

RUNNING, SUCCEEDED, FAILED, SKIPPED = "running", "succeeded", "failed", "skipped"
OUTCOMES = (SUCCEEDED, FAILED, SKIPPED)
_JSON_FIELDS = ("inputs", "parameters", "stages", "metrics")


class RunError(Exception):
    """A run-tracking request that cannot be carried out."""


class RunNotFoundError(RunError, LookupError):
    """No run has this id."""


class RunFinishedError(RunError):
    """The run already ended with another outcome."""


@dataclass(frozen=True)
class RunRecord:
    """One pipeline run. `stages` maps a stage name to its status, start time, duration (s) and error type."""

    run_id: str
    started_at: str
    inputs: dict[str, Any]
    parameters: dict[str, Any]
    stages: dict[str, dict[str, Any]]
    metrics: dict[str, Any]
    outcome: str
    ended_at: str
    reason: str


class RunTracker(ABC):
    """Run records; each change is atomic, so concurrent stages never lose each other's updates."""

    def start(self, run_id: str, inputs: dict[str, Any], parameters: dict[str, Any]) -> RunRecord:
        """Open the record of `run_id`; starting it again (a retried first stage) returns the first record."""
        return self._insert_or_get(RunRecord(run_id, _now(), inputs, parameters, {}, {}, RUNNING, "", ""))

    @contextmanager
    def stage(self, run_id: str, name: str) -> Iterator[None]:
        """Record stage `name` as running, then as succeeded or failed with its duration; errors propagate.

        Only the error's type is kept: exception messages may quote data values.
        """
        started_at, clock = _now(), time.perf_counter()
        self.record_stage(run_id, name, {"status": RUNNING, "started_at": started_at})
        try:
            yield
        except BaseException as error:
            self._end_stage(run_id, name, started_at, clock, FAILED, type(error).__name__)
            raise
        self._end_stage(run_id, name, started_at, clock, SUCCEEDED, "")

    def _end_stage(self, run_id: str, name: str, started_at: str, clock: float, status: str, error: str) -> None:
        duration = round(time.perf_counter() - clock, 6)
        entry = {"status": status, "started_at": started_at, "duration_s": duration, "error": error}
        self.record_stage(run_id, name, entry)

    def finish(self, run_id: str, outcome: str, reason: str = "") -> RunRecord:
        """Close the run with `outcome`; repeating the same outcome is a no-op, a different one an error."""
        if outcome not in OUTCOMES:
            raise RunError(f"a run ends as one of {OUTCOMES}, not {outcome!r}")
        if not self._finish(run_id, outcome, reason, _now()):
            ended = self.get(run_id)
            if ended.outcome != outcome:
                raise RunFinishedError(f"run {run_id} already ended as {ended.outcome!r}")
        return self.get(run_id)

    @abstractmethod
    def get(self, run_id: str) -> RunRecord:
        """The run's record; RunNotFoundError if unknown."""

    @abstractmethod
    def list(self) -> list[RunRecord]:
        """All runs, newest first."""

    @abstractmethod
    def record_stage(self, run_id: str, name: str, entry: dict[str, Any]) -> None:
        """Set what is known of stage `name` (replacing an earlier attempt's entry)."""

    @abstractmethod
    def add_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        """Merge `metrics` into the run's metrics, replacing values of the same names."""

    @abstractmethod
    def _insert_or_get(self, record: RunRecord) -> RunRecord:
        """Store `record` unless its run exists; return what is stored."""

    @abstractmethod
    def _finish(self, run_id: str, outcome: str, reason: str, at: str) -> bool:
        """End the run if it is still running; False if it had already ended."""


class SqliteRunTracker(RunTracker):
    """Runs in a SQLite table, nested fields as JSON; updates read and write in one transaction."""

    def __init__(self, path: str):
        self.path = path
        columns = ", ".join(f"{name} TEXT NOT NULL" for name in RunRecord.__dataclass_fields__)
        sqlite_prepare(path, f"CREATE TABLE IF NOT EXISTS runs ({columns}, PRIMARY KEY (run_id))")

    def get(self, run_id: str) -> RunRecord:
        with sqlite_session(self.path) as con:
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run {run_id}")
        return _from_row(row)

    def list(self) -> list[RunRecord]:
        with sqlite_session(self.path) as con:
            rows = con.execute("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC").fetchall()
        return [_from_row(r) for r in rows]

    def record_stage(self, run_id: str, name: str, entry: dict[str, Any]) -> None:
        self._merge(run_id, "stages", {name: entry})

    def add_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        self._merge(run_id, "metrics", metrics)

    def _merge(self, run_id: str, column: str, values: dict[str, Any]) -> None:
        with sqlite_session(self.path, write=True) as con:
            row = con.execute(f"SELECT {column} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"no run {run_id}")
            merged = {**json.loads(row[column]), **values}
            con.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?", (json.dumps(merged), run_id))

    def _insert_or_get(self, record: RunRecord) -> RunRecord:
        row = _to_row(record)
        with sqlite_session(self.path, write=True) as con:
            con.execute(f"INSERT OR IGNORE INTO runs VALUES ({', '.join(':' + k for k in row)})", row)
            stored = con.execute("SELECT * FROM runs WHERE run_id = ?", (record.run_id,)).fetchone()
        return _from_row(stored)

    def _finish(self, run_id: str, outcome: str, reason: str, at: str) -> bool:
        with sqlite_session(self.path, write=True) as con:
            changed = con.execute(
                "UPDATE runs SET outcome = ?, ended_at = ?, reason = ? WHERE run_id = ? AND outcome = ?",
                (outcome, at, reason, run_id, RUNNING),
            ).rowcount
        return changed == 1


class DynamoRunTracker(RunTracker):
    """Runs as DynamoDB items; stages and metrics are maps updated per entry, so concurrent writers merge."""

    TABLE_KEYS: ClassVar[dict[str, Any]] = {
        "KeySchema": [{"AttributeName": "run_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "run_id", "AttributeType": "S"}],
    }

    def __init__(self, table: str):
        self.table = table

    @cached_property
    def client(self) -> Any:
        return dynamodb_client()

    def get(self, run_id: str) -> RunRecord:
        item = self.client.get_item(TableName=self.table, Key={"run_id": {"S": run_id}}, ConsistentRead=True)
        if "Item" not in item:
            raise RunNotFoundError(f"no run {run_id}")
        return _from_item(item["Item"])

    def list(self) -> list[RunRecord]:
        pages = self.client.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        runs = [_from_item(i) for page in pages for i in page["Items"]]
        return sorted(runs, key=lambda r: (r.started_at, r.run_id), reverse=True)

    def record_stage(self, run_id: str, name: str, entry: dict[str, Any]) -> None:
        self._merge(run_id, "stages", {name: entry})

    def add_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        self._merge(run_id, "metrics", metrics)

    def _merge(self, run_id: str, attribute: str, values: dict[str, Any]) -> None:
        if not values:
            return
        # Each value is stored as JSON text in the map: exact floats, no Decimal conversion.
        names = {"#map": attribute, **{f"#k{i}": k for i, k in enumerate(values)}}
        updates = {f":v{i}": {"S": json.dumps(v, sort_keys=True)} for i, v in enumerate(values.values())}
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"run_id": {"S": run_id}},
                UpdateExpression="SET " + ", ".join(f"#map.#k{i} = :v{i}" for i in range(len(values))),
                ConditionExpression="attribute_exists(run_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=updates,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise RunNotFoundError(f"no run {run_id}") from None

    def _insert_or_get(self, record: RunRecord) -> RunRecord:
        try:
            self.client.put_item(
                TableName=self.table, Item=_to_item(record), ConditionExpression="attribute_not_exists(run_id)"
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return self.get(record.run_id)
        return record

    def _finish(self, run_id: str, outcome: str, reason: str, at: str) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"run_id": {"S": run_id}},
                UpdateExpression="SET outcome = :outcome, ended_at = :at, reason = :why",
                ConditionExpression="outcome = :running",
                ExpressionAttributeValues={
                    ":outcome": {"S": outcome},
                    ":at": {"S": at},
                    ":why": {"S": reason},
                    ":running": {"S": RUNNING},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _to_row(record: RunRecord) -> dict[str, str]:
    return {k: json.dumps(v, sort_keys=True) if k in _JSON_FIELDS else v for k, v in asdict(record).items()}


def _from_row(row: Any) -> RunRecord:
    return RunRecord(**{k: json.loads(v) if k in _JSON_FIELDS else v for k, v in dict(row).items()})


def _to_item(record: RunRecord) -> dict[str, Any]:
    item = {k: {"S": v} for k, v in _to_row(record).items() if k not in ("stages", "metrics")}
    return {**item, "stages": {"M": {}}, "metrics": {"M": {}}}


def _from_item(item: dict[str, Any]) -> RunRecord:
    fields: dict[str, Any] = {k: v["S"] for k, v in item.items() if "S" in v}
    for name in ("inputs", "parameters"):
        fields[name] = json.loads(fields[name])
    for name in ("stages", "metrics"):
        fields[name] = {k: json.loads(v["S"]) for k, v in item[name]["M"].items()}
    return RunRecord(**fields)


def open_run_tracker(url: str) -> RunTracker:
    """The run tracker a `sqlite:///path` or `dynamodb://table` URL names."""
    scheme, location, _ = parse_url(url, TABLE_SCHEMES)
    return SqliteRunTracker(location) if scheme == "sqlite" else DynamoRunTracker(location)


@lru_cache(maxsize=1)
def get_run_tracker() -> RunTracker:
    """The configured run tracker, opened once per process."""
    return open_run_tracker(get_settings().runs_url)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
