"""Object store contract: the directory and S3 (moto) adapters behave the same."""

from __future__ import annotations

import pytest

from woundcare_shared.storage import (
    FileStore,
    InvalidKeyError,
    ObjectNotFoundError,
    S3Store,
    get_store,
    open_store,
)


def test_bytes_round_trip_and_a_second_put_replaces_them(store):
    # Given an object written under a nested key
    store.put_bytes("models/mv-1/model.so", b"\x7fELF first")
    assert store.get_bytes("models/mv-1/model.so") == b"\x7fELF first"
    # When the key is written again, Then readers see the new bytes
    store.put_bytes("models/mv-1/model.so", b"second")
    assert store.get_bytes("models/mv-1/model.so") == b"second"


def test_missing_objects_are_reported_as_not_found(store, tmp_path):
    assert not store.exists("reports/none.json")
    store.put_bytes("reports/none.json.bak", b"x")  # a longer key it prefixes is another object
    assert not store.exists("reports/none.json") and store.exists("reports/none.json.bak")
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("reports/none.json")
    with pytest.raises(ObjectNotFoundError):
        store.get_file("reports/none.json", tmp_path / "none.json")


def test_put_if_absent_writes_once_and_never_overwrites(store):
    # Given an immutable dataset version written once
    assert store.put_if_absent("datasets/ds-1/manifest.json", b"original") is True
    # When a retried snapshot writes the same key with other bytes
    assert store.put_if_absent("datasets/ds-1/manifest.json", b"other") is False
    # Then the first bytes stay
    assert store.get_bytes("datasets/ds-1/manifest.json") == b"original"


def test_json_round_trips_nested_values_exactly(store):
    value = {"metrics": {"c_index": 0.7312345678901234, "n": 120}, "features": ["area_cm2", "age_years"]}
    store.put_json("reports/run-1/metrics.json", value)
    assert store.get_json("reports/run-1/metrics.json") == value


def test_list_returns_sorted_keys_under_a_string_prefix(store):
    # Given objects under several prefixes
    for key in ["landing/b.csv", "landing/a.csv", "landing-old/x.csv", "models/mv-1/model.so", "landing/sub/c.csv"]:
        store.put_bytes(key, b"x")
    # Then a listing returns the keys starting with the prefix, in order, as relative keys
    assert store.list("landing/") == ["landing/a.csv", "landing/b.csv", "landing/sub/c.csv"]
    assert store.list("landing") == ["landing-old/x.csv", "landing/a.csv", "landing/b.csv", "landing/sub/c.csv"]
    assert store.list("models/mv-1/mod") == ["models/mv-1/model.so"]
    assert store.list("nothing/") == []
    assert len(store.list()) == 5


def test_files_round_trip_and_the_destination_folder_is_created(store, tmp_path):
    # Given a local file uploaded to the store
    source = tmp_path / "model.so"
    source.write_bytes(bytes(range(256)) * 1000)
    store.put_file("models/mv-1/model.so", source)
    # When it is downloaded into a folder that does not exist yet
    target = tmp_path / "cache" / "mv-1" / "model.so"
    store.get_file("models/mv-1/model.so", target)
    # Then the bytes are identical
    assert target.read_bytes() == source.read_bytes()
    assert store.exists("models/mv-1/model.so")


@pytest.mark.parametrize("key", ["", "../secrets", "/etc/passwd", "a/../b", "a//b", "a/./b", ".hidden", "a\\b"])
def test_keys_that_could_escape_the_store_are_rejected(store, key):
    with pytest.raises(InvalidKeyError):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        store.get_bytes(key)
    assert store.list() == []


def test_listing_prefix_that_could_escape_is_rejected(store):
    with pytest.raises(InvalidKeyError):
        store.list("../")


def test_uri_gives_the_full_address_of_a_key(store):
    assert store.uri("models/mv-1/model.so") == f"{store.url}/models/mv-1/model.so"
    assert store.uri("a").startswith(("file:///", "s3://woundcare-test/env/dev/"))


def test_s3_objects_live_under_the_configured_prefix(aws):
    # Given a store under a bucket prefix
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="woundcare-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    client.put_object(Bucket="woundcare-test", Key="elsewhere/a.csv", Body=b"x")
    store = open_store("s3://woundcare-test/env/dev")
    # When it writes a key, Then the object sits under the prefix and other prefixes stay invisible
    store.put_bytes("landing/a.csv", b"y")
    assert client.get_object(Bucket="woundcare-test", Key="env/dev/landing/a.csv")["Body"].read() == b"y"
    assert store.list() == ["landing/a.csv"]


def test_racing_put_if_absent_in_a_directory_has_one_winner(tmp_path, race):
    store = FileStore(tmp_path / "store")
    outcomes = race(*[lambda i=i: store.put_if_absent("datasets/ds-1/data.parquet", b"%d" % i) for i in range(4)])
    assert sorted(outcomes) == [False, False, False, True]
    assert store.get_bytes("datasets/ds-1/data.parquet") == b"%d" % outcomes.index(True)
    assert store.list() == ["datasets/ds-1/data.parquet"]


def test_directory_store_leaves_no_temporary_files(tmp_path):
    store = FileStore(tmp_path / "store")
    store.put_bytes("a/b.bin", b"1")
    store.put_if_absent("a/b.bin", b"2")
    store.put_file("a/c.bin", tmp_path / "store" / "a" / "b.bin")
    assert sorted(p.name for p in (tmp_path / "store" / "a").iterdir()) == ["b.bin", "c.bin"]


def test_store_is_chosen_by_url_and_cached_from_settings(tmp_path, configure):
    assert isinstance(open_store("s3://bucket-name/prefix"), S3Store)
    configure(store_url=f"file://{tmp_path / 'objects'}")
    store = get_store()
    assert isinstance(store, FileStore) and store.root == tmp_path / "objects"
    assert get_store() is store
