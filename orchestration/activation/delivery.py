"""Pushing batches to a destination exactly once in effect: the ledger, retries and backoff.

Destination-agnostic. A push destination (webhook, a Klaviyo list, ...) turns the changes into
batch bodies and knows how to make *one* attempt; this module records the batches in
``activation.deliveries`` (bodies encrypted with the vault key), sends them with a small thread
pool, retries what is retryable with exponential backoff and jitter, honours ``Retry-After``,
and writes every attempt to the ledger. Batches that still fail stay ``failed`` (or ``pending``
if the process died) and are sent first, under the same delivery id, by the segment's next
export: receivers dedupe on the id, so nothing is lost and nothing is processed twice.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestration.activation.config import ActivationConfig, config
from orchestration.privacy.vault import VaultKeys


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    timeout_s: float = 10.0
    concurrency: int = 4
    base_s: float = 0.5  # first backoff; doubles per attempt
    max_wait_s: float = 60.0  # cap on one wait; a longer Retry-After ends this run's attempts

    @classmethod
    def from_config(cls, cfg: ActivationConfig | None = None) -> RetryPolicy:
        cfg = cfg or config()
        return cls(
            max_attempts=cfg.webhook_max_attempts,
            timeout_s=cfg.webhook_timeout_s,
            concurrency=cfg.webhook_concurrency,
            max_wait_s=cfg.webhook_max_wait_s,
        )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential with "equal jitter": half fixed, half random, so retries spread out."""
        full = min(self.max_wait_s, self.base_s * 2 ** (attempt - 1))
        return full / 2 + rng.uniform(0, full / 2)


@dataclass
class Batch:
    delivery_id: str
    export_id: str
    batch: int
    records: int
    body: bytes


@dataclass
class Attempt:
    """The outcome of one attempt, as the destination saw it."""

    ok: bool
    retryable: bool
    http_status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


@dataclass
class DeliveryReport:
    destination: str
    target: str
    batches: int = 0
    delivered: int = 0
    failed: int = 0
    records_delivered: int = 0
    records_failed: int = 0
    attempts: int = 0
    retries: int = 0
    backlog_resent: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"} | {
            "errors": self.errors[:5]
        }


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def http_attempt(request: Callable[[], httpx.Response], *, auth_hint: str = "") -> Attempt:
    """One HTTP request as an ``Attempt``: 2xx delivered; timeouts, dropped connections, 429 and
    5xx retryable (honouring ``Retry-After``); other statuses final. ``auth_hint`` is added to
    a 401/403 message."""
    try:
        resp = request()
    except httpx.TimeoutException as exc:
        return Attempt(False, True, None, f"timeout: {type(exc).__name__}")
    except httpx.TransportError as exc:
        return Attempt(False, True, None, f"connection error: {type(exc).__name__}: {exc}")
    status = resp.status_code
    if 200 <= status < 300:
        return Attempt(True, False, status)
    retryable = status == 429 or status >= 500
    detail = re.sub(r"\s+", " ", resp.text[:200])
    hint = auth_hint if status in (401, 403) else ""
    return Attempt(
        False,
        retryable,
        status,
        f"HTTP {status} {resp.reason_phrase}{hint}: {detail}".strip(),
        parse_retry_after(resp.headers.get("retry-after")) if retryable else None,
    )


# ------------------------------------------------------------------------------ the ledger


