"""A fake Klaviyo JSON:API serving the demo generator's profiles and events, plus list membership.

Faithful to the documented protocol: ``Authorization: Klaviyo-API-Key …`` (401 otherwise) and a
``revision`` header (400 without); ``GET /api/profiles/`` and ``GET /api/events/`` with
``filter=greater-than|greater-or-equal|less-than(updated|datetime,…)``, ``sort``, ``page[size]``
(max 100 profiles / 200 events), ``page[cursor]`` and ``links.next``;
``additional-fields[profile]=subscriptions``; ``include=metric`` puts metrics in ``included``;
``POST``/``DELETE /api/lists/{id}/relationships/profiles/`` (≤ 1000 profiles, 204). Requests whose
number is in ``throttle_at`` get a 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import bisect
import math
import re
from urllib.parse import urlencode

import orjson
import pandas as pd

from .common import FakeServer, Request, Response

_FILTER = re.compile(r"(greater-than|greater-or-equal|less-than|less-or-equal)\((\w+),([^)]+)\)")
PAGE_MAX = {"profiles": 100, "events": 200}


def _stamp(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _key_stamp(value: str) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _errors(status: int, code: str, detail: str, headers=None) -> Response:
    body = {
        "errors": [
            {
                "id": "fake",
                "status": status,
                "code": code,
                "title": detail,
                "detail": detail,
                "source": {"pointer": "/data/"},
            }
        ]
    }
    return Response.json(status, body, headers)


def profile_node(r: dict) -> dict:
    return {
        "type": "profile",
        "id": r["id"],
        "attributes": {
            "email": _clean(r["email"]),
            "phone_number": _clean(r["phone"]),
            "external_id": _clean(r["external_id"]),
            "anonymous_id": None,
            "first_name": _clean(r["first_name"]),
            "last_name": _clean(r["last_name"]),
            "organization": None,
            "locale": None,
            "title": None,
            "image": None,
            "created": _stamp(r["created"]),
            "updated": _stamp(r["updated"]),
            "last_event_date": None,
            "location": {
                "address1": None,
                "address2": None,
                "city": _clean(r["location_city"]),
                "country": _clean(r["location_country"]),
                "latitude": None,
                "longitude": None,
                "region": _clean(r["location_region"]),
                "zip": None,
                "timezone": None,
                "ip": None,
            },
            "properties": {"$source": _clean(r["source"])},
            "_subscriptions": {
                "email": {
                    "marketing": {
                        "can_receive_email_marketing": r["email_consent"] == "SUBSCRIBED",
                        "consent": _clean(r["email_consent"]),
                        "consent_timestamp": None,
                    }
                }
            },
        },
    }


def event_node(r: dict) -> dict:
    props = orjson.loads(r["properties"]) if _clean(r["properties"]) else {}
    if _clean(r["value"]) is not None:
        props["$value"] = r["value"]
    if _clean(r["flow_id"]) is not None:
        props["$flow"] = r["flow_id"]
    if _clean(r["campaign_id"]) is not None:
        props["$message"] = r["campaign_id"]
    dt = _stamp(r["datetime"])
    return {
        "type": "event",
        "id": r["id"],
        "attributes": {
            "timestamp": int(pd.Timestamp(r["datetime"]).timestamp()),
            "event_properties": props,
            "datetime": dt,
            "uuid": None,
        },
        "relationships": {
            "profile": {"data": {"type": "profile", "id": r["profile_id"]}},
            "metric": {"data": {"type": "metric", "id": r["metric_id"]}},
        },
        "_metric_name": r["metric_name"],
    }


class Collection:
    def __init__(self, stamp_field: str) -> None:
        self.stamp_field = stamp_field
        self.by_id: dict[str, dict] = {}
        self.keys: list[tuple[str, str]] = []
        self.nodes: list[dict] = []

    def upsert(self, nodes: list[dict]) -> None:
        for n in nodes:
            self.by_id[n["id"]] = n
        items = sorted(
            ((_key_stamp(n["attributes"][self.stamp_field]), i), n) for i, n in self.by_id.items()
        )
        self.keys = [k for k, _ in items]
        self.nodes = [n for _, n in items]


class FakeKlaviyo(FakeServer):
    def __init__(
        self,
        tables: dict[str, pd.DataFrame] | None = None,
        *,
        api_key: str = "pk_test",
        throttle_at: set[int] | None = None,
        retry_after: str = "1",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.throttle_at = set(throttle_at or ())
        self.retry_after = retry_after
        self.profiles = Collection("updated")
        self.events = Collection("datetime")
        self.metrics: dict[str, str] = {}
        self.lists: dict[str, set[str]] = {}
        self.list_requests: list[tuple[str, str, int]] = []  # (method, list id, size)
        if tables:
            self.load(tables)

    def load(self, tables: dict[str, pd.DataFrame]) -> None:
        self.profiles.upsert(
            [profile_node(r) for r in tables["raw_klaviyo.profiles"].to_dict("records")]
        )
        events = tables["raw_klaviyo.events"]
        self.events.upsert([event_node(r) for r in events.to_dict("records")])
        self.metrics.update(dict(zip(events["metric_id"], events["metric_name"], strict=True)))

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            return _errors(401, "not_authenticated", "Missing or invalid private key.")
        if not request.headers.get("revision"):
            return _errors(400, "invalid", "Missing required header: revision")
        if request.number in self.throttle_at:
            return _errors(
                429, "throttled", "Request was throttled.", {"Retry-After": self.retry_after}
            )
        path = request.path
        if path in ("/api/profiles/", "/api/events/") and request.method == "GET":
            return self._collection(request, path.strip("/").split("/")[1])
        m = re.fullmatch(r"/api/lists/([^/]+)/relationships/profiles/", path)
        if m and request.method in ("POST", "DELETE"):
            return self._list(request, m.group(1))
        return _errors(404, "not_found", f"{request.method} {path} not found")

    def _collection(self, request: Request, name: str) -> Response:
        coll = self.profiles if name == "profiles" else self.events
        q = request.query
        size = int(q.get("page[size]", PAGE_MAX[name]))
        if not 1 <= size <= PAGE_MAX[name]:
            return _errors(400, "invalid", f"page[size] must be 1..{PAGE_MAX[name]}")
        lo, hi = 0, len(coll.keys)
        for op, field, value in _FILTER.findall(q.get("filter", "")):
            if field != coll.stamp_field:
                return _errors(400, "invalid", f"filter on {field} is not supported")
            v = _key_stamp(value)
            if op == "greater-or-equal":
                lo = max(lo, bisect.bisect_left(coll.keys, (v,)))
            elif op == "greater-than":
                lo = max(lo, bisect.bisect_left(coll.keys, (v + "\x7f",)))
            elif op == "less-than":
                hi = min(hi, bisect.bisect_left(coll.keys, (v,)))
            else:
                hi = min(hi, bisect.bisect_left(coll.keys, (v + "\x7f",)))
        if q.get("page[cursor]"):
            after = tuple(orjson.loads(base64.urlsafe_b64decode(q["page[cursor]"])))
            lo = max(lo, bisect.bisect_right(coll.keys, after))
        end = min(hi, lo + size)
        with_subs = "subscriptions" in q.get("additional-fields[profile]", "")
        data, metric_ids = [], set()
        for n in coll.nodes[lo:end]:
            attrs = dict(n["attributes"])
            subs = attrs.pop("_subscriptions", None)
            if with_subs and subs is not None:
                attrs["subscriptions"] = subs
            node = {
                "type": n["type"],
                "id": n["id"],
                "attributes": attrs,
                "links": {"self": f"{self.url}/api/{name}/{n['id']}/"},
            }
            if "relationships" in n:
                node["relationships"] = n["relationships"]
                metric_ids.add(n["relationships"]["metric"]["data"]["id"])
            data.append(node)
        base = f"{self.url}/api/{name}/"
        params = {k: v for k, v in q.items() if k != "page[cursor]"}
        links = {"self": f"{base}?{urlencode(params)}", "next": None, "prev": None}
        if end < hi:
            token = base64.urlsafe_b64encode(orjson.dumps(list(coll.keys[end - 1]))).decode()
            links["next"] = f"{base}?{urlencode({**params, 'page[cursor]': token})}"
        body = {"data": data, "links": links}
        if "metric" in q.get("include", ""):
            body["included"] = [
                {"type": "metric", "id": mid, "attributes": {"name": self.metrics.get(mid)}}
                for mid in sorted(metric_ids)
            ]
        return Response.json(200, body, {"content-type": "application/vnd.api+json"})

    def _list(self, request: Request, list_id: str) -> Response:
        try:
            items = orjson.loads(request.body)["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _errors(400, "invalid", "body must be {'data': [{'type': 'profile', 'id': …}]}")
        if len(items) > 1000 or any(i.get("type") != "profile" for i in items):
            return _errors(400, "invalid", "at most 1000 profile identifiers per request")
        members = self.lists.setdefault(list_id, set())
        ids = {i["id"] for i in items}
        if request.method == "POST":
            members |= ids
        else:
            members -= ids
        self.list_requests.append((request.method, list_id, len(items)))
        return Response(204)
