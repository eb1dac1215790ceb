"""Pure-Python tests of the synthetic demo-data generator (no database)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.sources.demo import PERSONA_COUNTS, DemoConfig, generate_demo
from orchestration.sources.demo.catalog import CATALOG_PATH, load_catalog
from orchestration.sources.schemas import BY_NAME

AS_OF = date(2026, 11, 25)
SCALE = 0.1
BUYERS = {
    "vip_subscriber",
    "regular_subscriber",
    "at_risk_subscriber",
    "one_time_buyer",
    "churned_high_value",
}
JUNK_EMAILS = {"", "test@example.com"}
JUNK_PHONES = {"", "0000000000", "5555555555", "1234567890"}


@pytest.fixture(scope="module")
def data():
    return generate_demo(DemoConfig(seed=7, scale=SCALE, as_of=AS_OF))


@pytest.fixture(scope="module")
def person_orders(data):
    """Per person: net LTV (total_price of real orders minus refunds), last order, order count."""
    ids = data.truth["demo_truth.identities"]
    sc = ids[ids["source"] == "shopify"]
    to_person = dict(zip(sc["source_id"].astype("int64"), sc["person_id"], strict=True))
    o = data.tables["raw_shopify.orders"]
    o = o[~o["test"] & o["cancelled_at"].isna()].copy()
    o["person_id"] = o["customer_id"].map(to_person)
    refunds = data.tables["raw_shopify.refunds"].groupby("order_id")["amount"].sum()
    o["net"] = o["total_price"] - o["id"].map(refunds).fillna(0.0)
    p = data.truth["demo_truth.persons"].set_index("person_id")
    p["ltv"] = o.groupby("person_id")["net"].sum()
    p["last"] = o.groupby("person_id")["created_at"].max()
    p["n_orders"] = o.groupby("person_id").size()
    return p


def _days_before_as_of(ts: pd.Series) -> pd.Series:
    return ts.map(lambda t: (AS_OF - t.date()).days)


# ---------------------------------------------------------------- contract and basics
def test_catalog_seed_is_valid():
    cat = load_catalog()
    df = pd.read_csv(CATALOG_PATH)
    assert 25 <= len(df) <= 35
    assert df["product_id"].is_unique and df["variant_id"].is_unique and df["sku"].is_unique
    rep = df[df["is_replenishable"]]
    assert rep["replenish_days"].between(30, 90).all()
    assert {"cleanser", "serum", "moisturizer", "sunscreen", "bundle", "gift_card"} <= set(
        cat.category
    )


def test_frames_have_exact_contract_columns(data):
    assert set(data.tables) == set(BY_NAME)
    for name, df in data.tables.items():
        assert list(df.columns) == BY_NAME[name].input_columns, name
        assert len(df) > 0, name
        table = BY_NAME[name]
        for col in table.required:
            assert df[col].notna().all(), f"{name}.{col} has nulls"
        assert not df.duplicated(list(table.record_id)).any(), f"{name} duplicate record ids"
        key = df[list(table.record_id)]
        assert key.equals(key.sort_values(list(table.record_id)).reset_index(drop=True)), name


def test_persona_counts_are_exact(data):
    persons = data.truth["demo_truth.persons"]
    counts = persons["persona"].value_counts().to_dict()
    for persona, n in PERSONA_COUNTS.items():
        if persona == "anonymous_visitor":
            assert counts.get(persona, 0) <= round(n * SCALE)
        else:
            assert counts[persona] == round(n * SCALE), persona
    assert (persons["is_buyer"] == persons["persona"].isin(BUYERS)).all()


def test_deterministic():
    cfg = DemoConfig(seed=3, scale=0.03, as_of=AS_OF)
    a, b = generate_demo(cfg), generate_demo(cfg)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    for name in a.truth:
        pd.testing.assert_frame_equal(a.truth[name], b.truth[name])
    c = generate_demo(DemoConfig(seed=4, scale=0.03, as_of=AS_OF))
    assert not a.tables["raw_shopify.customers"]["email"].equals(
        c.tables["raw_shopify.customers"]["email"]
    )


# ---------------------------------------------------------------- persona behaviour
def test_ltv_bands(person_orders):
    bands = {
        "vip_subscriber": (1000, 5000),
        "regular_subscriber": (300, 1000),
        "one_time_buyer": (50, 300),
        "churned_high_value": (500, 2000),
        "at_risk_subscriber": (200, 1500),
    }
    for persona, (lo, hi) in bands.items():
        ltv = person_orders.loc[person_orders["persona"] == persona, "ltv"]
        assert ltv.notna().all(), persona
        assert ltv.between(lo, hi).all(), (persona, ltv.min(), ltv.max())


def test_recency_by_persona(person_orders):
    days = _days_before_as_of(person_orders["last"].dropna())
    p = person_orders.loc[days.index, "persona"]
    assert days[p == "vip_subscriber"].max() <= 35
    assert days[p == "regular_subscriber"].max() <= 62
    risk = days[p == "at_risk_subscriber"]
    assert risk.between(60, 120).all()
    assert risk.std() > 10  # spread over the window, not bunched


def test_at_risk_subscriptions_not_cancelled_churned_cancelled(data):
    subs = data.tables["raw_subscriptions.subscriptions"]
    cust = data.tables["raw_subscriptions.customers"]
    ids = data.truth["demo_truth.identities"]
    sub_ids = ids[ids["source"] == "subscriptions"]
    person = dict(zip(sub_ids["source_id"].astype("int64"), sub_ids["person_id"], strict=True))
    personas = data.truth["demo_truth.persons"].set_index("person_id")["persona"]
    s = subs.assign(persona=subs["customer_id"].map(person).map(personas))
    assert set(cust["id"]) == set(subs["customer_id"])
    risk = s[s["persona"] == "at_risk_subscriber"]
    assert risk["status"].isin(["active", "paused"]).all()
    churned = s[s["persona"] == "churned_high_value"]
    assert (churned["status"] == "cancelled").all()
    ago = _days_before_as_of(churned["cancelled_at"])
    assert ago.between(30, 180).all()
    assert (
        churned["cancellation_reason"]
        .isin(
            [
                "too_expensive",
                "not_seeing_results",
                "too_much_product",
                "switched_brand",
                "shipping_issues",
                "other",
            ]
        )
        .all()
    )


def test_one_time_buyers_repeat_share(person_orders):
    one = person_orders[person_orders["persona"] == "one_time_buyer"]
    repeat = one["n_orders"] >= 2
    assert 0.27 <= repeat.mean() <= 0.33
    assert one.loc[repeat, "n_orders"].between(2, 4).all()


def test_at_risk_engagement_declines(data):
    ids = data.truth["demo_truth.identities"]
    personas = data.truth["demo_truth.persons"].set_index("person_id")["persona"]
    kp = ids[ids["source"] == "klaviyo"].set_index("source_id")["person_id"]
    ev = data.tables["raw_klaviyo.events"]
    ev = ev[ev["metric_name"].isin(["Opened Email", "Clicked Email"])]
    ev = ev.assign(persona=ev["profile_id"].map(kp).map(personas))
    end = pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=1)
    age = (end - ev["datetime"]).dt.days
    risk = ev[ev["persona"] == "at_risk_subscriber"]
    recent, prior = (age[risk.index] < 90).sum(), age[risk.index].between(90, 179).sum()
    assert recent <= 0.5 * prior
    vip = ev[ev["persona"] == "vip_subscriber"]
    assert (age[vip.index] < 90).sum() >= 0.7 * age[vip.index].between(90, 179).sum()


def test_at_risk_have_recent_tickets(data):
    ids = data.truth["demo_truth.identities"]
    personas = data.truth["demo_truth.persons"].set_index("person_id")["persona"]
    rq = ids[ids["source"] == "helpdesk"]
    rq_person = dict(zip(rq["source_id"].astype("int64"), rq["person_id"], strict=True))
    t = data.tables["raw_helpdesk.tickets"]
    t = t.assign(person=t["requester_id"].map(rq_person))
    t = t[_days_before_as_of(t["created_at"]) <= 120]
    risk = personas[personas == "at_risk_subscriber"].index
    n = t[t["person"].isin(risk)].groupby("person").size().reindex(risk, fill_value=0)
    assert n.between(2, 5 + 2).all() and n.mean() >= 2.5


def test_orders_shape(data):
    o = data.tables["raw_shopify.orders"]
    assert (o["id"] > 5_000_000_000_000).all()
    assert (o["customer_id"].dropna() > 6_000_000_000_000).all()
    by_time = o.sort_values(["created_at", "id"])
    nums = by_time["name"].str.lstrip("#").astype(int).to_numpy()
    assert nums[0] == 1001 and (np.diff(nums) > 0).all()
    assert (o.loc[o["test"], "email"] == "test@example.com").all() and o["test"].any()
    assert {"subscription_contract", "web"} <= set(o["source_name"])
    assert {"paid", "partially_refunded", "refunded"} <= set(o["financial_status"])
    lines = data.tables["raw_shopify.order_lines"]
    assert set(lines["order_id"]) == set(o["id"])
    assert set(lines["product_id"]) <= set(load_catalog().product_id)
    share = data.tables["raw_shopify.refunds"]["order_id"].nunique() / len(o)
    assert 0.02 <= share <= 0.06
    calc = (
        o["subtotal_price"] - o["total_discounts"] + o["total_shipping_price"] + o["total_tax"]
    ).round(2)
    assert np.allclose(calc, o["total_price"])


def test_json_columns(data):
    ga = data.tables["raw_ga4.events"]
    sample = ga.sample(min(len(ga), 2000), random_state=0)
    for s in sample["event_params"]:
        params = json.loads(s)
        keys = {p["key"]: p["value"] for p in params}
        assert isinstance(keys["ga_session_id"]["int_value"], int)
        assert keys["page_location"]["string_value"].startswith("https://glowlab.example/")
        assert "source" in keys and "medium" in keys
    assert ga["event_date"].str.fullmatch(r"\d{8}").all()
    assert set(ga["event_name"]) == {
        "session_start",
        "page_view",
        "view_item",
        "add_to_cart",
        "begin_checkout",
        "purchase",
        "login",
    }
    assert ga["user_pseudo_id"].str.fullmatch(r"\d{10}\.\d{10}").all()
    kl = data.tables["raw_klaviyo.events"]
    for s in kl["properties"].sample(min(len(kl), 2000), random_state=0):
        assert isinstance(json.loads(s), dict)
    assert kl["id"].str.fullmatch(r"[0-9A-Z]{26}").all()
    assert data.tables["raw_klaviyo.profiles"]["id"].str.fullmatch(r"[0-9A-Z]{26}").all()
    viewed = kl[kl["metric_name"] == "Viewed Product"]["properties"].head(50).map(json.loads)
    assert all({"product_name", "product_id", "category"} <= set(p) for p in viewed)


# ---------------------------------------------------------------- identity resolution
def _norm_email(e):
    e = (e or "").strip().lower()
    return None if e in JUNK_EMAILS else e


def _norm_phone(p):
    d = re.sub(r"\D", "", p or "")
    d = d[1:] if len(d) == 11 and d.startswith("1") else d
    return None if d in JUNK_PHONES or len(d) != 10 else d


def test_identities_resolvable_with_junk_blocked(data):
    assert_resolvable(data)
    t = data.tables
    # the mess exists: guest accounts with email variants, junk values, phone formats
    emails = t["raw_shopify.customers"]["email"].dropna()
    assert (emails != emails.str.strip().str.lower()).any()
    assert (emails == "test@example.com").any()
    phones = pd.concat([t["raw_shopify.customers"]["phone"], t["raw_klaviyo.profiles"]["phone"]])
    assert phones.isin(["0000000000", "", "+15555555555", "123-456-7890"]).any()
    assert phones.str.contains(r"\(", na=False).any() and phones.str.fullmatch(r"\+1\d{10}").any()


def assert_resolvable(data) -> None:
    """Linking every source record by normalized email, phone and Shopify id (junk blocked)
    finds the true persons: pairwise precision and recall >= 0.995."""
    t = data.tables
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        parent[find(a)] = find(b)

    def link(node, email=None, phone=None, shop=None):
        find(node)
        if (e := _norm_email(email)) is not None:
            union(node, ("email", e))
        if (p := _norm_phone(phone)) is not None:
            union(node, ("phone", p))
        if shop is not None and not pd.isna(shop):
            union(node, ("shopify", "customer_id", str(int(shop))))

    for r in t["raw_shopify.customers"].itertuples():
        link(("shopify", "customer_id", str(r.id)), r.email, r.phone)
    for r in t["raw_klaviyo.profiles"].itertuples():
        link(("klaviyo", "profile_id", r.id), r.email, r.phone, r.external_id)
    for r in t["raw_helpdesk.requesters"].itertuples():
        link(("helpdesk", "requester_id", str(r.id)), r.email, r.phone, r.external_id)
    for r in t["raw_subscriptions.customers"].itertuples():
        link(("subscriptions", "customer_id", str(r.id)), r.email, None, r.external_customer_id)
    ga = t["raw_ga4.events"][["user_pseudo_id", "user_id"]].drop_duplicates()
    for r in ga.itertuples():
        link(("ga4", "user_pseudo_id", r.user_pseudo_id), shop=r.user_id)
    truth = data.truth["demo_truth.identities"]
    nodes = list(zip(truth["source"], truth["identity_type"], truth["source_id"], strict=True))
    assert len(set(nodes)) == len(nodes)
    cluster = pd.Series([find(n) for n in nodes]).astype(str).factorize()[0]
    person = truth["person_id"].to_numpy()

    def pairs(labels):
        return sum(c * (c - 1) // 2 for c in pd.Series(labels).value_counts())

    both = pd.Series(list(zip(cluster, person, strict=True))).value_counts()
    tp = sum(c * (c - 1) // 2 for c in both)
    precision, recall = tp / pairs(cluster), tp / pairs(person)
    assert precision >= 0.995 and recall >= 0.995, (precision, recall)


# ---------------------------------------------------------------- next-day mode
def _activity_col(name):
    t = BY_NAME[name]
    return {
        "raw_ga4.events": "event_timestamp",
        "raw_klaviyo.events": "datetime",
        "raw_shopify.order_lines": "updated_at",
    }.get(name, t.updated_at)


def _as_ts(s: pd.Series) -> pd.Series:
    if s.dtype.kind in "iu":  # GA4 microseconds
        return pd.to_datetime(s, unit="us", utc=True)
    return s


def test_next_day_window_and_history_unchanged():
    scale = 0.04
    base = generate_demo(DemoConfig(seed=11, scale=scale, as_of=AS_OF))
    later = generate_demo(
        DemoConfig(seed=11, scale=scale, as_of=AS_OF, through=AS_OF + timedelta(days=30))
    )
    nxt = generate_demo(
        DemoConfig(
            seed=11, scale=scale, as_of=AS_OF, since=AS_OF, through=AS_OF + timedelta(days=1)
        )
    )
    day_start = pd.Timestamp(AS_OF + timedelta(days=1), tz="UTC")
    day_end = day_start + pd.Timedelta(days=1)
    rows = 0
    for name in BY_NAME:
        col = _activity_col(name)
        t = _as_ts(nxt.tables[name][col])
        assert ((t >= day_start) & (t < day_end)).all(), name
        rows += len(t)
        # every record updated up to as_of reads the same whatever `through` is
        key = list(BY_NAME[name].record_id)
        b = base.tables[name]
        late = later.tables[name]
        late_old = late[_as_ts(late[col]) < day_start].reset_index(drop=True)
        if BY_NAME[name].updated_at in ("created_at", "event_timestamp", "datetime"):
            pd.testing.assert_frame_equal(late_old, b, obj=name)
        else:
            merged = late_old.merge(b, on=key, suffixes=("", "_b"))
            assert len(merged) == len(late_old), name
            cols = [c for c in b.columns if c not in key]
            pd.testing.assert_frame_equal(
                late_old.set_index(key)[cols],
                b.set_index(key).loc[late_old.set_index(key).index, cols],
                obj=name,
            )
    assert rows > 0
    # new days bring new events and some new people; nothing new in truth predates the window
    assert len(nxt.tables["raw_ga4.events"]) > 0 and len(nxt.tables["raw_klaviyo.events"]) > 0
    ids_all = set(later.truth["demo_truth.identities"]["source_id"])
    assert set(base.truth["demo_truth.identities"]["source_id"]) <= ids_all
    assert not set(nxt.truth["demo_truth.identities"]["source_id"]) & set(
        base.truth["demo_truth.identities"]["source_id"]
    )


def test_config_validation():
    with pytest.raises(ValueError):
        DemoConfig(scale=0)
    with pytest.raises(ValueError):
        DemoConfig(as_of=AS_OF, through=AS_OF + timedelta(days=400))
    with pytest.raises(ValueError):
        DemoConfig(as_of=AS_OF, since=AS_OF)


def test_a_cached_simulation_cuts_the_same_days_and_a_torn_cache_is_rebuilt(tmp_path):
    since = date(2026, 11, 20)
    day = DemoConfig(seed=3, scale=0.05, as_of=since, since=since, through=since + timedelta(1))
    fresh = generate_demo(day)
    first = generate_demo(day, tmp_path)  # simulates and keeps the simulation
    (cached,) = tmp_path.glob("simulation-*.pickle")
    again = generate_demo(day, tmp_path)  # loads it
    for data in (first, again):
        assert data.tables.keys() == fresh.tables.keys()
        for name, frame in fresh.tables.items():
            pd.testing.assert_frame_equal(data.tables[name], frame, obj=name)
    cached.write_bytes(cached.read_bytes()[:1000])  # a write cut short
    torn = generate_demo(day, tmp_path)
    pd.testing.assert_frame_equal(
        torn.tables["raw_shopify.orders"], fresh.tables["raw_shopify.orders"]
    )
    assert len(list(tmp_path.glob("simulation-*"))) == 1
