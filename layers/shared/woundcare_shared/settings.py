"""Every WOUNDCARE_* environment variable, parsed once; bad values fail at start with every bad variable named.

Service locations are URLs, so the same code runs on AWS and on a laptop:
objects `file:///abs/dir` or `s3://bucket/prefix`; registry, audit and runs `sqlite:///abs/file.db`
or `dynamodb://table`. Unset locations default to files under WOUNDCARE_HOME (`./.woundcare`).

Two readers share these rules: `EnvReader`, light (stdlib only), for the services and the inference function,
whose cold start cannot afford pydantic's imports (~150 ms); and `Settings`, the pydantic-settings model the
pipeline's settings extend (woundcare_shared.settings_model, imported from here on first use).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from woundcare_shared.settings_model import Settings  # noqa: F401 (served by __getattr__ below)

ENV_PREFIX = "WOUNDCARE_"
STORE_SCHEMES = ("file", "s3")
TABLE_SCHEMES = ("sqlite", "dynamodb")
DEFAULT_HOME = Path(".woundcare")
LOCATION_FIELDS = ("store_url", "registry_url", "audit_url", "runs_url")
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


def check_location(field: str, url: str) -> str:
    """`url` if it is a valid value of the location `field` (empty means the default), else ValueError."""
    if url:
        parse_url(url, STORE_SCHEMES if field == "store_url" else TABLE_SCHEMES)
    return url


def fill_locations(home: Path, urls: Mapping[str, str]) -> dict[str, Any]:
    """The absolute home and every location, an unset one under home (the table services share one SQLite file)."""
    home = home.expanduser().resolve()
    database = f"sqlite://{home / 'woundcare.db'}"
    defaults = {
        "store_url": f"file://{home / 'store'}",
        "registry_url": database,
        "audit_url": database,
        "runs_url": database,
    }
    return {"home": home, **{field: urls[field] or defaults[field] for field in LOCATION_FIELDS}}


class EnvReader:
    """WOUNDCARE_* variables by field name, matched case-insensitively as pydantic-settings matches them.

    Each bad value is recorded, not raised, so that `done` can name every bad variable in one error.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        source = os.environ if environ is None else environ
        self._values = {name.lower(): value for name, value in source.items()}
        self.problems: list[str] = []

    def text(self, field: str, check: Callable[[str], object] | None = None) -> str:
        """The variable's text ("" if unset); `check` raises ValueError with the complaint."""
        value = self._raw(field) or ""
        if value and check is not None:
            try:
                check(value)
            except ValueError as error:
                self._problem(field, str(error))
        return value

    def path(self, field: str, default: Path | None) -> Path | None:
        raw = self._raw(field)
        return default if raw is None else Path(raw)

    def integer(self, field: str, default: int, low: int) -> int:
        """An integer ("2048", "2_048" and "2048.0" read as 2048) of at least `low`."""
        number = self._number(field, float(default), low, "an integer")
        return int(number) if number.is_integer() else self._refuse(field, default, "an integer")

    def real(self, field: str, default: float, low: float) -> float:
        """A number (NaN refused, infinity allowed) of at least `low`."""
        return self._number(field, default, low, "a number")

    def done(self, what: str) -> None:
        """Raise ConfigurationError naming every bad variable read so far, if any."""
        if self.problems:
            raise ConfigurationError(f"invalid woundcare {what}: " + "; ".join(self.problems))

    def _number(self, field: str, default: float, low: float, kind: str) -> float:
        raw = self._raw(field)
        if raw is None:
            return default
        try:
            number = float(raw.strip())
        except ValueError:
            return self._refuse(field, default, kind)
        if math.isnan(number) or number < low:
            return self._refuse(field, default, f"{kind} >= {low:g}")
        return number

    def _refuse(self, field: str, default: Any, expected: str) -> Any:
        self._problem(field, f"must be {expected}")
        return default

    def _raw(self, field: str) -> str | None:
        return self._values.get(f"{ENV_PREFIX}{field}".lower())

    def _problem(self, field: str, message: str) -> None:
        self.problems.append(f"{ENV_PREFIX}{field.upper()}: {message}")


def read_locations(env: EnvReader) -> dict[str, Any]:
    """WOUNDCARE_HOME and the four service locations, checked and with defaults filled (keyword arguments)."""
    home = env.path("home", DEFAULT_HOME) or DEFAULT_HOME
    return fill_locations(home, {field: env.text(field, partial(check_location, field)) for field in LOCATION_FIELDS})


@dataclass(frozen=True)
class ServiceLocations:
    """Where the platform keeps things: its home folder and the object store, registry, audit and runs services."""

    home: Path
    store_url: str
    registry_url: str
    audit_url: str
    runs_url: str


@lru_cache(maxsize=1)
def get_settings() -> ServiceLocations:
    """The service locations from the environment, parsed on first use; raises ConfigurationError if invalid."""
    env = EnvReader()
    locations = ServiceLocations(**read_locations(env))
    env.done("configuration")
    return locations


def __getattr__(name: str) -> Any:
    """`Settings` on first use: the pydantic-settings base of the pipeline's settings (PEP 562)."""
    if name == "Settings":
        from woundcare_shared.settings_model import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
