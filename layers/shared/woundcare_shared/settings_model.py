"""`Settings`: the service locations as a pydantic-settings model, for settings that extend them with pydantic
fields (the pipeline's). The rules are woundcare_shared.settings' own; import it from there.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from woundcare_shared.settings import DEFAULT_HOME, ENV_PREFIX, LOCATION_FIELDS, check_location, fill_locations


class Settings(BaseSettings):
    """The platform's service locations from WOUNDCARE_* variables; subclass it to add settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = DEFAULT_HOME
    store_url: str = ""
    registry_url: str = ""
    audit_url: str = ""
    runs_url: str = ""

    @field_validator(*LOCATION_FIELDS)
    @classmethod
    def _check_url(cls, url: str, info: ValidationInfo) -> str:
        return check_location(str(info.field_name), url)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        filled = fill_locations(self.home, {field: getattr(self, field) for field in LOCATION_FIELDS})
        for name, value in filled.items():
            setattr(self, name, value)
        return self
