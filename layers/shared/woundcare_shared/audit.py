"""Tamper-evident, append-only audit log: who did what, to which subject, when and why.

Each record carries the SHA-256 of its own content and of the record before it, and a head entry
(seq 0) holds the last seq and hash, written in the same atomic step as the record. So `verify()`
finds an edited, deleted, reordered or inserted record, including the last one. A writer able to
rewrite the head and every later record could still forge a consistent log; anchoring the head hash
elsewhere (e.g. an object-locked bucket) closes that gap.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any, ClassVar

from woundcare_shared.settings import TABLE_SCHEMES, get_settings, parse_url
from woundcare_shared.storage import dynamodb_client, sqlite_prepare, sqlite_session

GENESIS_HASH = "0" * 64
_MAX_ATTEMPTS = 50


class AuditError(RuntimeError):
    """An audit record could not be written."""


@dataclass(frozen=True)
class AuditRecord:
    """One entry: its place in the chain, the who/what/when/why, and the hashes linking it."""

    seq: int
    ts: str
    actor: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of every field but `hash` (prev_hash included, which forms the chain)."""
        content = {k: v for k, v in asdict(self).items() if k != "hash"}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog(ABC):
    """Chaining and checking; backends store a record and move the head in one conditional write."""

    def append(
        self, actor: str, action: str, subject: str, reason: str, details: dict[str, Any] | None = None
    ) -> AuditRecord:
        """Add a record at the end of the chain; racing writers each get their own seq."""
        if not (actor.strip() and action.strip() and reason.strip()):
            raise ValueError("an audit record needs an actor, an action and a reason")
        # A JSON round trip gives the details exactly the form they will have when read back and re-hashed.
        canonical_details = json.loads(json.dumps(details or {}, sort_keys=True))
        for _ in range(_MAX_ATTEMPTS):
            last_seq, last_hash = self._head()
            unsigned = AuditRecord(
                last_seq + 1, _now(), actor, action, subject, reason, canonical_details, last_hash, ""
            )
            record = AuditRecord(**{**asdict(unsigned), "hash": unsigned.content_hash()})
            if self._append(record):
                return record
        raise AuditError(f"audit record not written: the log changed {_MAX_ATTEMPTS} times while appending")

    def verify(self) -> list[str]:
        """Every inconsistency in the log, by seq only (never record content); empty when the log is intact."""
        problems = []
        last_seq, last_hash = 0, GENESIS_HASH
        for record in self.records():
            if record.seq != last_seq + 1:
                first, last = last_seq + 1, record.seq - 1
                problems.append(f"record {first} missing" if first == last else f"records {first} to {last} missing")
            elif record.prev_hash != last_hash:
                problems.append(f"record {record.seq} does not chain to record {last_seq}")
            if record.hash != record.content_hash():
                problems.append(f"record {record.seq} was altered: its content does not match its hash")
            last_seq, last_hash = record.seq, record.hash
        head_seq, head_hash = self._head()
        if head_seq != last_seq:
            problems.append(f"the log ends at record {last_seq} but its head says {head_seq}")
        elif head_hash != last_hash:
            problems.append(f"record {last_seq} does not match the hash held by the head")
        return problems

    @abstractmethod
    def records(self) -> list[AuditRecord]:
        """All records in seq order."""

    @abstractmethod
    def _head(self) -> tuple[int, str]:
        """(seq, hash) of the last record as the head holds them; (0, GENESIS_HASH) for an empty log."""

    @abstractmethod
    def _append(self, record: AuditRecord) -> bool:
        """Store `record` and move the head to it, only if the head is still at record.seq - 1."""


