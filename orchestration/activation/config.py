"""Activation settings, read from the environment once.

The lead's ``runtime.settings`` owns the shared settings (``$CDP_HOME``, the exports directory);
these are the knobs only activation reads. Every one is listed in the README's Activation section:

=========================== ============ ======================================================
variable                    default      meaning
=========================== ============ ======================================================
CDP_EXPORTS_KEEP            5            complete exports kept per segment (older ones deleted)
CDP_NIGHTLY_CRON            0 2 * * *    when the nightly ``cdp_pipeline`` refresh runs
CDP_NIGHTLY_TIMEZONE        UTC          IANA timezone of that cron (e.g. Europe/Berlin)
CDP_ALERT_WEBHOOK_URL       (none)       failed runs are POSTed here (Slack-style ``{"text"}``)
CDP_WEBHOOK_MAX_ATTEMPTS    6            attempts per webhook batch within one export run
CDP_WEBHOOK_TIMEOUT         10           seconds per webhook request
CDP_WEBHOOK_CONCURRENCY     4            webhook batches in flight at once
CDP_WEBHOOK_MAX_WAIT        60           cap (seconds) on one backoff or Retry-After wait
=========================== ============ ======================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestration.errors import CdpError


@dataclass(frozen=True)
class ActivationConfig:
    exports_keep: int = 5
    nightly_cron: str = "0 2 * * *"
    nightly_timezone: str = "UTC"
    alert_webhook_url: str | None = None
    webhook_max_attempts: int = 6
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 4
    webhook_max_wait_s: float = 60.0


def _number(env: dict[str, str], name: str, default: float, kind: type, low: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise CdpError(f"{name}={raw!r} is not a {kind.__name__} (e.g. {name}={default})") from None
    if value < low:
        raise CdpError(f"{name}={raw!r} must be at least {low}")
    return value


def load_config(env: dict[str, str] | None = None) -> ActivationConfig:
    env = dict(os.environ) if env is None else env
    cron = (env.get("CDP_NIGHTLY_CRON") or "0 2 * * *").strip()
    if len(cron.split()) != 5:
        raise CdpError(
            f"CDP_NIGHTLY_CRON={cron!r} is not a 5-field cron expression (e.g. '0 2 * * *')"
        )
    tz = (env.get("CDP_NIGHTLY_TIMEZONE") or "UTC").strip()
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CdpError(
            f"CDP_NIGHTLY_TIMEZONE={tz!r} is not an IANA timezone (e.g. Europe/Berlin)"
        ) from None
    alert = (env.get("CDP_ALERT_WEBHOOK_URL") or "").strip() or None
    if alert and not alert.startswith(("http://", "https://")):
        raise CdpError(f"CDP_ALERT_WEBHOOK_URL must be an http(s) URL, got {alert!r}")
    return ActivationConfig(
        exports_keep=int(_number(env, "CDP_EXPORTS_KEEP", 5, int, 1)),
        nightly_cron=cron,
        nightly_timezone=tz,
        alert_webhook_url=alert,
        webhook_max_attempts=int(_number(env, "CDP_WEBHOOK_MAX_ATTEMPTS", 6, int, 1)),
        webhook_timeout_s=_number(env, "CDP_WEBHOOK_TIMEOUT", 10.0, float, 0.1),
        webhook_concurrency=int(_number(env, "CDP_WEBHOOK_CONCURRENCY", 4, int, 1)),
        webhook_max_wait_s=_number(env, "CDP_WEBHOOK_MAX_WAIT", 60.0, float, 0.0),
    )


@lru_cache(maxsize=1)
def config() -> ActivationConfig:
    """The process-wide activation settings, read once."""
    return load_config()


def environment() -> dict[str, str]:
    """The process environment, for secrets a segment file names by variable (``secret_env``):
    read at export time so a rotated secret takes effect without a reload."""
    return dict(os.environ)
