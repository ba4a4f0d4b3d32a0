"""One typed settings object, built in the app factory (never at import time)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Every setting of the hub; each can come from a CITYHUB_* environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="CITYHUB_", toml_file="cityhub.toml", extra="forbid"
    )

    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(1026, ge=1, le=65535, description="HTTP port (NGSI-LD brokers use 1026).")
    db: str = Field("./cityhub.db", description="Path of the embedded SQLite database file.")
    context_timeout: float = Field(
        3.0, gt=0, le=60, description="Seconds to wait for a remote @context before answering 503."
    )
    context_ttl: float = Field(
        3600.0, gt=0, description="Seconds a fetched remote @context stays cached."
    )
    context_mirrors: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Remote @context URL -> local file path or other URL, for sites without internet "
            'access, e.g. {"https://smartdatamodels.org/context.jsonld": "/srv/ctx/sdm.jsonld"}.'
        ),
    )
    log_level: str = Field("info", description="uvicorn log level: debug, info, warning, error.")
    temporal_limit: int = Field(
        1000,
        ge=1,
        description="Most instances of one attribute a temporal response holds; beyond it the "
        "answer is 206 Partial Content with a date-time Content-Range (clause 6.3.10).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments (CLI flags), then CITYHUB_* variables, then ./cityhub.toml."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
