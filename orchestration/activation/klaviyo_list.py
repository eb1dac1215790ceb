"""Klaviyo list destination: keep a Klaviyo list in step with a segment.

    exports:
      - destination: klaviyo_list
        list_id: Xy12Ab
        api_key_env: KLAVIYO_API_KEY   # a private key with lists:write (and profiles:read)

Members are Klaviyo profile ids: the ``klaviyo / profile_id`` identity records the identity graph
linked to each customer (``marts.customer_identities``). Entered members' profiles
are added to the list and exited members' removed, through the JSON:API relationships endpoint
``POST``/``DELETE /api/lists/{list_id}/relationships/profiles/`` (at most 1000 profiles per
request). Each request is one ledger batch (``delivery.py``): retried on 429 (honouring
``Retry-After``), 5xx and network errors, never on other 4xx (a bad key fails at once), re-sent
by the next export when it still fails. Adding and removing are idempotent on Klaviyo's side, so
a re-sent batch does no harm. Members without a Klaviyo profile are skipped (not created).
The first export to a list sends every current member; later ones only the changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import orjson
import pyarrow as pa

from orchestration.activation.delivery import Attempt, Batch, http_attempt
from orchestration.errors import CdpError
from orchestration.runtime import db

if TYPE_CHECKING:
    from orchestration.activation.exports import PushContext
    from orchestration.segments.spec import Export

BATCH = 1000  # Klaviyo's limit per relationships request
IDENTITIES = "marts.customer_identities"


def _profiles(url: str, customer_ids: list[str]) -> list[str]:
    """The Klaviyo profile ids of these customers, in customer order (several per customer
    when the identity graph merged several profiles)."""
    if not customer_ids:
        return []
    with db.connect(url) as conn:
        rows = conn.execute(
            f"select source_id from {IDENTITIES} i "
            "join unnest(string_to_array(%s, chr(31))) with ordinality c(customer_id, n) "
            "using (customer_id) "
            "where i.source = 'klaviyo' and i.identity_type = 'profile_id' "
            "order by c.n, i.source_id",
            ("\x1f".join(customer_ids),),
        ).fetchall()
    return list(dict.fromkeys(r[0] for r in rows))


class KlaviyoListDestination:
    """The ``destination: klaviyo_list`` entry of a segment's ``exports``."""

    name = "klaviyo_list"
    columns = ("customer_id",)  # profiles are looked up by customer; no PII is decrypted

    def target(self, export: Export) -> str:
        return f"klaviyo:list/{export.list_id}"

    def validate(self, ctx: PushContext, export: Export) -> None:
        if not ctx.secret(export.api_key_env):
            raise CdpError(
                f"{ctx.source}: the klaviyo_list export to list {export.list_id} authenticates "
                f"with the environment variable {export.api_key_env}, which is not set; set it "
                "to a private API key with the lists:write scope, or remove the export"
            )
        with db.connect(ctx.url) as conn:
            if not conn.execute("select to_regclass(%s) is not null", (IDENTITIES,)).fetchone()[0]:
                raise CdpError(
                    f"{ctx.source}: the klaviyo_list export needs {IDENTITIES} (the identity "
                    "graph) to find members' Klaviyo profiles; run the pipeline first"
                )

    def plan(self, ctx: PushContext, export: Export, entered: pa.Table, exited: pa.Table):
        out: list[Batch] = []
        for method, table in (("POST", entered), ("DELETE", exited)):
            ids = _profiles(ctx.url, table["customer_id"].to_pylist())
            for lo in range(0, len(ids), BATCH):
                chunk = ids[lo : lo + BATCH]
                body = orjson.dumps(
                    {"method": method, "data": [{"type": "profile", "id": i} for i in chunk]}
                )
                n = len(out) + 1
                delivery_id = f"klaviyo_{export.list_id}_{ctx.segment}_{ctx.export_id}_{n:05d}"
                out.append(Batch(delivery_id, ctx.export_id, n, len(chunk), body))
        return out

    def sender(self, ctx: PushContext, export: Export, client: httpx.Client):
        from orchestration.sources.connectors.config import connector_settings

        cfg = connector_settings()
        url = f"{cfg.klaviyo_base_url}/api/lists/{export.list_id}/relationships/profiles/"
        headers = {
            "Authorization": f"Klaviyo-API-Key {ctx.secret(export.api_key_env)}",
            "revision": cfg.klaviyo_revision,
            "accept": "application/vnd.api+json",
            "content-type": "application/vnd.api+json",
            "user-agent": "cdp-lite-activation/1",
        }

        def send_once(batch: Batch) -> Attempt:
            envelope = orjson.loads(batch.body)
            content = orjson.dumps({"data": envelope["data"]})
            return http_attempt(
                lambda: client.request(envelope["method"], url, content=content, headers=headers),
                auth_hint=" (check the API key and its lists:write scope)",
            )

        return send_once


DESTINATION = KlaviyoListDestination()
