"""Settings read once from the environment. Every env var CDP Lite reads is listed here and in the
README; no other module calls ``os.getenv``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

from orchestration.errors import CdpError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    home: Path  # CDP_HOME: embedded server data, keys, exports, Dagster home
    database_url: str | None  # CDP_DATABASE_URL: external warehouse; None = embedded server
    dagster_home: Path  # DAGSTER_HOME
    pii_key: str | None  # CDP_PII_KEY: base64 32-byte master key; None = key file
    demo_seed: int  # CDP_DEMO_SEED
    demo_scale: float  # CDP_DEMO_SCALE
    demo_as_of: date | None  # CDP_DEMO_AS_OF (YYYY-MM-DD); None = today (UTC)
    identity_blocklist: Path | None  # CDP_IDENTITY_BLOCKLIST: YAML of junk identifier values

    @property
    def pg_dir(self) -> Path:
        return self.home / "pg"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def uses_embedded(self) -> bool:
        return self.database_url is None


def _float(name: str, raw: str | None, default: float) -> float:
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise CdpError(f"{name}={raw!r} is not a number (e.g. {name}={default})") from None


def _int(name: str, raw: str | None, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise CdpError(f"{name}={raw!r} is not an integer (e.g. {name}={default})") from None


def _date(name: str, raw: str | None) -> date | None:
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise CdpError(f"{name}={raw!r} is not a date; use YYYY-MM-DD") from None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    home = Path(env.get("CDP_HOME") or PROJECT_ROOT / ".cdp").expanduser().resolve()
    url = env.get("CDP_DATABASE_URL") or None
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise CdpError(
            f"CDP_DATABASE_URL must be a postgresql:// URL, got {url.split('@')[-1]!r}; "
            "unset it to use the embedded server"
        )
    return Settings(
        home=home,
        database_url=url,
        dagster_home=Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve(),
        pii_key=env.get("CDP_PII_KEY") or None,
        demo_seed=_int("CDP_DEMO_SEED", env.get("CDP_DEMO_SEED"), 42),
        demo_scale=_float("CDP_DEMO_SCALE", env.get("CDP_DEMO_SCALE"), 1.0),
        demo_as_of=_date("CDP_DEMO_AS_OF", env.get("CDP_DEMO_AS_OF")),
        identity_blocklist=Path(env["CDP_IDENTITY_BLOCKLIST"]).expanduser()
        if env.get("CDP_IDENTITY_BLOCKLIST")
        else None,
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def today_utc() -> date:
    return datetime.now(UTC).date()
