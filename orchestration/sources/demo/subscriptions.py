"""Recharge-like subscription app tables: customers, subscriptions (one version per event),
events (created, skipped, paused, resumed, cancelled, charge_processed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import Catalog
from .commerce import CANCEL_COMMENTS, SubPlan
from .config import DAY, NAT, P_REG, P_VIP
from .identities import Identities, email_variant
from .ids import sequential_ids, shard_base
from .people import Population

_STATUS = {
    "created": "active",
    "charge_processed": "active",
    "skipped": "active",
    "resumed": "active",
    "paused": "paused",
    "cancelled": "cancelled",
}


def _interval(cadence: np.ndarray, persona: np.ndarray):
    unit = np.full(len(cadence), "day", dtype=object)
    freq = cadence.copy()
    month = (persona == P_VIP) | ((cadence >= 29) & (cadence <= 31))
    unit[month], freq[month] = "month", 1
    two = (persona == P_REG) & (cadence > 58)
    unit[two], freq[two] = "month", 2
    eight = (persona == P_REG) & (cadence <= 58)
    unit[eight], freq[eight] = "week", 8
    return unit, freq


def build_subscriptions(
    rng, pop: Population, cat: Catalog, sp: SubPlan, ident: Identities, order_info: pd.DataFrame
):
    n = len(sp.person)
    # charge_processed events from the subscription orders
    oi = order_info[order_info["sub"] & order_info["counted"]]
    sub_of_person = np.full(pop.n, -1)
    sub_of_person[sp.person] = np.arange(n)
    ev_sub = np.concatenate([sp.ev_sub, sub_of_person[oi["person"].to_numpy()]])
    ev_t = np.concatenate([sp.ev_t, oi["t"].to_numpy() + 1])
    ev_verb = np.concatenate([sp.ev_verb, np.full(len(oi), "charge_processed", object)])
    ev_reason = np.concatenate([sp.ev_reason, np.full(len(oi), None, object)])
    order = np.lexsort((ev_verb != "created", ev_t, ev_sub))  # 'created' first on ties
    ev_sub, ev_t, ev_verb, ev_reason = ev_sub[order], ev_t[order], ev_verb[order], ev_reason[order]
    created = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(created, ev_sub, ev_t)
    # ---- app customers
    cust_id = sequential_ids(created, shard_base(81_234_000, pop.shard), rng, 40)
    main = ident.main_of[sp.person]
    ext = ident.sc_id[main]
    cust_email = email_variant(pop.email[sp.person], np.where(rng.random(n) < 0.15, 1, 0))
    cancel_t = np.full(n, NAT)
    cm = ev_verb == "cancelled"
    cancel_t[ev_sub[cm]] = ev_t[cm]
    cust = pd.DataFrame(
        {
            "id": cust_id,
            "external_customer_id": ext,
            "status": "ACTIVE",
            "created_at": created,
            "updated_at": created,
            "email": cust_email,
            "first_name": pop.first_name[sp.person],
            "last_name": pop.last_name[sp.person],
        }
    )
    cust["_t"] = created
    inactive = cust[cancel_t != NAT].copy()
    inactive["status"] = "INACTIVE"
    inactive["updated_at"] = inactive["_t"] = cancel_t[cancel_t != NAT] + 5
    customers = pd.concat([cust, inactive], ignore_index=True)
    # ---- subscription versions, one per event
    sub_id = sequential_ids(created, shard_base(312_345_000, pop.shard), rng, 25)
    unit, freq = _interval(sp.cadence, pop.persona[sp.person])
    status = np.array([_STATUS[v] for v in ev_verb.tolist()], dtype=object)
    cad_s = sp.cadence[ev_sub] * DAY
    nxt = np.where(
        status == "active", ev_t + cad_s + np.where(ev_verb == "skipped", 3 * DAY, 0), NAT
    )
    ev = pd.DataFrame({"sub": ev_sub, "t": ev_t, "verb": ev_verb})
    paused_t = pd.Series(np.where(ev_verb == "paused", ev_t, np.nan))
    paused_t = paused_t.where(~pd.Series(ev_verb == "resumed"), -1.0)
    paused_t = paused_t.groupby(ev["sub"]).ffill().fillna(-1.0).to_numpy()
    paused_at = np.where((status == "paused") & (paused_t > 0), paused_t, NAT).astype(np.int64)
    is_c = ev_verb == "cancelled"
    reason = np.where(is_c, ev_reason, None)
    comments = np.array(
        [CANCEL_COMMENTS.get(r) if r else None for r in reason.tolist()], dtype=object
    )
    prod = sp.product[ev_sub]
    subs = pd.DataFrame(
        {
            "id": sub_id[ev_sub],
            "customer_id": cust_id[ev_sub],
            "external_product_id": cat.product_id[prod],
            "sku": cat.sku[prod],
            "product_title": cat.title[prod],
            "quantity": sp.qty[ev_sub],
            "price": cat.sub_price[prod],
            "order_interval_unit": unit[ev_sub],
            "order_interval_frequency": freq[ev_sub],
            "status": status,
            "cancellation_reason": reason,
            "cancellation_reason_comments": comments,
            "next_charge_scheduled_at": nxt,
            "created_at": created[ev_sub],
            "updated_at": ev_t,
            "paused_at": paused_at,
            "cancelled_at": np.where(is_c, ev_t, NAT),
        }
    )
    subs["_t"] = ev_t
    # ---- events
    eid = sequential_ids(ev_t, shard_base(1_402_345_000, pop.shard), rng, 30)
    events = pd.DataFrame(
        {
            "id": eid,
            "subscription_id": sub_id[ev_sub],
            "customer_id": cust_id[ev_sub],
            "verb": ev_verb,
            "reason": ev_reason,
            "created_at": ev_t,
        }
    )
    events["_t"] = ev_t
    info = pd.DataFrame(
        {"person": sp.person, "customer_id": cust_id, "created": created, "cancel_t": cancel_t}
    )
    return customers, subs, events, info