class SqliteAuditLog(AuditLog):
    """The log in SQLite tables; triggers refuse UPDATE and DELETE of records."""

    def __init__(self, path: str):
        self.path = path
        sqlite_prepare(
            path,
            "CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL,"
            " actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, reason TEXT NOT NULL,"
            " details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 0),"
            " seq INTEGER NOT NULL, hash TEXT NOT NULL);"
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        )

    def records(self) -> list[AuditRecord]:
        with sqlite_session(self.path) as con:
            rows = con.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
        return [AuditRecord(**{**dict(r), "details": json.loads(r["details"])}) for r in rows]

    def _head(self) -> tuple[int, str]:
        with sqlite_session(self.path) as con:
            return _head_of(con)

    def _append(self, record: AuditRecord) -> bool:
        row = {**asdict(record), "details": json.dumps(record.details, sort_keys=True)}
        with sqlite_session(self.path, write=True) as con:
            if _head_of(con)[0] != record.seq - 1:
                return False
            con.execute(f"INSERT INTO audit_log VALUES ({', '.join(':' + k for k in row)})", row)
            con.execute("INSERT OR REPLACE INTO audit_head VALUES (0, ?, ?)", (record.seq, record.hash))
        return True


def _head_of(con: Any) -> tuple[int, str]:
    row = con.execute("SELECT seq, hash FROM audit_head WHERE id = 0").fetchone()
    return (row["seq"], row["hash"]) if row else (0, GENESIS_HASH)


class DynamoAuditLog(AuditLog):
    """The log as DynamoDB items keyed by seq; item seq 0 is the head. Each append is one transaction:
    put the record if its seq is free and move the head if it has not moved, so racing writers retry."""

    TABLE_KEYS: ClassVar[dict[str, Any]] = {
        "KeySchema": [{"AttributeName": "seq", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "seq", "AttributeType": "N"}],
    }

    def __init__(self, table: str):
        self.table = table

    @cached_property
    def client(self) -> Any:
        return dynamodb_client()

    def records(self) -> list[AuditRecord]:
        pages = self.client.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        items = [i for page in pages for i in page["Items"] if i["seq"]["N"] != "0"]
        return sorted((_from_item(i) for i in items), key=lambda r: r.seq)

    def _head(self) -> tuple[int, str]:
        item = self.client.get_item(TableName=self.table, Key={"seq": {"N": "0"}}, ConsistentRead=True)
        head = item.get("Item")
        return (int(head["last_seq"]["N"]), head["last_hash"]["S"]) if head else (0, GENESIS_HASH)

    def _append(self, record: AuditRecord) -> bool:
        if record.seq == 1:
            moved: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(seq)"}
        else:
            moved = {
                "ConditionExpression": "last_seq = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(record.seq - 1)}},
            }
        head = {"seq": {"N": "0"}, "last_seq": {"N": str(record.seq)}, "last_hash": {"S": record.hash}}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _to_item(record),
                            "ConditionExpression": "attribute_not_exists(seq)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": head, **moved}},
                ]
            )
        except self.client.exceptions.TransactionCanceledException:
            return False
        return True


def _to_item(record: AuditRecord) -> dict[str, Any]:
    fields = {**asdict(record), "details": json.dumps(record.details, sort_keys=True)}
    return {k: {"N": str(v)} if k == "seq" else {"S": v} for k, v in fields.items()}


def _from_item(item: dict[str, Any]) -> AuditRecord:
    fields = {k: v.get("S", v.get("N")) for k, v in item.items()}
    return AuditRecord(**{**fields, "seq": int(fields["seq"]), "details": json.loads(fields["details"])})


def open_audit_log(url: str) -> AuditLog:
    """The audit log a `sqlite:///path` or `dynamodb://table` URL names."""
    scheme, location, _ = parse_url(url, TABLE_SCHEMES)
    return SqliteAuditLog(location) if scheme == "sqlite" else DynamoAuditLog(location)


@lru_cache(maxsize=1)
def get_audit_log() -> AuditLog:
    """The configured audit log, opened once per process."""
    return open_audit_log(get_settings().audit_url)


def verify_audit_log() -> tuple[bool, list[str]]:
    """Check the configured audit log (`woundcare audit verify`): (intact, problems found)."""
    problems = get_audit_log().verify()
    return not problems, problems


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
