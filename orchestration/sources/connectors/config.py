"""Connector settings, read once from the environment. Every variable a live connector reads is
listed here (and in the README); no other connector module calls ``os.environ``.

Secrets (access tokens, API keys) are kept in :class:`Secret`, whose ``repr``/``str`` never show
the value, so a settings object can be logged or shown in an error without leaking a token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from orchestration.errors import CdpError

LIVE_SOURCES = ("shopify", "klaviyo", "ga4", "helpdesk", "subscriptions")
MODES = ("demo", "live", "off")
DEFAULT_SHOPIFY_API_VERSION = "2025-07"
DEFAULT_KLAVIYO_REVISION = "2025-07-15"


class Secret:
    """A credential: usable through ``.value``, never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class ConnectorSettings:
    modes: dict[str, str]  # source -> demo | live | off
    shopify_store_domain: str  # SHOPIFY_STORE_DOMAIN: my-shop.myshopify.com (or a base URL)
    shopify_access_token: Secret  # SHOPIFY_ACCESS_TOKEN
    shopify_api_version: str  # SHOPIFY_API_VERSION
    klaviyo_api_key: Secret  # KLAVIYO_API_KEY
    klaviyo_revision: str  # KLAVIYO_REVISION
    klaviyo_base_url: str  # KLAVIYO_BASE_URL (tests point it at the fake)
    ga4_export_dir: Path | None  # CDP_GA4_EXPORT_DIR
    helpdesk_drop_dir: Path | None  # CDP_HELPDESK_DROP_DIR
    subscriptions_drop_dir: Path | None  # CDP_SUBSCRIPTIONS_DROP_DIR
    import_dir: Path | None = None  # CDP_IMPORT_DIR: shop CSV exports imported by every run
    import_timezone: str | None = None  # CDP_IMPORT_TIMEZONE: --timezone for those files
    import_date_format: str | None = None  # CDP_IMPORT_DATE_FORMAT: --date-format for them
    # every env var, for destinations that name their key variable (``api_key_env``)
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    def mode(self, source: str) -> str:
        return self.modes.get(source, "demo")

    def secret(self, name: str) -> Secret:
        """A credential from the environment variable ``name`` (e.g. a destination's
        ``api_key_env``); a clear error when it is unset."""
        value = self._env.get(name, "")
        if not value:
            raise CdpError(f"environment variable {name} is not set (it should hold an API key)")
        return Secret(value)

    @property
    def shopify_base_url(self) -> str:
        domain = self.shopify_store_domain.rstrip("/")
        if not domain:
            return ""
        return domain if domain.startswith(("http://", "https://")) else f"https://{domain}"


def _mode(name: str, raw: str | None, default: str) -> str:
    value = (raw or default).strip().lower()
    if value not in MODES:
        raise CdpError(f"{name}={raw!r} is not one of {'|'.join(MODES)}")
    return value


def _dir(raw: str | None) -> Path | None:
    return Path(raw).expanduser() if raw else None


def load_connector_settings(env: dict[str, str] | None = None) -> ConnectorSettings:
    env = dict(os.environ) if env is None else dict(env)
    default = _mode("CDP_SOURCES", env.get("CDP_SOURCES"), "demo")
    modes = {
        s: _mode(f"CDP_SOURCE_{s.upper()}", env.get(f"CDP_SOURCE_{s.upper()}"), default)
        for s in LIVE_SOURCES
    }
    return ConnectorSettings(
        modes=modes,
        shopify_store_domain=env.get("SHOPIFY_STORE_DOMAIN", "").strip(),
        shopify_access_token=Secret(env.get("SHOPIFY_ACCESS_TOKEN", "")),
        shopify_api_version=env.get("SHOPIFY_API_VERSION") or DEFAULT_SHOPIFY_API_VERSION,
        klaviyo_api_key=Secret(env.get("KLAVIYO_API_KEY", "")),
        klaviyo_revision=env.get("KLAVIYO_REVISION") or DEFAULT_KLAVIYO_REVISION,
        klaviyo_base_url=(env.get("KLAVIYO_BASE_URL") or "https://a.klaviyo.com").rstrip("/"),
        ga4_export_dir=_dir(env.get("CDP_GA4_EXPORT_DIR")),
        helpdesk_drop_dir=_dir(env.get("CDP_HELPDESK_DROP_DIR")),
        subscriptions_drop_dir=_dir(env.get("CDP_SUBSCRIPTIONS_DROP_DIR")),
        import_dir=_dir(env.get("CDP_IMPORT_DIR")),
        import_timezone=env.get("CDP_IMPORT_TIMEZONE") or None,
        import_date_format=env.get("CDP_IMPORT_DATE_FORMAT") or None,
        _env=env,
    )


@lru_cache(maxsize=1)
def connector_settings() -> ConnectorSettings:
    """The process-wide connector settings, read once."""
    return load_connector_settings()
