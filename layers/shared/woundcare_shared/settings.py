"""Every WOUNDCARE_* environment variable in one typed model, parsed once; bad values fail at start.

Service locations are URLs, so the same code runs on AWS and on a laptop:
objects `file:///abs/dir` or `s3://bucket/prefix`; registry, audit and runs `sqlite:///abs/file.db`
or `dynamodb://table`. Unset locations default to files under WOUNDCARE_HOME (`./.woundcare`).
Add new settings as fields here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "WOUNDCARE_"
STORE_SCHEMES = ("file", "s3")
TABLE_SCHEMES = ("sqlite", "dynamodb")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_EXAMPLES = {
    "file": "file:///var/woundcare/store",
    "s3": "s3://my-bucket/woundcare",
    "sqlite": "sqlite:///var/woundcare/woundcare.db",
    "dynamodb": "dynamodb://woundcare-registry",
}


class ConfigurationError(RuntimeError):
    """The environment does not describe a usable configuration; the message names each bad variable."""


def parse_url(url: str, schemes: tuple[str, ...]) -> tuple[str, str, str]:
    """Split a service URL into (scheme, location, prefix), or raise ValueError saying what is accepted.

    location is an absolute path (file, sqlite), a bucket (s3) or a table name (dynamodb);
    prefix is the key prefix inside an S3 bucket and empty otherwise.
    """
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"scheme must be one of {', '.join(schemes)}, e.g. {_EXAMPLES[schemes[0]]}")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    if parts.scheme in ("file", "sqlite"):
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError(f"must name an absolute path, e.g. {_EXAMPLES[parts.scheme]}")
        return parts.scheme, parts.path, ""
    if parts.scheme == "s3":
        if not _BUCKET_NAME.fullmatch(parts.netloc):
            raise ValueError(f"must name a valid bucket, e.g. {_EXAMPLES['s3']}")
        prefix = parts.path.strip("/")
        return "s3", parts.netloc, f"{prefix}/" if prefix else ""
    if not _TABLE_NAME.fullmatch(parts.netloc) or parts.path not in ("", "/"):
        raise ValueError(f"must name a valid table, e.g. {_EXAMPLES['dynamodb']}")
    return "dynamodb", parts.netloc, ""


class Settings(BaseSettings):
    """The platform's configuration; read it through `get_settings()`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Path(".woundcare")
    store_url: str = ""
    registry_url: str = ""
    audit_url: str = ""
    runs_url: str = ""

    @field_validator("store_url", "registry_url", "audit_url", "runs_url")
    @classmethod
    def _check_url(cls, url: str, info: ValidationInfo) -> str:
        if url:
            parse_url(url, STORE_SCHEMES if info.field_name == "store_url" else TABLE_SCHEMES)
        return url

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        database = f"sqlite://{self.home / 'woundcare.db'}"
        self.store_url = self.store_url or f"file://{self.home / 'store'}"
        self.registry_url = self.registry_url or database
        self.audit_url = self.audit_url or database
        self.runs_url = self.runs_url or database
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment, parsed on first use; raises ConfigurationError if invalid."""
    try:
        return Settings()
    except ValidationError as error:
        problems = [f"{_env_name(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors()]
        raise ConfigurationError("invalid woundcare configuration: " + "; ".join(problems)) from None


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "_".join(str(part) for part in loc).upper()
