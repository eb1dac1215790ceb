"""Operational alerts (churn alerts, failed runs) posted to ``CDP_ALERT_WEBHOOK_URL``.

An alert is one small JSON document, so it is not worth the segment ledger's batching; but an
alert lost to a blip of the receiver is a customer nobody called, so it gets the same retry
discipline as segment webhooks: timeouts, connection errors, 429 and 5xx are retried with
exponential backoff and jitter, ``Retry-After`` is honoured (a wait longer than the policy's cap
ends this run's attempts), other 4xx are final. Every attempt carries the same
``Idempotency-Key`` so a receiver that saw an earlier attempt can drop the repeat. Callers record
the outcome; a failed alert is re-sent by the caller's next run (see ``churn.alerts``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from orchestration.activation.delivery import RetryPolicy, parse_retry_after

# an alert must not hold a pipeline run for long: 4 attempts, about 3.5 s of backoff in all
ALERT_POLICY = RetryPolicy(max_attempts=4, timeout_s=10.0, concurrency=1, base_s=0.5)


@dataclass(frozen=True)
class AlertDelivery:
    ok: bool
    status: str  # "posted 200" | "failed: HTTP 503 after 4 attempts" | ...
    attempts: int


def post_alert(
    url: str,
    payload: dict,
    *,
    idempotency_key: str,
    policy: RetryPolicy = ALERT_POLICY,
    client: httpx.Client | None = None,
    log: Callable[[str], None] = lambda msg: None,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertDelivery:
    """POST ``payload`` as JSON to ``url``, retrying what is retryable."""
    own = client is None
    client = client or httpx.Client(timeout=policy.timeout_s)
    rng = random.Random()
    last = "no attempt"
    try:
        for attempt in range(1, policy.max_attempts + 1):
            retry_after = None
            try:
                resp = client.post(url, json=payload, headers={"Idempotency-Key": idempotency_key})
            except httpx.HTTPError as exc:  # timeouts and connection errors: retryable
                last = f"{type(exc).__name__}"
            else:
                if resp.is_success:
                    return AlertDelivery(True, f"posted {resp.status_code}", attempt)
                last = f"HTTP {resp.status_code}"
                if resp.status_code != 429 and resp.status_code < 500:
                    return AlertDelivery(False, f"failed: {last}", attempt)
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if attempt == policy.max_attempts:
                break
            wait = policy.backoff(attempt, rng) if retry_after is None else retry_after
            if wait > policy.max_wait_s:
                log(f"alert webhook asks to wait {wait:.0f}s: giving up for this run")
                return AlertDelivery(False, f"failed: {last} (Retry-After {wait:.0f}s)", attempt)
            log(f"alert webhook attempt {attempt} failed ({last}); retrying in {wait:.1f}s")
            sleep(wait)
        return AlertDelivery(False, f"failed: {last} after {policy.max_attempts} attempts",
                             policy.max_attempts)  # fmt: skip
    finally:
        if own:
            client.close()
