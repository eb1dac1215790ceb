"""Klaviyo JSON:API connector: profiles and events (with metric names) into ``raw_klaviyo.*``,
incremental by ``updated`` / ``datetime``.

Protocol (developers.klaviyo.com/en/reference/api_overview): ``Authorization: Klaviyo-API-Key
<private key>`` and a ``revision`` header on every request; ``filter=greater-or-equal(updated,…)``,
``sort``, ``page[size]``; cursor pagination by following ``links.next``; 429 with ``Retry-After``
when a rate limit is hit.

Scopes a private API key needs: ``profiles:read``, ``events:read``, ``metrics:read`` (and
``lists:write`` for the list destination).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pandas as pd

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.connectors import state
from orchestration.sources.connectors.http import ApiClient
from orchestration.sources.schemas import table

SOURCE = "klaviyo"
PROFILES, EVENTS = table(SOURCE, "profiles"), table(SOURCE, "events")
# event_properties keys that become columns; the rest stays in ``properties``
_VALUE, _FLOW, _MESSAGE = "$value", "$flow", "$message"
AUTH_HINT = (
    "Check KLAVIYO_API_KEY: a private API key (pk_…) with the profiles:read, events:read and "
    "metrics:read scopes."
)


def client_from_settings(cfg, **kwargs) -> ApiClient:
    if not cfg.klaviyo_api_key:
        raise CdpError(
            "the Klaviyo connector is live but KLAVIYO_API_KEY is not set (a private API key "
            "with profiles:read, events:read and metrics:read)"
        )
    return make_client(
        cfg.klaviyo_base_url, cfg.klaviyo_api_key.value, cfg.klaviyo_revision, **kwargs
    )


def make_client(base_url: str, api_key: str, revision: str, **kwargs) -> ApiClient:
    kwargs.setdefault("auth_hint", AUTH_HINT)
    return ApiClient(
        "Klaviyo",
        base_url.rstrip("/") + "/",
        {
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": revision,
            "accept": "application/vnd.api+json",
        },
        **kwargs,
    )


def pages(client: ApiClient, path: str, params: dict) -> Iterator[dict]:
    """Every page of a JSON:API collection, following ``links.next``."""
    body = client.get_json(path, params=params)
    yield body
    while (body.get("links") or {}).get("next"):
        body = client.get_json(body["links"]["next"])
        yield body


def norm_stamp(stamp: str | None) -> str | None:
    """Klaviyo's ``2024-11-21T00:05:00+00:00`` as the cursor format ``…T00:05:00Z``."""
    if stamp is None:
        return None
    if len(stamp) == 25 and stamp.endswith("+00:00"):
        return stamp[:19] + "Z"
    return pd.Timestamp(stamp).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_profiles(client: ApiClient, cursor: dict | None, page_size: int = 100):
    params = {
        "sort": "updated",
        "page[size]": page_size,
        "additional-fields[profile]": "subscriptions",
    }
    if cursor:
        params["filter"] = f"greater-or-equal(updated,{cursor['ts']})"
    for body in pages(client, "api/profiles/", params):
        yield body["data"]


def fetch_events(client: ApiClient, cursor: dict | None, page_size: int = 200):
    params = {"sort": "datetime", "include": "metric", "page[size]": page_size}
    if cursor:
        params["filter"] = f"greater-or-equal(datetime,{cursor['ts']})"
    for body in pages(client, "api/events/", params):
        metrics = {
            m["id"]: (m.get("attributes") or {}).get("name")
            for m in body.get("included") or ()
            if m.get("type") == "metric"
        }
        for event in body["data"]:
            metric = ((event.get("relationships") or {}).get("metric") or {}).get("data") or {}
            event["_metric_name"] = metrics.get(metric.get("id"))
        yield body["data"]


def _ts(values: list) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")


def profiles_frame(records: list[dict]) -> pd.DataFrame:
    cols: dict[str, list] = {c: [] for c in PROFILES.input_columns}
    for r in records:
        a = r.get("attributes") or {}
        loc = a.get("location") or {}
        email_sub = ((a.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
        row = (
            r["id"],
            a.get("external_id"),
            email_sub.get("consent"),
            loc.get("city"),
            loc.get("region"),
            loc.get("country"),
            (a.get("properties") or {}).get("$source"),
            a.get("created"),
            a.get("updated"),
            a.get("email"),
            a.get("phone_number"),
            a.get("first_name"),
            a.get("last_name"),
        )
        for values, v in zip(cols.values(), row, strict=True):
            values.append(v)
    frame = pd.DataFrame(cols)
    for c in ("created", "updated"):
        frame[c] = _ts(cols[c])
    return frame


def events_frame(records: list[dict]) -> pd.DataFrame:
    cols: dict[str, list] = {c: [] for c in EVENTS.input_columns}
    dumps = orjson.dumps
    for r in records:
        a = r.get("attributes") or {}
        rel = r.get("relationships") or {}
        props = dict(a.get("event_properties") or {})
        value = props.pop(_VALUE, None)
        flow = props.pop(_FLOW, None)
        message = props.pop(_MESSAGE, None)
        cols["id"].append(r["id"])
        cols["profile_id"].append(((rel.get("profile") or {}).get("data") or {}).get("id"))
        cols["metric_id"].append(((rel.get("metric") or {}).get("data") or {}).get("id"))
        cols["metric_name"].append(r.get("_metric_name"))
        cols["datetime"].append(a.get("datetime"))
        # campaign emails carry the campaign id as $message; flow emails carry $flow
        cols["campaign_id"].append(message if flow is None else None)
        cols["flow_id"].append(flow)
        cols["value"].append(value)
        cols["properties"].append(dumps(props).decode())
    frame = pd.DataFrame(cols)
    frame["datetime"] = _ts(cols["datetime"])
    frame["value"] = pd.to_numeric(pd.Series(cols["value"], dtype=object))
    return frame


def sync_klaviyo(
    url: str,
    client: ApiClient,
    *,
    keys: VaultKeys,
    blocklist: Blocklist,
    batch_records: int = 20_000,
    streams: tuple[str, ...] = ("profiles", "events"),
    log: Callable[[str], None] = lambda msg: None,
) -> list[state.StreamStats]:
    from orchestration.runtime.db import connect

    plans = {
        "profiles": (fetch_profiles, "updated", lambda recs: [(PROFILES, profiles_frame(recs))]),
        "events": (fetch_events, "datetime", lambda recs: [(EVENTS, events_frame(recs))]),
    }
    out = []
    with connect(url, autocommit=True) as conn:
        state.ensure_connector_tables(conn)
        lock = "select pg_try_advisory_lock(hashtext('cdp.connector.klaviyo'))"
        if not conn.execute(lock).fetchone()[0]:
            raise CdpError("another Klaviyo sync is running against this warehouse; try later")
        for stream in streams:
            fetch, stamp_field, frames = plans[stream]
            out.append(
                state.sync_incremental(
                    conn,
                    SOURCE,
                    stream,
                    fetch=lambda cursor, f=fetch: f(client, cursor),
                    key=lambda r, s=stamp_field: (r["id"], norm_stamp(r["attributes"][s])),
                    frames=frames,
                    keys=keys,
                    blocklist=blocklist,
                    batch_records=batch_records,
                    log=log,
                )
            )
    return out