def _seal(keys: VaultKeys, delivery_id: str, body: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(keys.encryption).encrypt(nonce, body, f"delivery:{delivery_id}".encode())


def _open(keys: VaultKeys, delivery_id: str, sealed: bytes) -> bytes:
    data = bytes(sealed)
    return AESGCM(keys.encryption).decrypt(data[:12], data[12:], f"delivery:{delivery_id}".encode())


def record_batches(
    conn: psycopg.Connection,
    keys: VaultKeys,
    *,
    segment: str,
    destination: str,
    target: str,
    batches: list[Batch],
) -> None:
    """Add new batches to the ledger as ``pending`` (in the caller's transaction)."""
    with conn.cursor() as cur:
        cur.executemany(
            "insert into activation.deliveries (delivery_id, segment, export_id, destination, "
            "target, batch, records, body_ciphertext, status) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, 'pending') on conflict do nothing",
            [
                (
                    b.delivery_id,
                    segment,
                    b.export_id,
                    destination,
                    target,
                    b.batch,
                    b.records,
                    _seal(keys, b.delivery_id, b.body),
                )
                for b in batches
            ],
        )


def has_history(conn: psycopg.Connection, segment: str, destination: str, target: str) -> bool:
    return (
        conn.execute(
            "select 1 from activation.deliveries where segment = %s and destination = %s "
            "and target = %s limit 1",
            (segment, destination, target),
        ).fetchone()
        is not None
    )


def outstanding(
    conn: psycopg.Connection, keys: VaultKeys, segment: str, destination: str, target: str
) -> list[Batch]:
    """Every batch not yet delivered to this target, oldest export first."""
    rows = conn.execute(
        "select delivery_id, export_id, batch, records, body_ciphertext "
        "from activation.deliveries where segment = %s and destination = %s and target = %s "
        "and status in ('pending', 'failed') order by export_id, batch",
        (segment, destination, target),
    ).fetchall()
    return [Batch(d, e, b, r, _open(keys, d, body)) for d, e, b, r, body in rows]


_ATTEMPT_SQL = """
update activation.deliveries set
    attempt_count = attempt_count + 1,
    status = %(status)s,
    http_status = %(http_status)s,
    last_error = %(error)s,
    last_attempt_at = now(),
    delivered_at = case when %(status)s = 'delivered' then now() end,
    body_ciphertext = case when %(status)s = 'delivered' then null else body_ciphertext end,
    attempts = attempts || jsonb_build_array(%(attempt)s::jsonb)
where delivery_id = %(delivery_id)s
"""


# ------------------------------------------------------------------------------ sending


def send_all(
    url: str,
    batches: list[Batch],
    send_once: Callable[[Batch], Attempt],
    *,
    policy: RetryPolicy,
    report: DeliveryReport,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Send every batch (in order of submission, ``policy.concurrency`` at a time), each with
    its retries; every attempt is written to the ledger at once on its own connection."""
    rng = rng or random.Random()
    lock = threading.Lock()
    report.batches += len(batches)
    with psycopg.connect(url, autocommit=True) as ledger:

        def write(batch: Batch, status: str, result: Attempt, attempt: int, wait: float | None):
            entry = {
                "attempt": attempt,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "http_status": result.http_status,
                "error": result.error,
                "wait_s": None if wait is None else round(wait, 3),
            }
            with lock:
                ledger.execute(
                    _ATTEMPT_SQL,
                    {
                        "status": status,
                        "http_status": result.http_status,
                        "error": result.error,
                        "attempt": json.dumps(entry),
                        "delivery_id": batch.delivery_id,
                    },
                )
                report.attempts += 1
                report.retries += attempt > 1

        def deliver(batch: Batch) -> None:
            for attempt in range(1, policy.max_attempts + 1):
                result = send_once(batch)
                if result.ok:
                    write(batch, "delivered", result, attempt, None)
                    with lock:
                        report.delivered += 1
                        report.records_delivered += batch.records
                    return
                wait = None
                if result.retryable and attempt < policy.max_attempts:
                    wait = policy.backoff(attempt, rng)
                    if result.retry_after_s is not None:
                        if result.retry_after_s > policy.max_wait_s:
                            result.error = (
                                f"{result.error}; Retry-After {result.retry_after_s:.0f}s exceeds "
                                f"the {policy.max_wait_s:.0f}s cap: left for the next export"
                            )
                            wait = None
                        else:
                            wait = max(wait, result.retry_after_s)
                if wait is None:  # not retryable, out of attempts, or told to come back later
                    write(batch, "failed", result, attempt, None)
                    with lock:
                        report.failed += 1
                        report.records_failed += batch.records
                        report.errors.append(f"{batch.delivery_id}: {result.error}")
                    return
                write(batch, "pending", result, attempt, wait)
                sleep(wait)

        with ThreadPoolExecutor(max_workers=max(1, policy.concurrency)) as pool:
            list(pool.map(deliver, batches))
    return report
