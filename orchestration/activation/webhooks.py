"""Webhook destination: segment changes as signed JSON batches (Standard Webhooks).

Each batch is one ``POST`` with ``content-type: application/json`` and the headers

- ``webhook-id``: the delivery id, stable for segment + export + batch and reused on every retry
  (and by the next export when it re-sends a failed batch) — receivers dedupe on it;
- ``webhook-timestamp``: Unix seconds of this attempt;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``.

The secret is the value of the environment variable the segment names in ``secret_env``. A
``whsec_``-prefixed secret is base64-decoded first (the Standard Webhooks convention, so the
standard libraries verify our requests); any other value is used as its UTF-8 bytes.

Body: ``{"type": "segment.membership.changed", "segment", "segment_name", "export_id",
"batch", "batches", "created_at", "entered": [{columns...}], "exited": [{columns...}]}``.
The first delivery of a segment to a URL sends every current member as entered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pyarrow as pa

from orchestration.activation.delivery import Attempt, Batch, http_attempt
from orchestration.errors import CdpError

if TYPE_CHECKING:
    from orchestration.activation.exports import PushContext
    from orchestration.segments.spec import Export

DEFAULT_BATCH_SIZE = 500
TIMESTAMP_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A webhook request that must be rejected (bad or missing signature, stale timestamp)."""


def secret_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    key = secret if isinstance(secret, bytes) else secret_key(secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = TIMESTAMP_TOLERANCE_S,
    now: float | None = None,
) -> str:
    """What a receiver does: check the timestamp is recent and one ``v1`` signature matches
    (constant-time compare). Returns the webhook-id to dedupe on; raises SignatureError."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and ts and sigs):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(ts)
    except ValueError:
        raise SignatureError(f"bad webhook-timestamp {ts!r}") from None
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        raise SignatureError("webhook-timestamp too old or in the future (replay?)")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for candidate in sigs.split():  # space-separated list, e.g. during secret rotation
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return msg_id
    raise SignatureError("no matching v1 signature")


def delivery_id(segment: str, export_id: str, url: str, batch: int) -> str:
    """Stable for segment + export + endpoint + batch: every retry reuses it. The endpoint is in
    it because one segment may export to several webhooks, and the ledger keys on the id."""
    endpoint = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"msg_{segment}_{export_id}_{endpoint}_{batch:05d}"


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _records(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def batch_bodies(
    *,
    segment: str,
    segment_name: str,
    export_id: str,
    url: str,
    entered: pa.Table,
    exited: pa.Table,
    batch_size: int,
) -> list[Batch]:
    """Entered then exited members, ``batch_size`` records per batch."""
    changes = [("entered", r) for r in _records(entered)]
    changes += [("exited", r) for r in _records(exited)]
    total = max(1, -(-len(changes) // batch_size)) if changes else 0
    created = datetime.now(UTC).isoformat(timespec="seconds")
    out = []
    for i in range(total):
        chunk = changes[i * batch_size : (i + 1) * batch_size]
        body = {
            "type": "segment.membership.changed",
            "segment": segment,
            "segment_name": segment_name,
            "export_id": export_id,
            "batch": i + 1,
            "batches": total,
            "created_at": created,
            "entered": [r for kind, r in chunk if kind == "entered"],
            "exited": [r for kind, r in chunk if kind == "exited"],
        }
        data = json.dumps(body, default=_json_default, separators=(",", ":")).encode()
        msg_id = delivery_id(segment, export_id, url, i + 1)
        out.append(Batch(msg_id, export_id, i + 1, len(chunk), data))
    return out


class WebhookDestination:
    """The ``destination: webhook`` entry of a segment's ``exports``."""

    name = "webhook"
    columns = None  # the export's columns

    def target(self, export: Export) -> str:
        return export.url or ""

    def validate(self, ctx: PushContext, export: Export) -> None:
        if not ctx.secret(export.secret_env):
            raise CdpError(
                f"{ctx.source}: the webhook export to {export.url} signs with the environment "
                f"variable {export.secret_env}, which is not set; set it (e.g. "
                f"{export.secret_env}=whsec_$(openssl rand -base64 32)) or remove the export"
            )

    def plan(self, ctx: PushContext, export: Export, entered: pa.Table, exited: pa.Table):
        return batch_bodies(
            segment=ctx.segment,
            segment_name=ctx.segment_name,
            export_id=ctx.export_id,
            url=export.url or "",
            entered=entered,
            exited=exited,
            batch_size=export.batch_size or DEFAULT_BATCH_SIZE,
        )

    def sender(self, ctx: PushContext, export: Export, client: httpx.Client):
        key = secret_key(ctx.secret(export.secret_env) or "")
        url = export.url

        def send_once(batch: Batch) -> Attempt:
            ts = int(time.time())
            headers = {
                "content-type": "application/json",
                "user-agent": "cdp-lite-activation/1",
                "webhook-id": batch.delivery_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(key, batch.delivery_id, ts, batch.body),
            }
            return http_attempt(lambda: client.post(url, content=batch.body, headers=headers))

        return send_once


DESTINATION = WebhookDestination()
