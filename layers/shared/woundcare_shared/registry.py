"""Model registry: model versions with their lineage, and a status that changes only by conditional
transitions, so two racing registrations or promotions can never both win.

Statuses: candidate → shadow → production → archived (and back to production for a rollback);
candidate or shadow → rejected. At most one version is in production: promoting one archives the
previous production version in the same atomic write.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any, ClassVar

from woundcare_shared.settings import TABLE_SCHEMES, get_settings, parse_url
from woundcare_shared.storage import dynamodb_client, sqlite_prepare, sqlite_session

CANDIDATE, SHADOW, PRODUCTION, ARCHIVED, REJECTED = "candidate", "shadow", "production", "archived", "rejected"
TRANSITIONS: dict[str, frozenset[str]] = {
    CANDIDATE: frozenset({SHADOW, REJECTED}),
    SHADOW: frozenset({PRODUCTION, REJECTED, ARCHIVED}),
    PRODUCTION: frozenset({ARCHIVED}),
    ARCHIVED: frozenset({PRODUCTION}),
    REJECTED: frozenset(),
}
INITIAL_STATUSES = (CANDIDATE, SHADOW)
_JSON_FIELDS = ("parameters", "metrics", "artifacts")


class RegistryError(Exception):
    """A registry request that cannot be carried out; the message says why."""


class VersionNotFoundError(RegistryError, LookupError):
    """No model version has this id."""


class StatusConflictError(RegistryError):
    """The version is not in the status the caller expected: someone else changed it first."""


class InvalidTransitionError(RegistryError, ValueError):
    """The lifecycle does not allow this status change."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: lineage (run, dataset, code, parameters), results and current status."""

    version: str
    run_id: str
    status: str
    created_at: str
    created_by: str
    dataset_version: str
    code_version: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    artifacts: dict[str, str]
    updated_at: str
    updated_by: str
    reason: str

    def to_row(self) -> dict[str, str]:
        """All fields as text, the nested ones as JSON, so every backend round-trips them exactly."""
        row = asdict(self)
        return {k: json.dumps(v, sort_keys=True) if k in _JSON_FIELDS else v for k, v in row.items()}

    @classmethod
    def from_row(cls, row: Any) -> ModelVersion:
        return cls(**{f.name: json.loads(row[f.name]) if f.name in _JSON_FIELDS else row[f.name] for f in _FIELDS})


_FIELDS = fields(ModelVersion)


def version_id(run_id: str) -> str:
    """The version id of the model built by `run_id`: derived from it, so a retried registration finds it."""
    return "mv-" + hashlib.sha256(run_id.encode()).hexdigest()[:12]


class Registry(ABC):
    """The lifecycle rules; backends supply atomic storage of versions and of status changes."""

    def register(
        self,
        *,
        run_id: str,
        created_by: str,
        dataset_version: str,
        code_version: str,
        parameters: dict[str, Any],
        metrics: dict[str, Any],
        artifacts: dict[str, str],
        status: str = CANDIDATE,
        reason: str = "",
    ) -> ModelVersion:
        """Add the model built by `run_id`; registering the same run again returns the first record unchanged."""
        if status not in INITIAL_STATUSES:
            raise InvalidTransitionError(f"a new model version starts as one of {INITIAL_STATUSES}, not {status!r}")
        now = _now()
        record = ModelVersion(
            version=version_id(run_id),
            run_id=run_id,
            status=status,
            created_at=now,
            created_by=created_by,
            dataset_version=dataset_version,
            code_version=code_version,
            parameters=parameters,
            metrics=metrics,
            artifacts=artifacts,
            updated_at=now,
            updated_by=created_by,
            reason=reason,
        )
        return self._insert_or_get(record)

    def transition(self, version: str, from_status: str, to_status: str, actor: str, reason: str) -> ModelVersion:
        """Move `version` from `from_status` to `to_status`, or raise StatusConflictError if it is not in
        `from_status`. Promoting to production archives the previous production version atomically."""
        if to_status not in TRANSITIONS.get(from_status, frozenset()):
            raise InvalidTransitionError(f"a model version cannot go from {from_status!r} to {to_status!r}")
        if not actor.strip() or not reason.strip():
            raise RegistryError("a status change needs the actor and the reason")
        self._transition(version, from_status, to_status, actor, reason, _now())
        return self.get(version)

    def current(self, status: str = PRODUCTION) -> ModelVersion | None:
        """The version in `status` that entered it last (the one production version), or None."""
        return _latest(self.list(status))

    def current_by_status(self, *statuses: str) -> dict[str, ModelVersion | None]:
        """`current` of each status from one read of the registry (one scan on DynamoDB, not one per status)."""
        versions = self.list()
        return {status: _latest(v for v in versions if v.status == status) for status in statuses}

    @abstractmethod
    def get(self, version: str) -> ModelVersion:
        """The version's record; VersionNotFoundError if unknown."""

    @abstractmethod
    def list(self, status: str | None = None) -> list[ModelVersion]:
        """All versions (or those in `status`), oldest first."""

    @abstractmethod
    def _insert_or_get(self, record: ModelVersion) -> ModelVersion:
        """Store `record` unless its version exists; return what is stored."""

    @abstractmethod
    def _transition(self, version: str, from_status: str, to_status: str, actor: str, reason: str, at: str) -> None:
        """Atomically: check the status is `from_status`, set `to_status`, archive the old production if promoting."""


