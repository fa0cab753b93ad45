"""Audit log contract: both backends chain records, survive racing writers, and `verify` finds any
edit, deletion, reordering or forgery made directly in the backing store."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict

import pytest

from woundcare_shared.audit import GENESIS_HASH, AuditLog, AuditRecord, SqliteAuditLog, verify_audit_log


def fill(log: AuditLog, n: int = 3) -> list[AuditRecord]:
    return [
        log.append("dr.lead", "promote", f"mv-{i}", f"approved after review {i}", {"auc": [0.81, 0.82, 0.83, 0.84][i]})
        for i in range(n)
    ]


# --- tampering straight in the backing store, as someone with database access would --------------------


def edit(log: AuditLog, seq: int, **changes: str) -> None:
    if isinstance(log, SqliteAuditLog):
        with sqlite3.connect(log.path) as con:
            con.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
            assignments = ", ".join(f"{name} = ?" for name in changes)
            con.execute(f"UPDATE audit_log SET {assignments} WHERE seq = ?", (*changes.values(), seq))
    else:
        key = {"seq": {"N": str(seq)}}
        item = log.client.get_item(TableName=log.table, Key=key)["Item"]
        log.client.put_item(TableName=log.table, Item={**item, **{k: {"S": v} for k, v in changes.items()}})


def delete(log: AuditLog, seq: int) -> None:
    if isinstance(log, SqliteAuditLog):
        with sqlite3.connect(log.path) as con:
            con.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
            con.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    else:
        log.client.delete_item(TableName=log.table, Key={"seq": {"N": str(seq)}})


def stored_fields(record: AuditRecord) -> dict[str, str]:
    """A record's fields as the backends store them (all text), seq left out."""
    fields = {**asdict(record), "details": json.dumps(record.details, sort_keys=True)}
    return {k: v for k, v in fields.items() if k != "seq"}


def url_of(log: AuditLog) -> str:
    return f"sqlite://{log.path}" if isinstance(log, SqliteAuditLog) else f"dynamodb://{log.table}"


# --- the contract ---------------------------------------------------------------------------------------


def test_appended_records_chain_from_genesis_and_verify_clean(audit_log):
    # Given three appended records
    written = fill(audit_log)
    # Then they read back in order, numbered from 1, each carrying its predecessor's hash
    records = audit_log.records()
    assert records == written
    assert [r.seq for r in records] == [1, 2, 3]
    assert [r.prev_hash for r in records] == [GENESIS_HASH, records[0].hash, records[1].hash]
    assert all(r.hash == r.content_hash() for r in records)
    assert records[1].details == {"auc": 0.82}
    # And the log verifies clean
    assert audit_log.verify() == []


def test_empty_log_verifies_clean(audit_log):
    assert audit_log.records() == []
    assert audit_log.verify() == []


def test_racing_writers_each_get_their_own_seq_and_the_chain_holds(audit_log, race):
    # Given six writers appending at the same moment
    outcomes = race(*[lambda i=i: audit_log.append(f"stage-{i}", "register", "mv-1", "retrain") for i in range(6)])
    # Then every append succeeded with a distinct seq, and the chain is intact
    assert sorted(o.seq for o in outcomes) == [1, 2, 3, 4, 5, 6]
    assert {r.actor for r in audit_log.records()} == {f"stage-{i}" for i in range(6)}
    assert audit_log.verify() == []


def test_append_requires_who_what_and_why(audit_log):
    with pytest.raises(ValueError, match="actor, an action and a reason"):
        audit_log.append("dr.lead", "promote", "mv-1", "")
    assert audit_log.records() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "someone.else"),
        ("action", "reject"),
        ("subject", "mv-9"),
        ("reason", "no review"),
        ("ts", "2020-01-01T00:00:00.000000+00:00"),
        ("details", '{"auc": 0.99}'),
    ],
)
def test_editing_any_field_of_a_record_is_detected(audit_log, field, value):
    # Given an intact log
    fill(audit_log)
    # When one field of the middle record is changed in the backing store
    edit(audit_log, 2, **{field: value})
    # Then verify names that record as altered
    assert audit_log.verify() == ["record 2 was altered: its content does not match its hash"]


def test_an_edit_with_a_recomputed_hash_breaks_the_chain(audit_log):
    # Given an intact log, and a forger who edits record 2 and recomputes its hash
    records = fill(audit_log)
    forged = AuditRecord(**{**asdict(records[1]), "reason": "no review", "hash": ""})
    edit(audit_log, 2, reason="no review", hash=forged.content_hash())
    # Then record 3 no longer chains to it
    assert audit_log.verify() == ["record 3 does not chain to record 2"]


def test_a_forged_last_record_no_longer_matches_the_head(audit_log):
    records = fill(audit_log)
    forged = AuditRecord(**{**asdict(records[2]), "actor": "intruder", "hash": ""})
    edit(audit_log, 3, actor="intruder", hash=forged.content_hash())
    assert audit_log.verify() == ["record 3 does not match the hash held by the head"]


@pytest.mark.parametrize(
    ("deleted", "problem"),
    [
        ([1], "record 1 missing"),
        ([2], "record 2 missing"),
        ([2, 3], "records 2 to 3 missing"),
        ([4], "the log ends at record 3 but its head says 4"),
    ],
)
def test_deleting_any_record_is_detected(audit_log, deleted, problem):
    # Given an intact log of four records
    fill(audit_log, 4)
    # When records are deleted from the backing store (the last one included)
    for seq in deleted:
        delete(audit_log, seq)
    # Then verify reports the hole
    assert problem in audit_log.verify()


def test_swapping_two_records_is_detected(audit_log):
    # Given an intact log, When records 2 and 3 exchange places in the store
    records = fill(audit_log)
    edit(audit_log, 2, **stored_fields(records[2]))
    edit(audit_log, 3, **stored_fields(records[1]))
    # Then both are reported as altered
    problems = audit_log.verify()
    assert "record 2 was altered: its content does not match its hash" in problems
    assert "record 3 was altered: its content does not match its hash" in problems


def test_problems_name_records_by_seq_and_never_quote_their_content(audit_log):
    audit_log.append("dr.lead", "promote", "mv-1", "reviewed wound w-PSEUDO-42")
    edit(audit_log, 1, reason="reviewed wound w-PSEUDO-43")
    problems = audit_log.verify()
    assert problems and not any("PSEUDO" in p or "dr.lead" in p for p in problems)


def test_verify_audit_log_checks_the_configured_log(audit_log, configure):
    # Given the configuration points at an intact log
    fill(audit_log)
    configure(audit_url=url_of(audit_log))
    assert verify_audit_log() == (True, [])
    # When a record is deleted, Then the CLI check fails and says why
    delete(audit_log, 2)
    assert verify_audit_log() == (False, ["record 2 missing"])


def test_sqlite_refuses_to_update_or_delete_records(tmp_path):
    # Given a local audit log, When someone edits it through SQL, Then the database refuses
    log = SqliteAuditLog(str(tmp_path / "woundcare.db"))
    fill(log, 1)
    with sqlite3.connect(log.path) as con:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("UPDATE audit_log SET reason = 'x' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("DELETE FROM audit_log WHERE seq = 1")
    assert log.verify() == []
