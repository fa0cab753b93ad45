"""A clinical lead approves a shadow model and can roll back; each decision names who and why in the audit log."""

from __future__ import annotations

from woundcare_shared.audit import get_audit_log
from woundcare_shared.cli import main
from woundcare_shared.registry import ARCHIVED, PRODUCTION, SHADOW, get_registry


def _register(run_id: str) -> str:
    record = get_registry().register(
        run_id=run_id, created_by="training-pipeline", dataset_version="ds-1", code_version="0.1.0",
        parameters={}, metrics={}, artifacts={}, status=SHADOW,
    )  # fmt: skip
    return record.version


def test_approve_then_rollback_moves_production_and_audits_each_decision(tmp_path, configure, capsys):
    configure(HOME=str(tmp_path))
    first, second = _register("run-1"), _register("run-2")
    # Given the first model approved, when the second is approved, the first is archived
    assert main(["registry", "approve", first, "--by", "dr.lead", "--reason", "shadow evidence reviewed"]) == 0
    assert main(["registry", "approve", second, "--by", "dr.lead", "--reason", "better calibration"]) == 0
    assert get_registry().current(PRODUCTION).version == second
    assert get_registry().get(first).status == ARCHIVED
    # When rolled back, the first is in production again
    assert main(["registry", "rollback", first, "--by", "dr.lead", "--reason", "complaints from clinic B"]) == 0
    assert get_registry().current(PRODUCTION).version == first
    # Then the audit log tells who did what and why, and its chain is intact
    decisions = [(r.action, r.subject, r.actor, r.reason) for r in get_audit_log().records()]
    assert decisions == [
        ("model.approve", first, "dr.lead", "shadow evidence reviewed"),
        ("model.approve", second, "dr.lead", "better calibration"),
        ("model.rollback", first, "dr.lead", "complaints from clinic B"),
    ]
    assert get_audit_log().verify() == []
    assert "is now in production" in capsys.readouterr().out


def test_a_decision_without_a_reason_or_on_the_wrong_status_is_refused(tmp_path, configure, capsys):
    configure(HOME=str(tmp_path))
    version = _register("run-1")
    assert main(["registry", "approve", version, "--by", "dr.lead", "--reason", " "]) == 2
    assert main(["registry", "rollback", version, "--by", "dr.lead", "--reason", "try"]) == 2  # not archived
    assert get_registry().get(version).status == SHADOW
    assert get_audit_log().records() == []
    assert capsys.readouterr().err.count("error:") == 2
