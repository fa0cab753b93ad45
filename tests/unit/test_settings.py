"""Settings: defaults under WOUNDCARE_HOME, URLs from the environment, clear failures for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from woundcare_shared.settings import ConfigurationError, get_settings, parse_url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No WOUNDCARE_* variable leaks in from the shell, and the cached settings are re-read per test."""
    for name in ("HOME", "STORE_URL", "REGISTRY_URL", "AUDIT_URL", "RUNS_URL"):
        monkeypatch.delenv(f"WOUNDCARE_{name}", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_unset_locations_default_to_files_under_the_home_folder(monkeypatch, tmp_path):
    # Given only WOUNDCARE_HOME, given relative to the working directory
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WOUNDCARE_HOME", "state")
    # When the settings are read
    settings = get_settings()
    # Then every service lives under the absolute home folder, the table services in one SQLite file
    assert settings.home == tmp_path / "state"
    assert settings.store_url == f"file://{tmp_path}/state/store"
    database = f"sqlite://{tmp_path}/state/woundcare.db"
    assert (settings.registry_url, settings.audit_url, settings.runs_url) == (database, database, database)


def test_default_home_is_dot_woundcare_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert get_settings().home == tmp_path / ".woundcare"


def test_aws_locations_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("WOUNDCARE_STORE_URL", "s3://woundcare-prod-data/v1")
    monkeypatch.setenv("WOUNDCARE_REGISTRY_URL", "dynamodb://woundcare-prod-registry")
    monkeypatch.setenv("WOUNDCARE_AUDIT_URL", "dynamodb://woundcare-prod-audit")
    monkeypatch.setenv("WOUNDCARE_RUNS_URL", "dynamodb://woundcare-prod-runs")
    settings = get_settings()
    assert settings.store_url == "s3://woundcare-prod-data/v1"
    assert (settings.registry_url, settings.audit_url, settings.runs_url) == (
        "dynamodb://woundcare-prod-registry",
        "dynamodb://woundcare-prod-audit",
        "dynamodb://woundcare-prod-runs",
    )


def test_settings_are_parsed_once_and_reused(monkeypatch):
    first = get_settings()
    monkeypatch.setenv("WOUNDCARE_STORE_URL", "s3://another-bucket")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().store_url == "s3://another-bucket"


def test_bad_locations_fail_at_start_naming_each_variable(monkeypatch):
    # Given a store URL with an unknown scheme and a relative SQLite path
    monkeypatch.setenv("WOUNDCARE_STORE_URL", "http://example.org/store")
    monkeypatch.setenv("WOUNDCARE_REGISTRY_URL", "sqlite://relative.db")
    # When the settings are read, Then one error names both variables and what they accept
    with pytest.raises(ConfigurationError) as caught:
        get_settings()
    message = str(caught.value)
    assert "WOUNDCARE_STORE_URL: scheme must be one of file, s3" in message
    assert "WOUNDCARE_REGISTRY_URL: must name an absolute path" in message


@pytest.mark.parametrize(
    ("url", "schemes", "parsed"),
    [
        ("file:///var/woundcare/store", ("file", "s3"), ("file", "/var/woundcare/store", "")),
        ("s3://bucket-1/env/dev/", ("file", "s3"), ("s3", "bucket-1", "env/dev/")),
        ("s3://bucket-1", ("file", "s3"), ("s3", "bucket-1", "")),
        ("sqlite:///tmp/woundcare.db", ("sqlite", "dynamodb"), ("sqlite", "/tmp/woundcare.db", "")),
        ("dynamodb://woundcare-Registry_1", ("sqlite", "dynamodb"), ("dynamodb", "woundcare-Registry_1", "")),
    ],
)
def test_service_urls_split_into_scheme_location_and_prefix(url, schemes, parsed):
    assert parse_url(url, schemes) == parsed


@pytest.mark.parametrize(
    ("url", "schemes", "complaint"),
    [
        ("dynamodb://registry", ("file", "s3"), "scheme must be one of file, s3"),
        ("file://relative/dir", ("file", "s3"), "absolute path"),
        ("s3://Not_A_Bucket/x", ("file", "s3"), "valid bucket"),
        ("dynamodb://ab", ("sqlite", "dynamodb"), "valid table"),
        ("dynamodb://table/extra", ("sqlite", "dynamodb"), "valid table"),
        ("sqlite:///tmp/x.db?mode=ro", ("sqlite", "dynamodb"), "query or fragment"),
    ],
)
def test_malformed_service_urls_are_refused_with_the_rule_they_break(url, schemes, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_url(url, schemes)


SERVING = ("CAPTURE_URL", "MAX_BODY_BYTES", "MODEL_REFRESH_SECONDS", "MODEL_CACHE_DIR")


def test_serving_settings_read_typed_values_with_names_in_any_case(monkeypatch, tmp_path):
    from woundcare_shared.serving import load_serving_settings

    # Given the serving variables, one in lower case, numbers as the environment spells them
    monkeypatch.setenv("WOUNDCARE_HOME", str(tmp_path))
    monkeypatch.setenv("WOUNDCARE_MAX_BODY_BYTES", "2_048")
    monkeypatch.setenv("woundcare_model_refresh_seconds", "0")
    monkeypatch.setenv("WOUNDCARE_MODEL_CACHE_DIR", "/tmp/models")
    monkeypatch.setenv("WOUNDCARE_CAPTURE_URL", "log://")
    # When they are read, Then each has its type and the locations their defaults under home
    settings = load_serving_settings()
    assert (settings.max_body_bytes, settings.model_refresh_seconds) == (2048, 0.0)
    assert (settings.cache_dir(), settings.capture_target()) == (Path("/tmp/models"), "log://")
    assert settings.store_url == f"file://{tmp_path}/store"


def test_serving_settings_default_and_fail_naming_every_bad_variable(monkeypatch, tmp_path):
    from woundcare_shared.serving import load_serving_settings

    for name in SERVING:
        monkeypatch.delenv(f"WOUNDCARE_{name}", raising=False)
    monkeypatch.setenv("WOUNDCARE_HOME", str(tmp_path))
    defaults = load_serving_settings()
    assert (defaults.max_body_bytes, defaults.model_refresh_seconds) == (1_048_576, 300.0)
    assert defaults.capture_target() == f"file://{tmp_path}/captures/predictions.jsonl"
    # Given a body limit below its floor, a refresh period that is no number, a capture URL of another kind
    monkeypatch.setenv("WOUNDCARE_MAX_BODY_BYTES", "512")
    monkeypatch.setenv("WOUNDCARE_MODEL_REFRESH_SECONDS", "soon")
    monkeypatch.setenv("WOUNDCARE_CAPTURE_URL", "http://example.org/captures")
    # When they are read, Then one error names the three variables and what each accepts
    with pytest.raises(ConfigurationError) as caught:
        load_serving_settings()
    assert str(caught.value) == (
        "invalid woundcare serving configuration: "
        "WOUNDCARE_CAPTURE_URL: must be log:// or file:///absolute/path.jsonl; "
        "WOUNDCARE_MAX_BODY_BYTES: must be an integer >= 1024; "
        "WOUNDCARE_MODEL_REFRESH_SECONDS: must be a number"
    )
