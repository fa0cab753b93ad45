"""Registry contract: SQLite and DynamoDB (moto) adapters behave the same, races included."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from woundcare_shared.registry import (
    ARCHIVED,
    CANDIDATE,
    PRODUCTION,
    REJECTED,
    SHADOW,
    InvalidTransitionError,
    Registry,
    RegistryError,
    SqliteRegistry,
    StatusConflictError,
    VersionNotFoundError,
)


def register(registry: Registry, run_id: str, status: str = SHADOW, **overrides: Any):
    lineage = {
        "created_by": "pipeline",
        "dataset_version": "ds-" + run_id,
        "code_version": "git-abc123",
        "parameters": {"max_depth": 6, "learning_rate": 0.1},
        "metrics": {"c_index": 0.7312345678901234, "subgroups": {"dfu": 0.71}},
        "artifacts": {"model": f"s3://bucket/models/{run_id}/model.so"},
    }
    return registry.register(run_id=run_id, status=status, **{**lineage, **overrides})


def promote(registry: Registry, version: str, actor: str = "dr.lead") -> Any:
    return registry.transition(version, SHADOW, PRODUCTION, actor, "live evidence reviewed")


def test_registered_version_keeps_its_full_lineage_exactly(registry):
    # Given an empty registry
    # When a run registers its model
    created = register(registry, "run-1", status=CANDIDATE, reason="trained on weekly extract")
    # Then reading it back gives every lineage field, nested floats included, unchanged
    stored = registry.get(created.version)
    assert stored == created
    assert stored.status == CANDIDATE
    assert stored.metrics["c_index"] == 0.7312345678901234
    assert stored.artifacts == {"model": "s3://bucket/models/run-1/model.so"}
    assert (stored.run_id, stored.dataset_version, stored.created_by) == ("run-1", "ds-run-1", "pipeline")


def test_registering_the_same_run_again_returns_the_first_record(registry):
    # Given a run that registered its model
    first = register(registry, "run-1")
    # When a retried stage registers the same run with different numbers
    again = register(registry, "run-1", metrics={"c_index": 0.5}, created_by="retry")
    # Then there is still one version, and it is the first one
    assert again == first
    assert [v.version for v in registry.list()] == [first.version]


def test_racing_registrations_of_one_run_leave_one_version_both_callers_agree_on(registry, race):
    # Given two workers registering the same run at the same moment, with different authors
    outcomes = race(
        lambda: register(registry, "run-1", created_by="worker-a"),
        lambda: register(registry, "run-1", created_by="worker-b"),
    )
    # Then exactly one registration won: one stored version, returned to both callers
    assert outcomes[0] == outcomes[1]
    assert [v.created_by for v in registry.list()] == [outcomes[0].created_by]


def test_transition_changes_status_and_records_who_and_why(registry):
    # Given a candidate version
    version = register(registry, "run-1", status=CANDIDATE).version
    # When a reviewer moves it to shadow
    moved = registry.transition(version, CANDIDATE, SHADOW, "ml.engineer", "offline gates passed")
    # Then the stored record shows the new status, actor and reason
    assert registry.get(version) == moved
    assert (moved.status, moved.updated_by, moved.reason) == (SHADOW, "ml.engineer", "offline gates passed")
    assert moved.updated_at >= moved.created_at


def test_transition_from_a_status_the_version_is_not_in_fails_and_changes_nothing(registry):
    # Given a version in shadow
    version = register(registry, "run-1", status=SHADOW).version
    # When someone acts on the stale belief that it is still a candidate
    with pytest.raises(StatusConflictError, match="'shadow', not 'candidate'"):
        registry.transition(version, CANDIDATE, REJECTED, "reviewer", "stale view")
    # Then it is still in shadow
    assert registry.get(version).status == SHADOW


@pytest.mark.parametrize(("from_status", "to_status"), [(CANDIDATE, PRODUCTION), (REJECTED, SHADOW)])
def test_lifecycle_refuses_a_transition_it_does_not_allow(registry, from_status, to_status):
    # Given a version in `from_status`
    version = register(registry, "run-1", status=CANDIDATE).version
    if from_status == REJECTED:
        registry.transition(version, CANDIDATE, REJECTED, "reviewer", "worse than champion")
    # When asked to skip the lifecycle, Then it refuses and the status is unchanged
    with pytest.raises(InvalidTransitionError):
        registry.transition(version, from_status, to_status, "reviewer", "shortcut")
    assert registry.get(version).status == from_status


def test_transition_without_a_reason_is_refused(registry):
    version = register(registry, "run-1").version
    with pytest.raises(RegistryError, match="actor and the reason"):
        registry.transition(version, SHADOW, PRODUCTION, "dr.lead", "  ")
    assert registry.get(version).status == SHADOW


def test_new_versions_cannot_start_in_production(registry):
    with pytest.raises(InvalidTransitionError):
        register(registry, "run-1", status=PRODUCTION)
    assert registry.list() == []


def test_unknown_version_is_reported_as_not_found(registry):
    with pytest.raises(VersionNotFoundError):
        registry.get("mv-000000000000")
    with pytest.raises(VersionNotFoundError):
        registry.transition("mv-000000000000", SHADOW, PRODUCTION, "dr.lead", "approve")


def test_promotion_archives_the_previous_production_version(registry):
    # Given version A in production and version B in shadow
    a = register(registry, "run-a").version
    promote(registry, a)
    b = register(registry, "run-b").version
    # When B is promoted
    promote(registry, b, actor="dr.other")
    # Then B is the one production version and A is archived, replaced by B, by the same actor
    assert registry.current(PRODUCTION).version == b
    archived = registry.get(a)
    assert (archived.status, archived.updated_by, archived.reason) == (ARCHIVED, "dr.other", f"replaced by {b}")
    assert [v.version for v in registry.list(PRODUCTION)] == [b]


def test_rollback_restores_an_archived_version_to_production(registry):
    # Given A archived by the promotion of B
    a, b = register(registry, "run-a").version, register(registry, "run-b").version
    promote(registry, a)
    promote(registry, b)
    # When A is rolled back into production
    registry.transition(a, ARCHIVED, PRODUCTION, "dr.lead", "B underperforms in live data")
    # Then A is production again and B is archived
    assert registry.current(PRODUCTION).version == a
    assert registry.get(b).status == ARCHIVED


def test_withdrawing_production_leaves_none_and_allows_a_new_promotion(registry):
    # Given A in production, withdrawn
    a, b = register(registry, "run-a").version, register(registry, "run-b").version
    promote(registry, a)
    registry.transition(a, PRODUCTION, ARCHIVED, "dr.lead", "safety signal")
    assert registry.current(PRODUCTION) is None
    # When B is promoted, Then it becomes production and A stays archived
    promote(registry, b)
    assert [v.version for v in registry.list(PRODUCTION)] == [b]
    assert registry.get(a).status == ARCHIVED


def test_list_filters_by_status_and_current_is_the_latest_to_enter_it(registry):
    a, b = register(registry, "run-a").version, register(registry, "run-b").version
    c = register(registry, "run-c", status=CANDIDATE).version
    assert [v.version for v in registry.list()] == [a, b, c]
    assert [v.version for v in registry.list(SHADOW)] == [a, b]
    registry.transition(c, CANDIDATE, SHADOW, "ml.engineer", "gates passed")
    assert registry.current(SHADOW).version == c
    assert registry.current(PRODUCTION) is None


def test_current_by_status_answers_as_current_does_for_each_status(registry):
    # Given A in production, B then C entering shadow, D a candidate
    a = register(registry, "run-a").version
    register(registry, "run-b")
    promote(registry, a)
    c = register(registry, "run-c", status=CANDIDATE).version
    registry.transition(c, CANDIDATE, SHADOW, "ml.engineer", "gates passed")
    register(registry, "run-d", status=CANDIDATE)
    # When the current versions of several statuses are read at once
    current = registry.current_by_status(PRODUCTION, SHADOW, ARCHIVED)
    # Then each is what `current` gives for that status, from one read
    assert {status: v and v.version for status, v in current.items()} == {PRODUCTION: a, SHADOW: c, ARCHIVED: None}


def test_racing_transitions_of_one_version_cannot_both_win(registry, race):
    # Given a version in shadow, approved and rejected by two people at the same moment
    version = register(registry, "run-1").version
    outcomes = race(
        lambda: registry.transition(version, SHADOW, PRODUCTION, "dr.a", "approve"),
        lambda: registry.transition(version, SHADOW, REJECTED, "dr.b", "reject"),
    )
    # Then exactly one succeeded, the other got a status conflict, and the stored status is the winner's
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1
    assert len(losers) == 1 and isinstance(losers[0], StatusConflictError)
    assert registry.get(version).status == winners[0].status


@pytest.mark.parametrize("with_previous_production", [False, True])
def test_racing_promotions_of_two_versions_leave_exactly_one_in_production(registry, race, with_previous_production):
    # Given two shadow versions (and perhaps an older production version)
    if with_previous_production:
        promote(registry, register(registry, "run-old").version)
    a, b = register(registry, "run-a").version, register(registry, "run-b").version
    # When both are promoted at the same moment
    outcomes = race(lambda: promote(registry, a, "dr.a"), lambda: promote(registry, b, "dr.b"))
    # Then one version is in production; the other either lost the race with a status conflict and
    # is still in shadow, or was promoted first and then archived as replaced by the winner
    in_production = registry.list(PRODUCTION)
    assert len(in_production) == 1
    winner = in_production[0].version
    loser, loser_outcome = (b, outcomes[1]) if winner == a else (a, outcomes[0])
    if isinstance(loser_outcome, Exception):
        assert isinstance(loser_outcome, StatusConflictError)
        assert registry.get(loser).status == SHADOW
    else:
        assert (registry.get(loser).status, registry.get(loser).reason) == (ARCHIVED, f"replaced by {winner}")


def test_sqlite_itself_refuses_a_second_production_version(tmp_path):
    # Given a local registry with one production version
    registry = SqliteRegistry(str(tmp_path / "woundcare.db"))
    promote(registry, register(registry, "run-a").version)
    other = register(registry, "run-b").version
    # When a writer bypasses the code and sets a second one directly, Then the database refuses
    with sqlite3.connect(registry.path) as con, pytest.raises(sqlite3.IntegrityError):
        con.execute("UPDATE model_versions SET status = 'production' WHERE version = ?", (other,))