class SqliteRegistry(Registry):
    """Versions in a SQLite table; each change is one BEGIN IMMEDIATE transaction."""

    def __init__(self, path: str):
        self.path = path
        columns = ", ".join(f"{f.name} TEXT NOT NULL" for f in _FIELDS)
        sqlite_prepare(
            path,
            f"CREATE TABLE IF NOT EXISTS model_versions ({columns}, PRIMARY KEY (version));"
            # The database itself refuses a second production version, whatever the code does.
            "CREATE UNIQUE INDEX IF NOT EXISTS one_production ON model_versions (status)"
            f" WHERE status = '{PRODUCTION}'",
        )

    def get(self, version: str) -> ModelVersion:
        with sqlite_session(self.path) as con:
            row = con.execute("SELECT * FROM model_versions WHERE version = ?", (version,)).fetchone()
        if row is None:
            raise VersionNotFoundError(f"no model version {version}")
        return ModelVersion.from_row(row)

    def list(self, status: str | None = None) -> list[ModelVersion]:
        with sqlite_session(self.path) as con:
            rows = con.execute(
                "SELECT * FROM model_versions WHERE ? IS NULL OR status = ? ORDER BY created_at, version",
                (status, status),
            ).fetchall()
        return [ModelVersion.from_row(r) for r in rows]

    def _insert_or_get(self, record: ModelVersion) -> ModelVersion:
        names = [f.name for f in _FIELDS]
        with sqlite_session(self.path, write=True) as con:
            con.execute(
                f"INSERT OR IGNORE INTO model_versions ({', '.join(names)})"
                f" VALUES ({', '.join(':' + n for n in names)})",
                record.to_row(),
            )
            row = con.execute("SELECT * FROM model_versions WHERE version = ?", (record.version,)).fetchone()
        return ModelVersion.from_row(row)

    def _transition(self, version: str, from_status: str, to_status: str, actor: str, reason: str, at: str) -> None:
        update = "UPDATE model_versions SET status = ?, updated_at = ?, updated_by = ?, reason = ? WHERE"
        with sqlite_session(self.path, write=True) as con:
            row = con.execute("SELECT status FROM model_versions WHERE version = ?", (version,)).fetchone()
            if row is None:
                raise VersionNotFoundError(f"no model version {version}")
            if row["status"] != from_status:
                raise StatusConflictError(f"model version {version} is {row['status']!r}, not {from_status!r}")
            if to_status == PRODUCTION:
                con.execute(f"{update} status = ?", (ARCHIVED, at, actor, f"replaced by {version}", PRODUCTION))
            con.execute(f"{update} version = ?", (to_status, at, actor, reason, version))


