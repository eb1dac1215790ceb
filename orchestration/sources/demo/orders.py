"""Shopify orders, order lines and refunds from order plans (versioned: created -> fulfilled ->
refunded / cancelled)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import Catalog
from .commerce import K_ADDON, K_SUB, K_SUB_FIRST, K_WEB, OrderPlan, discount_pct
from .config import DAY, LTV_BANDS, PERSONAS, Clock
from .identities import Identities
from .ids import shard_base
from .names import CITIES, JUNK_EMAIL
from .people import Population

ORDER_NAME_STRIDE = 1_000_000  # order names of shard k start at #k001001

REFUND_NOTES = (
    "Damaged in transit",
    "Customer not satisfied",
    "Skin reaction",
    "Wrong item shipped",
    "Subscription charged by mistake",
)
REFERRERS = (
    "https://www.google.com/",
    "https://www.instagram.com/",
    "https://www.facebook.com/",
    "https://www.tiktok.com/",
    None,
    None,
)


def combine(*plans: OrderPlan) -> OrderPlan:
    return OrderPlan(
        *(
            np.concatenate([getattr(p, f) for p in plans])
            for f in ("person", "t", "kind", "prod", "qty", "sub_price", "code")
        )
    )


def pick_guest_orders(rng, plan: OrderPlan, n_buyers: int):
    """~8% of buyers place a later one-off order through a guest checkout (own customer record)."""
    order = np.lexsort((plan.t, plan.person))
    person, kind = plan.person[order], plan.kind[order]
    first = np.ones(len(person), dtype=bool)
    first[1:] = person[1:] != person[:-1]
    eligible = order[~first & np.isin(kind, [K_ADDON, K_WEB])]
    if not len(eligible):
        return np.zeros(len(plan.t), bool), (np.zeros(0, np.int64), np.zeros(0, np.int64))
    shuffled = eligible[rng.permutation(len(eligible))]
    _, pos = np.unique(plan.person[shuffled], return_index=True)
    one_each = shuffled[np.sort(pos)]  # one candidate order per eligible person
    k = min(len(one_each), int(round(0.08 * n_buyers)))
    chosen = one_each[rng.permutation(len(one_each))[:k]]
    mask = np.zeros(len(plan.t), dtype=bool)
    mask[chosen] = True
    return mask, (plan.person[chosen], plan.t[chosen])


def _ltv_ok_refunds(plan_person, totals, counted, t, ref_order, ref_amt, ref_t, pop, hist_end):
    """Drop refunds that would push a buyer's net LTV at as_of below the persona's band."""
    n = pop.n
    hist = counted & (t < hist_end)
    gross = np.bincount(plan_person[hist], weights=totals[hist], minlength=n)
    in_hist = ref_t < hist_end
    ref_p = plan_person[ref_order]
    refunded = np.bincount(ref_p[in_hist], weights=ref_amt[in_hist], minlength=n)
    lo = np.array([LTV_BANDS.get(p, (-1e18, 0))[0] for p in PERSONAS])[pop.persona]
    bad_person = (gross - refunded) < lo * 1.01
    return ~(bad_person[ref_p] & in_hist)


def build_orders(
    rng,
    clock: Clock,
    pop: Population,
    cat: Catalog,
    plan: OrderPlan,
    guest_mask: np.ndarray,
    ident: Identities,
    tax: np.ndarray,
):
    n0 = len(plan.t)
    # cancelled twins (customer re-placed the order) and staff test orders
    web_idx = np.flatnonzero(np.isin(plan.kind, [K_ADDON, K_WEB]))
    twin_src = web_idx[rng.random(len(web_idx)) < 0.006]
    n_test = max(2, int(round(10 * pop.n / 12000)))
    test_t = rng.integers(clock.start, clock.horizon - DAY, n_test)
    test_prod = np.full((n_test, 3), -1)
    test_prod[:, 0] = rng.integers(0, cat.n, n_test)
    person = np.concatenate([plan.person, plan.person[twin_src], np.full(n_test, -1)])
    t = np.concatenate([plan.t, plan.t[twin_src] - rng.integers(300, 3600, len(twin_src)), test_t])
    kind = np.concatenate([plan.kind, plan.kind[twin_src], np.full(n_test, K_WEB, np.int8)])
    prod = np.concatenate([plan.prod, plan.prod[twin_src], test_prod])
    qty = np.concatenate([plan.qty, plan.qty[twin_src], (test_prod >= 0).astype(np.int64)])
    subp = np.concatenate([plan.sub_price, plan.sub_price[twin_src], np.zeros(n_test, bool)])
    code = np.concatenate([plan.code, plan.code[twin_src], np.full(n_test, "", object)])
    guest = np.concatenate([guest_mask, guest_mask[twin_src], np.zeros(n_test, bool)])
    cancelled = np.zeros(len(t), dtype=bool)
    cancelled[n0 : n0 + len(twin_src)] = True
    test = np.zeros(len(t), dtype=bool)
    test[n0 + len(twin_src) :] = True
    m = len(t)
    # ---- money, from lines
    pct = discount_pct(code)
    valid = prod >= 0
    pidx = np.where(valid, prod, 0)
    unit = np.where(subp[:, None], cat.sub_price[pidx], cat.price[pidx])
    line_total = np.where(valid, unit * qty, 0.0)
    line_disc = np.round(line_total * pct[:, None], 2)
    subtotal = np.round(line_total.sum(axis=1), 2)
    disc = np.round(line_disc.sum(axis=1), 2)
    ship = np.where(subp | (subtotal - disc >= 50), 0.0, 5.95)
    taxr = np.where(person >= 0, tax[np.maximum(person, 0)], 0.0)
    taxv = np.round((subtotal - disc) * taxr, 2)
    total = np.round(subtotal - disc + ship + taxv, 2)
    # ---- ids and customer
    oid = _seq(t, shard_base(5_101_234_000_000, pop.shard), rng, 40_000)
    rank = np.empty(m, dtype=np.int64)
    rank[np.lexsort((oid, t))] = np.arange(m)
    first = 1001 + pop.shard * ORDER_NAME_STRIDE  # shard k: #k001001, #k001002, ...
    if m > ORDER_NAME_STRIDE:
        raise ValueError(f"{m} orders in one demo shard: past ORDER_NAME_STRIDE")
    name = np.array([f"#{first + r}" for r in rank.tolist()], dtype=object)
    main = ident.main_of[np.maximum(person, 0)]
    sc_of_guest = {
        int(p): i for i, (p, g) in enumerate(zip(ident.sc_person, ident.sc_guest, strict=True)) if g
    }
    acct = main.copy()
    for i in np.flatnonzero(guest).tolist():
        acct[i] = sc_of_guest.get(int(person[i]), acct[i])
    acct[person < 0] = -1
    cust_id = np.where(acct >= 0, ident.sc_id[np.maximum(acct, 0)], -1)
    email = np.where(acct >= 0, ident.sc_email[np.maximum(acct, 0)], JUNK_EMAIL)
    phone = np.where(acct >= 0, ident.sc_phone[np.maximum(acct, 0)], None)
    # ---- refunds (3-5% of real orders), guarded by the LTV bands
    counted = ~cancelled & ~test
    cand = np.flatnonzero(counted & (rng.random(m) < 0.045))
    full = rng.random(len(cand)) < 0.35
    ref_amt = np.where(
        full, total[cand], np.round(total[cand] * rng.uniform(0.2, 0.6, len(cand)), 2)
    )
    ref_t = t[cand] + rng.integers(3 * DAY, 30 * DAY, len(cand))
    keep = _ltv_ok_refunds(person, total, counted, t, cand, ref_amt, ref_t, pop, clock.t0 + DAY)
    keep &= ref_t < clock.horizon
    cand, full, ref_amt, ref_t = cand[keep], full[keep], ref_amt[keep], ref_t[keep]
    ref_id = _seq(ref_t, shard_base(912_345_000_000, pop.shard), rng, 5000)
    note = np.asarray(REFUND_NOTES, dtype=object)[rng.integers(0, len(REFUND_NOTES), len(cand))]
    refunds = pd.DataFrame(
        {
            "id": ref_id,
            "order_id": oid[cand],
            "amount": ref_amt,
            "note": note,
            "restock": full & (note == "Wrong item shipped"),
            "created_at": ref_t,
            "processed_at": ref_t + rng.integers(1, 90, len(cand)),
        }
    )
    refunds["_t"] = refunds["processed_at"]
    # ---- order versions
    city = np.where(person >= 0, pop.city[np.maximum(person, 0)], 0)
    is_sub = np.isin(kind, [K_SUB, K_SUB_FIRST]) & ~test
    src = np.where(kind == K_SUB, "subscription_contract", "web")
    handle = cat.handle[pidx[:, 0]]
    has_ref = rng.random(m) < 0.55
    ref_site = np.asarray(REFERRERS, dtype=object)[rng.integers(0, len(REFERRERS), m)]
    landing = np.array(
        [
            f"/products/{h}" if r else "/"
            for h, r in zip(handle.tolist(), has_ref.tolist(), strict=True)
        ],
        dtype=object,
    )
    tags = np.where(
        test,
        "test",
        np.where(
            kind == K_SUB_FIRST,
            "Subscription First Order",
            np.where(kind == K_SUB, "Subscription, Subscription Recurring Order", ""),
        ),
    )
    base = pd.DataFrame(
        {
            "id": oid,
            "name": name,
            "customer_id": pd.array(np.where(cust_id > 0, cust_id, None), dtype="Int64"),
            "financial_status": "paid",
            "fulfillment_status": None,
            "currency": "USD",
            "subtotal_price": subtotal,
            "total_discounts": disc,
            "total_shipping_price": ship,
            "total_tax": taxv,
            "total_price": total,
            "discount_codes": code,
            "source_name": src,
            "landing_site": np.where(kind == K_SUB, None, landing),
            "referring_site": np.where(kind == K_SUB, None, ref_site),
            "tags": tags.astype(object),
            "test": test,
            "shipping_city": np.array([c[0] for c in CITIES], dtype=object)[city],
            "shipping_province_code": np.array([c[1] for c in CITIES], dtype=object)[city],
            "shipping_country_code": "US",
            "created_at": t,
            "processed_at": t + 2,
            "cancelled_at": np.iinfo(np.int64).min,
            "updated_at": t,
            "email": email,
            "phone": phone,
        }
    )
    base["_t"] = t
    v_fulfil = base[~cancelled].copy()
    fulfil_t = t[~cancelled] + rng.integers(DAY // 3, 3 * DAY, (~cancelled).sum())
    v_fulfil["fulfillment_status"] = "fulfilled"
    v_fulfil["updated_at"] = v_fulfil["_t"] = fulfil_t
    v_cancel = base[cancelled].copy()
    c_t = t[cancelled] + rng.integers(600, 7200, cancelled.sum())
    v_cancel["financial_status"] = "voided"
    v_cancel["cancelled_at"] = v_cancel["updated_at"] = v_cancel["_t"] = c_t
    # refunded version: the order as fulfilled, updated when the refund is processed
    v_ref = v_fulfil.set_index("id").loc[oid[cand]].reset_index()
    v_ref["financial_status"] = np.where(full, "refunded", "partially_refunded")
    v_ref["updated_at"] = v_ref["_t"] = np.maximum(
        refunds["processed_at"].to_numpy(), v_ref["_t"].to_numpy() + 1
    )
    orders = pd.concat([base, v_fulfil, v_cancel, v_ref], ignore_index=True)
    # ---- lines (updated_at filled from the selected order version at cut time)
    oi, slot = np.nonzero(valid)
    line_base = shard_base(13_901_234_000_000, pop.shard)
    line_id = _seq(t[oi] * 4 + slot, line_base, rng, 7, already_sorted_key=True)
    lines = pd.DataFrame(
        {
            "id": line_id,
            "order_id": oid[oi],
            "product_id": cat.product_id[prod[oi, slot]],
            "variant_id": cat.variant_id[prod[oi, slot]],
            "sku": cat.sku[prod[oi, slot]],
            "title": cat.title[prod[oi, slot]],
            "quantity": qty[oi, slot],
            "price": np.round(unit[oi, slot], 2),
            "total_discount": line_disc[oi, slot],
        }
    )
    info = pd.DataFrame(
        {
            "order_id": oid,
            "person": person,
            "t": t,
            "total": total,
            "counted": counted,
            "kind": kind,
            "sub": is_sub,
            "test": test,
            "cancelled": cancelled,
            "customer_id": cust_id,
            "account": acct,
            "first_prod": prod[:, 0],
            "n_items": valid.sum(axis=1),
        }
    )
    return orders, lines, refunds, info


def _seq(key, base, rng, max_gap, already_sorted_key=False):
    from .ids import sequential_ids

    return sequential_ids(np.asarray(key, dtype=np.int64), base, rng, max_gap)
