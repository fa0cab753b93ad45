"""Putting a model into production and taking it back: a named person's decision, recorded with its reason.

A shadow model is approved into production (the previous production model is archived in the same atomic
registry write); a rollback brings an archived model back. Each step writes the audit log (HIPAA audit controls).
"""

from __future__ import annotations

from woundcare_shared.audit import get_audit_log
from woundcare_shared.registry import ARCHIVED, PRODUCTION, SHADOW, ModelVersion, get_registry


def approve(version: str, actor: str, reason: str) -> ModelVersion:
    """Promote a shadow model to production on `actor`'s authority."""
    return _move(version, SHADOW, actor, reason, "model.approve")


def rollback(version: str, actor: str, reason: str) -> ModelVersion:
    """Bring an archived model back into production (the current one is archived)."""
    return _move(version, ARCHIVED, actor, reason, "model.rollback")


def _move(version: str, from_status: str, actor: str, reason: str, action: str) -> ModelVersion:
    if not actor.strip() or not reason.strip():
        raise ValueError("a promotion needs the name of the person deciding and a reason")
    previous = get_registry().current(PRODUCTION)
    record = get_registry().transition(version, from_status, PRODUCTION, actor, reason)
    replaced = None if previous is None or previous.version == version else previous.version
    get_audit_log().append(actor, action, version, reason, {"from_status": from_status, "replaced": replaced})
    return record
