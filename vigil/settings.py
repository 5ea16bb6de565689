"""One settings object for all of Vigil: environment variables (``VIGIL_*``) and a TOML file.

Precedence: explicit keyword arguments > environment > TOML file > defaults. The TOML file is
``$VIGIL_CONFIG`` if set, else ``<config dir>/vigil.toml`` when it exists. Unsafe defaults (the demo
pseudonym secret and dead-letter key) are refused wherever real patient data could flow, unless
``demo = true``: see :meth:`Settings.require_production_secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vigil.errors import ConfigError

DEMO_SECRET = "vigil-demo-secret-not-for-patient-data"


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def default_data_dir() -> Path:
    """Per-user data folder (XDG on Linux): where the default SQLite file and artefacts live."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "vigil"


def default_config_file() -> Path:
    explicit = os.environ.get("VIGIL_CONFIG")
    if explicit:
        return Path(explicit)
    return _xdg("XDG_CONFIG_HOME", ".config") / "vigil" / "vigil.toml"


def demo_fernet_key() -> str:
    """A fixed, public key for demos only: derived from the demo secret."""
    return base64.urlsafe_b64encode(hashlib.sha256(DEMO_SECRET.encode()).digest()).decode()


class Settings(BaseSettings):
    """Every setting Vigil reads. Each field is documented in the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="forbid", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="Per-user data folder.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means a SQLite file vigil.sqlite in data_dir.",
    )
    demo: bool = Field(
        default=False,
        description="Allow the public demo secret and key (never with real patient data).",
    )
    pseudonym_secret: SecretStr = Field(
        default=SecretStr(DEMO_SECRET),
        description="HMAC key that turns MRNs into patient pseudonyms.",
    )
    deadletter_key: SecretStr = Field(
        default_factory=lambda: SecretStr(demo_fernet_key()),
        description="Fernet key encrypting dead-letter raw bytes at rest.",
    )
    deadletter_retention_days: int = Field(
        default=90, ge=1, description="Days a dead letter is kept before purge."
    )
    max_message_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest HL7 message accepted."
    )
    listen_host: str = Field(default="127.0.0.1", description="MLLP listener address.")
    listen_port: int = Field(default=2575, ge=1, le=65535, description="MLLP listener port.")
    profiles_dir: Path | None = Field(
        default=None, description="Extra folder of sender mapping profiles (TOML)."
    )
    auth_header: str = Field(
        default="",
        description="Trusted reverse-proxy header with the user name (SSO); empty: local login.",
    )

    @field_validator("database_url")
    @classmethod
    def _url_shape(cls, v: str) -> str:
        if v and "://" not in v:
            raise ValueError(
                "must be a SQLAlchemy URL such as sqlite:////path/vigil.sqlite or "
                "postgresql+psycopg://user@host/db"
            )
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=default_config_file())
        return (init_settings, env_settings, toml)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'vigil.sqlite'}"

    @property
    def uses_demo_secrets(self) -> bool:
        return (
            self.pseudonym_secret.get_secret_value() == DEMO_SECRET
            or self.deadletter_key.get_secret_value() == demo_fernet_key()
        )

    def require_production_secrets(self) -> None:
        """Refuse to handle real feeds with the public demo secrets unless ``demo`` is set."""
        if self.uses_demo_secrets and not self.demo:
            raise ConfigError(
                "pseudonym_secret",
                "the public demo secret (or demo dead-letter key) is in use",
                "set VIGIL_PSEUDONYM_SECRET and VIGIL_DEADLETTER_KEY (a Fernet key: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
                ".decode())'), or set VIGIL_DEMO=1 for demo data",
            )


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into a ConfigError that names the key and fix."""
    config_file = default_config_file()
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            "VIGIL_CONFIG",
            f"the settings file {config_file} is not valid TOML ({exc})",
            "correct the file (key = value lines, strings in quotes) or point VIGIL_CONFIG "
            "elsewhere",
        ) from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())) or "?"
        if err.get("type") == "extra_forbidden":
            raise ConfigError(
                key,
                f"not a Vigil setting (in {config_file})",
                "remove it or correct its spelling; the README's settings table lists every key",
            ) from exc
        raise ConfigError(
            key,
            str(err.get("msg", "invalid value")).removeprefix("Value error, "),
            f"set VIGIL_{key.upper()} or '{key}' in {config_file} "
            "(see the README's settings table)",
        ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return load_settings()
