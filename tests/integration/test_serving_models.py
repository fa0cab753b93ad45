"""Serving loads its models from either runtime's services (files and SQLite, S3 and DynamoDB under moto): each
bundle fetched from the object store into an empty cache directory and checksum-verified, the production and shadow
versions read from the registry in one read.
"""

from __future__ import annotations

from woundcare_scoring.healing import CompiledHealingModel
from woundcare_shared.registry import PRODUCTION, SHADOW, version_id
from woundcare_shared.serving import load_models


def _upload_and_register(store, registry, bundle, run_id: str, status: str) -> str:
    version = version_id(run_id)
    for path in sorted(bundle.iterdir()):
        store.put_file(f"models/{version}/native/{path.name}", path)
    artifacts = {"native_bundle": f"models/{version}/native/bundle.json"}
    registry.register(run_id=run_id, created_by="test", dataset_version="ds-1", code_version="test", parameters={},
                      metrics={}, artifacts=artifacts, status=SHADOW, reason="passed the quality gates")  # fmt: skip
    if status == PRODUCTION:
        registry.transition(version, SHADOW, PRODUCTION, "clinical-lead", "live evidence reviewed")
    return version


def test_production_and_shadow_models_load_from_the_store_and_the_registry(store, registry, small_bundle, tmp_path):
    # Given one bundle uploaded as two versions, one in production and one in shadow
    production = _upload_and_register(store, registry, small_bundle, "run-prod", PRODUCTION)
    shadow = _upload_and_register(store, registry, small_bundle, "run-challenger", SHADOW)
    # When a fresh process loads its models into an empty cache directory
    models = load_models(registry, store, tmp_path / "cache")
    # Then both versions are served, each from its own copy, scoring as the bundle itself does
    assert models.versions() == {PRODUCTION: production, SHADOW: shadow}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([production, shadow])
    expected = CompiledHealingModel.load(small_bundle).margins([{}])
    assert models.production.scorer.margins([{}]) == models.shadow.scorer.margins([{}]) == expected
