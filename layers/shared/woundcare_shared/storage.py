"""Where woundcare keeps things: an object store (a directory or S3) and the connection helpers the
table services (registry, audit, runs) share for their SQLite and DynamoDB backends.

Object keys are '/'-separated relative paths; no segment may be empty or start with '.', so a key can
never leave the store (no '..', no absolute paths) and never clash with the store's temporary files.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from woundcare_shared.settings import STORE_SCHEMES, get_settings, parse_url


class InvalidKeyError(ValueError):
    """A key that is not a relative '/'-separated path inside the store."""


class ObjectNotFoundError(LookupError):
    """No object is stored under the key."""


def check_key(key: str, *, prefix: bool = False) -> str:
    """Return `key` if it is a valid object key (or, with prefix=True, a valid listing prefix)."""
    parts = key.split("/")
    if prefix and parts[-1] == "":
        parts = parts[:-1]
    if (key or not prefix) and any(not p or p.startswith(".") or "\\" in p for p in parts):
        raise InvalidKeyError(f"invalid object key {key!r}: use relative '/'-separated names, no '.', '..'")
    return key


class ObjectStore(ABC):
    """Bytes under keys; JSON and whole files on top. Writes of one key are atomic."""

    url: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store `data` only if `key` is free (immutable objects); False, writing nothing, if taken."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The bytes under `key`; ObjectNotFoundError if none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """All keys starting with `prefix` (a plain string prefix, as in S3), sorted."""

    @abstractmethod
    def put_file(self, key: str, path: str | Path) -> None:
        """Store the local file `path` under `key`, streaming (model binaries, extracts)."""

    @abstractmethod
    def get_file(self, key: str, path: str | Path) -> None:
        """Write the object under `key` to the local file `path`, creating its folder."""

    def put_json(self, key: str, value: Any) -> None:
        """Store `value` as indented, key-sorted JSON (stable bytes for the same value)."""
        self.put_bytes(key, json.dumps(value, indent=2, sort_keys=True).encode())

    def get_json(self, key: str) -> Any:
        """The JSON value under `key`."""
        return json.loads(self.get_bytes(key))

    def uri(self, key: str) -> str:
        """The full address of `key`, for lineage records and reports."""
        return f"{self.url.rstrip('/')}/{check_key(key)}"


class FileStore(ObjectStore):
    """Objects as files under a root directory; writes go to a temporary file, then rename or link."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.url = f"file://{self.root}"

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda tmp: tmp.write_bytes(data), os.replace)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            # link() fails if the target exists, atomically, and never exposes a half-written file.
            self._write(key, lambda tmp: tmp.write_bytes(data), os.link)
        except FileExistsError:
            return False
        return True

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r} in {self.url}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        start = self.root / check_key(prefix, prefix=True).rpartition("/")[0]
        keys = []
        for folder, dirs, files in os.walk(start):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            base = Path(folder).relative_to(self.root)
            keys += [(base / f).as_posix() for f in files if not f.startswith(".")]
        return sorted(k for k in keys if k.startswith(prefix))

    def put_file(self, key: str, path: str | Path) -> None:
        self._write(key, lambda tmp: shutil.copyfile(path, tmp), os.replace)

    def get_file(self, key: str, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(self._path(key), path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r} in {self.url}") from None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, fill: Callable[[Path], object], publish: Callable[[Path, Path], None]) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{os.urandom(16).hex()}.tmp"
        try:
            fill(tmp)
            publish(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


class S3Store(ObjectStore):
    """Objects in an S3 bucket under a key prefix; the client is created on first use."""

    def __init__(self, bucket: str, prefix: str = ""):
        self.bucket, self.prefix = bucket, prefix
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")

    @cached_property
    def client(self) -> Any:
        import boto3

        return boto3.client("s3")

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        # S3 conditional write (If-None-Match: *). A 409 ConditionalRequestConflict from a racing writer
        # propagates: the caller's retry then sees 412 and returns False.
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except self.client.exceptions.ClientError as error:
            if _error_code(error) == "PreconditionFailed":
                return False
            raise
        return True

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ObjectNotFoundError(f"no object {key!r} in {self.url}") from None

    def exists(self, key: str) -> bool:
        # A listing of the key itself, not a HEAD: S3 answers a HEAD of a missing key with 403 unless the caller
        # may list the whole bucket, while a listing needs s3:ListBucket only for the key's own prefix (IAM
        # s3:prefix). The key sorts before any longer key it prefixes, so one result settles it.
        full = self._key(key)
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=full, MaxKeys=1).get("Contents", [])
        return bool(found) and found[0]["Key"] == full

    def list(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + check_key(prefix, prefix=True)
        )
        return sorted(o["Key"][len(self.prefix) :] for page in pages for o in page.get("Contents", []))

    def put_file(self, key: str, path: str | Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def get_file(self, key: str, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
        except self.client.exceptions.ClientError as error:
            if _error_code(error) in ("404", "NoSuchKey"):
                raise ObjectNotFoundError(f"no object {key!r} in {self.url}") from None
            raise

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)


def open_store(url: str) -> ObjectStore:
    """The object store a `file://` or `s3://` URL names."""
    scheme, location, prefix = parse_url(url, STORE_SCHEMES)
    return FileStore(location) if scheme == "file" else S3Store(location, prefix)


@lru_cache(maxsize=1)
def get_store() -> ObjectStore:
    """The configured object store, created once per process."""
    return open_store(get_settings().store_url)


# --- shared by the table services -------------------------------------------------------------------------


def sqlite_prepare(path: str, schema: str) -> None:
    """Create the database file, its folder and `schema` if missing; switch the file to WAL journaling."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite_session(path) as con:
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(f"BEGIN IMMEDIATE; {schema}; COMMIT;")


@contextmanager
def sqlite_session(path: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection of its own; with write=True one transaction that takes the write lock at its start.

    BEGIN IMMEDIATE makes read-check-write sequences atomic across connections and processes:
    a second writer waits (up to the timeout) instead of acting on a stale read.
    """
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    con.row_factory = sqlite3.Row
    try:
        if write:
            con.execute("BEGIN IMMEDIATE")
        yield con
        if write:
            con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def dynamodb_client() -> Any:
    """A DynamoDB client from the ambient AWS configuration, created on demand, never at import."""
    import boto3

    return boto3.client("dynamodb")


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
