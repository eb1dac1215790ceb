"""One HTTP client for every connector and API destination: retries with backoff and jitter,
``Retry-After`` honoured, no retry on 401/403 or other 4xx, and statistics (requests, retries,
seconds spent waiting) that the Dagster metadata shows.

Credentials travel only in request headers set here; nothing in this module logs headers, and
error messages name the service and the status, never the token.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import orjson

from orchestration.errors import CdpError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class AuthError(CdpError):
    """401/403: credentials missing, wrong or lacking a scope. Never retried."""


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429s and API-level throttles (Shopify THROTTLED)
    wait_seconds: float = 0.0  # time slept for backoff and throttling
    server_errors: int = 0
    network_seconds: float = 0.0  # wall time inside requests (server + network)
    waits: list[float] = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "server_errors": self.server_errors,
            "throttle_wait_seconds": round(self.wait_seconds, 2),
        }


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class ApiClient:
    """A small retrying client for one service (base URL + headers)."""

    def __init__(
        self,
        service: str,
        base_url: str,
        headers: dict[str, str],
        *,
        auth_hint: str,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda msg: None,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.auth_hint = auth_hint
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.log = log
        self.rng = rng or random.Random()
        self.stats = HttpStats()
        self._client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait(self, seconds: float, reason: str, *, throttle: bool = False) -> None:
        seconds = max(0.0, seconds)
        self.stats.wait_seconds += seconds
        self.stats.waits.append(seconds)
        if throttle:
            self.stats.throttled += 1
        self.log(f"{self.service}: {reason}; waiting {seconds:.2f}s")
        self.sleep(seconds)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt 1 -> up to base, 2 -> 2*base, ...)."""
        cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return self.rng.uniform(cap / 2, cap)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """Send with retries; return a 2xx response or raise CdpError."""
        where = _where(url)
        for attempt in range(1, self.max_attempts + 1):
            self.stats.requests += 1
            started = time.perf_counter()
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                self.stats.network_seconds += time.perf_counter() - started
                if attempt == self.max_attempts:
                    raise CdpError(
                        f"{self.service}: {method} {where} failed after {attempt} attempts: "
                        f"{type(exc).__name__}. Check the network and the store/API address."
                    ) from None
                self.stats.retries += 1
                self.wait(self.backoff(attempt), f"{type(exc).__name__} on {where}")
                continue
            self.stats.network_seconds += time.perf_counter() - started
            status = response.status_code
            if status < 300:
                return response
            if status in (401, 403):
                raise AuthError(
                    f"{self.service}: {method} {where} was refused with HTTP {status} "
                    f"({_detail(response)}). {self.auth_hint}"
                )
            if status not in RETRY_STATUSES:
                raise CdpError(
                    f"{self.service}: {method} {where} failed with HTTP {status}: "
                    f"{_detail(response)}"
                )
            if attempt == self.max_attempts:
                raise CdpError(
                    f"{self.service}: {method} {where} still failing with HTTP {status} after "
                    f"{attempt} attempts: {_detail(response)}. The service may be down; re-run "
                    "later (nothing was skipped: the cursor only advances after a commit)."
                )
            self.stats.retries += 1
            if status >= 500:
                self.stats.server_errors += 1
            hinted = retry_after_seconds(response.headers.get("Retry-After"))
            delay = hinted if hinted is not None else self.backoff(attempt)
            if hinted is not None:
                delay += self.rng.uniform(0, min(0.25, 0.1 * max(hinted, 0.5)))  # de-synchronise
            self.wait(delay, f"HTTP {status} on {where}", throttle=status == 429)
        raise AssertionError("unreachable")

    def get_json(self, url: str, **kwargs) -> dict:
        return orjson.loads(self.request("GET", url, **kwargs).content)

    def post_json(self, url: str, body: dict, **kwargs) -> dict:
        response = self.request(
            "POST",
            url,
            content=orjson.dumps(body),
            headers={"content-type": "application/json", **kwargs.pop("headers", {})},
            **kwargs,
        )
        return orjson.loads(response.content) if response.content else {}


def _where(url: str) -> str:
    """Path of a URL without its query string (which may carry filters, never secrets)."""
    return str(url).split("?", 1)[0]


def _detail(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200].strip() or response.reason_phrase
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict):
            return str(first.get("detail") or first.get("message") or first.get("title"))[:200]
        return str(first)[:200]
    if isinstance(errors, str):
        return errors[:200]
    return str(body)[:200]


def utc_now() -> datetime:
    return datetime.now(UTC)
