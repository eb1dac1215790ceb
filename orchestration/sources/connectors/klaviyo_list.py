"""Klaviyo list destination: keep a Klaviyo list in step with a segment.

A segment's export ``{destination: klaviyo_list, list_id: Xy12Ab, api_key_env: KLAVIYO_API_KEY}``
adds the profiles that entered the segment to the list and removes the ones that exited, through
the JSON:API relationships endpoints ``POST``/``DELETE /api/lists/{list_id}/relationships/
profiles/`` (at most 1000 profile ids per request), retried like every other call (429 with
``Retry-After``, 5xx with backoff; 401/403 fail at once). Adding or removing is idempotent on
Klaviyo's side, so a retried or re-run batch does no harm.

Members are Klaviyo profile ids (``raw_klaviyo.profiles.id``, linked to CDP customers by the
identity graph); members without a Klaviyo profile are reported, not created. The key needs the
``lists:write`` scope (and ``profiles:read``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

from orchestration.sources.connectors.http import ApiClient, HttpStats
from orchestration.sources.connectors.klaviyo import make_client

BATCH = 1000  # Klaviyo's limit per relationships request


@dataclass
class ListSyncResult:
    list_id: str
    added: int
    removed: int
    requests: int
    stats: HttpStats

    def as_metadata(self) -> dict:
        return {
            "list_id": self.list_id,
            "added": self.added,
            "removed": self.removed,
            **self.stats.as_metadata(),
        }


def _batches(ids: Iterable[str], size: int) -> Iterable[list[str]]:
    batch: list[str] = []
    for i in dict.fromkeys(str(x) for x in ids if x):  # unique, order kept
        batch.append(i)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def sync_list(
    client: ApiClient,
    list_id: str,
    *,
    entered: Iterable[str] = (),
    exited: Iterable[str] = (),
    batch_size: int = BATCH,
) -> ListSyncResult:
    """Add ``entered`` and remove ``exited`` Klaviyo profile ids from list ``list_id``."""
    path = f"api/lists/{list_id}/relationships/profiles/"
    counts = {"POST": 0, "DELETE": 0}
    requests = 0
    for method, ids in (("POST", entered), ("DELETE", exited)):
        for batch in _batches(ids, min(batch_size, BATCH)):
            body = {"data": [{"type": "profile", "id": i} for i in batch]}
            client.request(
                method,
                path,
                content=orjson.dumps(body),
                headers={"content-type": "application/vnd.api+json"},
            )
            counts[method] += len(batch)
            requests += 1
    return ListSyncResult(list_id, counts["POST"], counts["DELETE"], requests, client.stats)


def sync_segment_to_list(
    list_id: str,
    api_key_env: str,
    *,
    entered: Iterable[str],
    exited: Iterable[str],
    log: Callable[[str], None] = lambda msg: None,
) -> ListSyncResult:
    """The activation entry point: key from the env var the segment names, read once."""
    from orchestration.sources.connectors.config import connector_settings

    cfg = connector_settings()
    api_key = cfg.secret(api_key_env)
    with make_client(
        cfg.klaviyo_base_url,
        api_key.value,
        cfg.klaviyo_revision,
        log=log,
        auth_hint=f"Check {api_key_env}: a private API key with the lists:write scope.",
    ) as client:
        return sync_list(client, list_id, entered=entered, exited=exited)