class DynamoRegistry(Registry):
    """Versions as DynamoDB items; every status change is a TransactWriteItems guarded by conditions.

    The item `#production` points at the production version; each promotion conditions on that
    pointer, so two promotions racing (even when no version is in production yet) cannot both win.
    """

    TABLE_KEYS: ClassVar[dict[str, Any]] = {
        "KeySchema": [{"AttributeName": "version", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "version", "AttributeType": "S"}],
    }
    _POINTER = "#production"

    def __init__(self, table: str):
        self.table = table

    @cached_property
    def client(self) -> Any:
        return dynamodb_client()

    def get(self, version: str) -> ModelVersion:
        item = self._get_item(version)
        if item is None:
            raise VersionNotFoundError(f"no model version {version}")
        return ModelVersion.from_row(item)

    def list(self, status: str | None = None) -> list[ModelVersion]:
        pages = self.client.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        items = [{k: v["S"] for k, v in i.items()} for page in pages for i in page["Items"]]
        versions = [ModelVersion.from_row(i) for i in items if not i["version"].startswith("#")]
        return sorted(
            (v for v in versions if status is None or v.status == status), key=lambda v: (v.created_at, v.version)
        )

    def _insert_or_get(self, record: ModelVersion) -> ModelVersion:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={k: {"S": v} for k, v in record.to_row().items()},
                ConditionExpression="attribute_not_exists(version)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return self.get(record.version)
        return record

    def _transition(self, version: str, from_status: str, to_status: str, actor: str, reason: str, at: str) -> None:
        writes = [self._set_status(version, from_status, to_status, actor, reason, at)]
        if PRODUCTION in (from_status, to_status):
            pointer = self._get_item(self._POINTER)
            previous = pointer["target"] if pointer else None
            if to_status == PRODUCTION:
                if previous:
                    writes.append(self._set_status(previous, PRODUCTION, ARCHIVED, actor, f"replaced by {version}", at))
                writes.append(self._move_pointer(version, previous))
            else:
                writes.append(self._move_pointer(None, version))
        try:
            self.client.transact_write_items(TransactItems=writes)
        except self.client.exceptions.TransactionCanceledException:
            raise self._conflict(version, from_status) from None

    def _conflict(self, version: str, from_status: str) -> RegistryError:
        current = self.get(version).status
        if current != from_status:
            return StatusConflictError(f"model version {version} is {current!r}, not {from_status!r}")
        return StatusConflictError(f"the production model changed while moving {version}; read it and retry")

    def _set_status(self, version: str, from_status: str, to_status: str, actor: str, reason: str, at: str) -> dict:
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"version": {"S": version}},
                "UpdateExpression": "SET #status = :to, updated_at = :at, updated_by = :by, reason = :why",
                "ConditionExpression": "#status = :from",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":from": {"S": from_status},
                    ":to": {"S": to_status},
                    ":at": {"S": at},
                    ":by": {"S": actor},
                    ":why": {"S": reason},
                },
            }
        }

    def _move_pointer(self, new: str | None, expected: str | None) -> dict:
        """Set (or, with new=None, delete) the production pointer, if it still points at `expected`."""
        key = {"version": {"S": self._POINTER}}
        if expected is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(version)"}
        else:
            condition = {
                "ConditionExpression": "target = :expected",
                "ExpressionAttributeValues": {":expected": {"S": expected}},
            }
        if new is None:
            return {"Delete": {"TableName": self.table, "Key": key, **condition}}
        return {"Put": {"TableName": self.table, "Item": {**key, "target": {"S": new}}, **condition}}

    def _get_item(self, version: str) -> dict[str, str] | None:
        item = self.client.get_item(TableName=self.table, Key={"version": {"S": version}}, ConsistentRead=True)
        return {k: v["S"] for k, v in item["Item"].items()} if "Item" in item else None


def open_registry(url: str) -> Registry:
    """The registry a `sqlite:///path` or `dynamodb://table` URL names."""
    scheme, location, _ = parse_url(url, TABLE_SCHEMES)
    return SqliteRegistry(location) if scheme == "sqlite" else DynamoRegistry(location)


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The configured registry, opened once per process."""
    return open_registry(get_settings().registry_url)


def _latest(versions: Iterable[ModelVersion]) -> ModelVersion | None:
    return max(versions, key=lambda v: v.updated_at, default=None)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
