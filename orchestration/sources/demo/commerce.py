"""Purchase behaviour: subscription timelines (charges, skips, pauses, cancels) and one-off orders.

Produces *plans*: per order the person, time, kind and basket (up to 3 product slots), and per
subscription its events. ``orders.py`` turns plans into Shopify/Recharge rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import Catalog
from .config import (
    DAY,
    FUTURE_DAYS,
    HISTORY_DAYS,
    P_CHURN,
    P_ONE,
    P_REG,
    P_RISK,
    P_VIP,
    Clock,
    seasonal_days,
    web_seconds_of_day,
)
from .people import Population

K_SUB_FIRST, K_SUB, K_ADDON, K_WEB = 0, 1, 2, 3
CANCEL_REASONS = (
    "too_expensive",
    "not_seeing_results",
    "too_much_product",
    "switched_brand",
    "shipping_issues",
    "other",
)
CANCEL_COMMENTS = {
    "too_expensive": "Money is tight right now",
    "not_seeing_results": "Didn't notice a difference after a few months",
    "too_much_product": "I have too many bottles piling up",
    "switched_brand": "Trying a different brand",
    "shipping_issues": "Deliveries kept arriving late",
    "other": None,
}
FIRST = -(HISTORY_DAYS - 3)  # earliest day offset we start timelines at

# persona -> (cadence lo, hi), (ltv target lo, hi), (n desired lo, hi), base skip prob, addons
_SUB_PARAMS = {
    P_VIP: ((29, 31), (1150, 4600), (10, 24), 0.06, (2, 6)),
    P_REG: ((56, 62), (360, 920), (4, 11), 0.08, (0, 2)),
    P_RISK: ((30, 45), (260, 1350), (4, 14), 0.08, (0, 2)),
    P_CHURN: ((30, 45), (620, 1850), (6, 16), 0.08, (0, 3)),
}


@dataclass
class OrderPlan:
    person: np.ndarray
    t: np.ndarray  # epoch seconds
    kind: np.ndarray
    prod: np.ndarray  # (n, 3) product index or -1
    qty: np.ndarray  # (n, 3)
    sub_price: np.ndarray  # bool: lines priced at the subscription price
    code: np.ndarray  # discount code or ''


@dataclass
class SubPlan:
    person: np.ndarray  # one subscription per subscriber person
    product: np.ndarray
    qty: np.ndarray
    cadence: np.ndarray  # days
    ev_sub: np.ndarray  # events: index into the subscription arrays
    ev_t: np.ndarray
    ev_verb: np.ndarray
    ev_reason: np.ndarray


def _sec(clock: Clock, day: float, rng_u: float, web: bool = False) -> int:
    base = clock.t0 + int(np.floor(day)) * DAY
    if web:
        return base + 17 * 3600 + int(rng_u * 6 * 3600)
    return base + 8 * 3600 + int(rng_u * 4 * 3600)  # charges run in the morning (UTC)


def order_totals(cat: Catalog, prod, qty, sub_price, pct, tax):
    """Vectorised (subtotal, discount, shipping, tax, total) for baskets."""
    valid = prod >= 0
    p = np.where(valid, prod, 0)
    unit = np.where(sub_price[:, None], cat.sub_price[p], cat.price[p])
    subtotal = np.round((np.where(valid, unit * qty, 0.0)).sum(axis=1), 2)
    disc = np.round(subtotal * pct, 2)
    ship = np.where(sub_price | (subtotal - disc >= 50), 0.0, 5.95)
    taxv = np.round((subtotal - disc) * tax, 2)
    return subtotal, disc, ship, taxv, np.round(subtotal - disc + ship + taxv, 2)


def _random_baskets(rng, cat: Catalog, n: int, k_probs=(0.5, 0.35, 0.15)):
    w = np.ones(cat.n)
    w[cat.category == "bundle"] = 0.5
    w[cat.category == "tool"] = 0.6
    w[cat.category == "gift_card"] = 0.15
    k = rng.choice(3, size=n, p=list(k_probs)) + 1
    prod = rng.choice(cat.n, size=(n, 3), p=w / w.sum())
    prod[np.arange(3)[None, :] >= k[:, None]] = -1
    qty = np.where(prod >= 0, 1 + (rng.random((n, 3)) < 0.1), 0)
    return prod, qty


def plan_subscriptions(rng, clock: Clock, pop: Population, cat: Catalog, tax: np.ndarray):
    idx = np.flatnonzero(np.isin(pop.persona, list(_SUB_PARAMS)) & ~pop.future)
    n = len(idx)
    code = pop.persona[idx]
    par = {
        k: np.array([_SUB_PARAMS[c][j] for c in code], dtype=object)
        for k, j in (("cad", 0), ("ltv", 1), ("nd", 2), ("skip", 3), ("add", 4))
    }
    u = rng.random((n, 12))
    cad = np.array([lo + (hi - lo) * x for (lo, hi), x in zip(par["cad"], u[:, 0], strict=True)])
    target = np.array([lo + (hi - lo) * x for (lo, hi), x in zip(par["ltv"], u[:, 1], strict=True)])
    n_des = np.array([lo + (hi - lo) * x for (lo, hi), x in zip(par["nd"], u[:, 2], strict=True)])
    skip_p = par["skip"].astype(float)
    # anchor: the last history order (day offset) and, for churned, the cancellation day
    last = np.empty(n)
    cancel = np.full(n, np.nan)
    m = code == P_VIP
    last[m] = -(0.5 + u[m, 3] * 28.5)
    m = code == P_REG
    last[m] = -(0.5 + u[m, 3] * (np.minimum(55, cad[m] - 3) - 0.5))
    m = code == P_RISK
    last[m] = -(60.5 + u[m, 3] * 59.0)
    m = code == P_CHURN
    cancel[m] = -(30.5 + u[m, 4] * 149.0)
    last[m] = cancel[m] - (2 + u[m, 3] * (cad[m] - 4))
    # add-on one-off orders during the subscription (history part), priced now
    n_add = np.array([rng.integers(lo, hi + 1) for lo, hi in par["add"]])
    a_person = np.repeat(np.arange(n), n_add)
    a_prod, a_qty = _random_baskets(rng, cat, len(a_person), (0.7, 0.3, 0.0))
    a_pct = np.where((code[a_person] == P_VIP) & (rng.random(len(a_person)) < 0.25), 0.15, 0.0)
    a_tot = order_totals(
        cat, a_prod, a_qty, np.zeros(len(a_person), bool), a_pct, tax[idx[a_person]]
    )[4]
    add_total = np.bincount(a_person, weights=a_tot, minlength=n)
    # choose product x quantity so that n orders hit the LTV target
    avail = last - FIRST
    n_cap = np.maximum(2, 1 + np.floor(avail / (cad * 1.2))).astype(int)
    n_des = np.minimum(n_des, n_cap)
    s_target = np.maximum(target - add_total, target * 0.35)
    subs = cat.idx(cat.subscribable)
    opt_p = np.repeat(subs, 2)
    opt_q = np.tile([1, 2], len(subs))
    unit = cat.sub_price[opt_p][None, :] * opt_q[None, :] * (1 + tax[idx][:, None])
    score = np.abs(np.log(unit / (s_target / n_des)[:, None])) + rng.random((n, len(opt_p))) * 0.2
    best = np.argmin(score, axis=1)
    s_prod, s_qty = opt_p[best], opt_q[best]
    s_unit = unit[np.arange(n), best]
    n_ord = np.clip(np.round(s_target / s_unit), 2, n_cap).astype(int)
    a_keep = np.ones(len(a_person), dtype=bool)  # may drop add-ons to stay inside the band
    over = (n_ord * s_unit + add_total) > np.array([hi for lo, hi in par["ltv"]]) * 1.03
    a_keep &= ~over[a_person]

    o_person, o_t, o_kind = [], [], []
    e_sub, e_t, e_verb, e_reason = [], [], [], []
    sched_u = rng.random((n, 64, 4))
    fut_u = rng.random((n, 8))
    reasons = rng.choice(len(CANCEL_REASONS), size=n, p=[0.3, 0.22, 0.18, 0.15, 0.08, 0.07])
    horizon = FUTURE_DAYS + 0.99
    for i in range(n):
        c, cd, su, fu = float(cad[i]), int(code[i]), sched_u[i].tolist(), fut_u[i].tolist()

        def ev(t, verb, reason=None, i=i):
            e_sub.append(i)
            e_t.append(t)
            e_verb.append(verb)
            e_reason.append(reason)

        def order(t, kind=K_SUB, i=i):
            o_person.append(i)
            o_t.append(t)
            o_kind.append(kind)

        # ---- history, backwards from the anchor order
        t, hist, k = float(last[i]), [], 0
        hist.append(t)
        while len(hist) < n_ord[i] and k < 60:
            r = su[k]
            p_skip = 0.5 if (cd in (P_RISK, P_CHURN) and k < 3) else skip_p[i]
            gap = c + (r[1] - 0.5) * 4
            if r[0] < p_skip:
                ev(t - c - 1 - r[2] * 3, "skipped", "skip_next_charge")
                gap += c
            if t - gap < FIRST:
                break
            t -= gap
            hist.append(t)
            k += 1
        for j, tj in enumerate(hist):
            order(tj, K_SUB_FIRST if j == len(hist) - 1 else K_SUB)
        ev(hist[-1], "created")
        # ---- after the anchor
        nxt = float(last[i]) + c + (su[60][0] - 0.5) * 4
        if cd in (P_VIP, P_REG):
            nxt = max(nxt, 0.2 + su[60][1] * 2)
            p_cancel = 0.004 if cd == P_VIP else 0.012
            j = 0
            while nxt < horizon:
                r = su[(61 + j) % 64]
                if r[2] < p_cancel and nxt > 0:
                    ev(nxt - 2, "cancelled", CANCEL_REASONS[reasons[i]])
                    break
                if r[0] < skip_p[i]:
                    ev(nxt - 1 - r[1] * 3, "skipped", "skip_next_charge")
                else:
                    order(nxt)
                nxt += c + (r[3] - 0.5) * 4
                j += 1
        elif cd == P_CHURN:
            while nxt < cancel[i] - 1:
                ev(nxt - 1 - su[61][1] * 2, "skipped", "skip_next_charge")
                nxt += c
            ev(float(cancel[i]), "cancelled", CANCEL_REASONS[reasons[i]])
        else:  # at risk: skip streak or pause, then a future outcome
            paused_mode = fu[0] < 0.4
            n_skip_first = 1 + int(fu[1] < 0.5)
            paused, j = False, 0
            while nxt < -0.5:
                if paused_mode and j >= n_skip_first:
                    ev(nxt - 1 - fu[2] * 3, "paused", "customer_request")
                    paused = True
                    break
                ev(nxt - 1 - fu[2] * 3, "skipped", "skip_next_charge")
                nxt += c
                j += 1
            outcome = fu[3]
            if outcome < 0.35:  # cancels in the future
                t_end = 3 + fu[4] * 147
                while not paused and nxt < t_end - 1:
                    ev(nxt - 1, "skipped", "skip_next_charge")
                    nxt += c
                ev(t_end, "cancelled", CANCEL_REASONS[reasons[i]])
            elif outcome < 0.5:  # comes back
                t_back = 7 + fu[4] * 113
                while not paused and nxt < t_back - 1:
                    ev(nxt - 1, "skipped", "skip_next_charge")
                    nxt += c
                if paused:
                    ev(t_back - 0.5, "resumed", None)
                t = t_back
                while t < horizon:
                    order(t)
                    t += c + (fu[5] - 0.5) * 4
            else:  # stays quiet
                while not paused and nxt < horizon:
                    ev(nxt - 1, "skipped", "skip_next_charge")
                    nxt += c

    o_person = np.asarray(o_person, dtype=np.int64)
    o_day = np.asarray(o_t)
    o_kind = np.asarray(o_kind, dtype=np.int8)
    ou = rng.random(len(o_person))
    o_sec = np.array(
        [
            _sec(clock, d, x, web=k == K_SUB_FIRST)
            for d, x, k in zip(o_day.tolist(), ou.tolist(), o_kind.tolist(), strict=True)
        ],
        dtype=np.int64,
    )
    prod = np.full((len(o_person), 3), -1)
    qty = np.zeros((len(o_person), 3), dtype=np.int64)
    prod[:, 0] = s_prod[o_person]
    qty[:, 0] = s_qty[o_person]
    # add-ons: uniformly between the first order and the history end of the subscription
    first_day = np.full(n, np.inf)
    np.minimum.at(first_day, o_person, o_day)
    a_person, a_prod, a_qty, a_pct = (x[a_keep] for x in (a_person, a_prod, a_qty, a_pct))
    end = np.where(code == P_VIP, 0, np.where(code == P_REG, 0, last))[a_person]
    lo = first_day[a_person]
    a_day = seasonal_days(rng, clock, lo, np.maximum(end - 1, lo + 1))
    a_day = np.minimum(a_day, np.floor(end - 1)) if len(a_day) else a_day
    a_sec = clock.t0 + a_day * DAY + web_seconds_of_day(rng, len(a_day))
    # future add-ons for subscribers who keep going
    fut_n = rng.poisson(np.where(code == P_VIP, 3.0, np.where(code == P_REG, 1.0, 0.0)))
    f_person = np.repeat(np.arange(n), fut_n)
    f_prod, f_qty = _random_baskets(rng, cat, len(f_person), (0.7, 0.3, 0.0))
    f_day = seasonal_days(rng, clock, np.zeros(len(f_person)), np.full(len(f_person), FUTURE_DAYS))
    f_sec = clock.t0 + f_day * DAY + web_seconds_of_day(rng, len(f_day))

    plan = OrderPlan(
        person=idx[np.concatenate([o_person, a_person, f_person])],
        t=np.concatenate([o_sec, a_sec, f_sec]).astype(np.int64),
        kind=np.concatenate([o_kind, np.full(len(a_person) + len(f_person), K_ADDON, np.int8)]),
        prod=np.concatenate([prod, a_prod, f_prod]),
        qty=np.concatenate([qty, a_qty, f_qty]),
        sub_price=np.concatenate(
            [np.ones(len(o_person), bool), np.zeros(len(a_person) + len(f_person), bool)]
        ),
        code=np.concatenate(
            [
                np.full(len(o_person), "", object),
                np.where(a_pct > 0, "VIPGLOW15", "").astype(object),
                np.full(len(f_person), "", object),
            ]
        ),
    )
    e_day = np.asarray(e_t)
    e_sec = (clock.t0 + e_day * DAY).astype(np.int64)
    subs_plan = SubPlan(
        person=idx,
        product=s_prod,
        qty=s_qty,
        cadence=np.round(cad).astype(int),
        ev_sub=np.asarray(e_sub, dtype=np.int64),
        ev_t=e_sec,
        ev_verb=np.asarray(e_verb, dtype=object),
        ev_reason=np.asarray(e_reason, dtype=object),
    )
    return plan, subs_plan


def plan_one_time(rng, clock: Clock, pop: Population, cat: Catalog, tax: np.ndarray) -> OrderPlan:
    """One-time buyers: most place one order, ~30% repeat-buy a replenishable product."""
    idx = pop.where(P_ONE)
    fut = pop.future[idx]
    n = len(idx)
    repeat = np.where(fut, rng.random(n) < 0.1, rng.random(n) < 0.3)
    # exact 30% repeaters among the history buyers
    hist = np.flatnonzero(~fut)
    repeat[hist] = False
    repeat[hist[rng.permutation(len(hist))[: int(round(0.3 * len(hist)))]]] = True
    rep_ok = cat.idx(cat.replenishable & (cat.category != "bundle"))
    r_prod = rep_ok[rng.integers(0, len(rep_ok), size=n)]
    k = np.where(repeat, rng.choice([2, 3, 4], size=n, p=[0.5, 0.3, 0.2]), 1)
    gaps = cat.replenish_days[r_prod][:, None] * (0.85 + 0.5 * rng.random((n, 4)))
    gaps[np.arange(4)[None, :] >= (k - 1)[:, None]] = 0
    span = gaps.sum(axis=1)
    lo = np.where(fut, 0, FIRST)
    hi = np.where(fut, FUTURE_DAYS - span, -1 - span)
    hi = np.where(repeat & ~fut, hi, np.where(fut, hi, 0))
    d0 = seasonal_days(rng, clock, lo, np.maximum(hi, lo + 1))
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(gaps, axis=1)], axis=1)[:, :4]
    days = np.floor(d0[:, None] + cum)
    o_mask = np.arange(4)[None, :] < k[:, None]
    # history repeaters may continue after as_of
    cont = repeat & ~fut & (rng.random(n) < 0.35)
    nxt = days[np.arange(n), k - 1] + cat.replenish_days[r_prod] * (0.9 + 0.6 * rng.random(n))
    cont &= (nxt >= 1) & (nxt < FUTURE_DAYS)
    person = np.concatenate([np.repeat(np.arange(n), k), np.flatnonzero(cont)])
    seq = np.concatenate(
        [np.concatenate([np.arange(x) for x in k]) if n else np.zeros(0, int), k[cont]]
    ).astype(int)
    day = np.concatenate([days[o_mask], np.floor(nxt[cont])])
    m = len(person)
    sec = (clock.t0 + day * DAY + web_seconds_of_day(rng, m)).astype(np.int64)
    bfcm_flags = _bfcm(clock, sec)
    gap_before = np.zeros(m)
    gap_before[seq > 0] = cat.replenish_days[r_prod[person[seq > 0]]]
    u = rng.random(m)
    code = np.where(
        bfcm_flags & (u < 0.6),
        "BFCM25",
        np.where(
            (seq == 0) & (u < 0.2),
            "WELCOME10",
            np.where(
                (seq > 0) & (gap_before > 80) & (u < 0.3),
                "WINBACK20",
                np.where(u > 0.97, "SPRING15", ""),
            ),
        ),
    ).astype(object)
    pct = np.array([_PCT[c] for c in code.tolist()])
    prod = np.full((m, 3), -1)
    qty = np.zeros((m, 3), dtype=np.int64)
    rep_o = repeat[person]
    t = tax[idx[person]]
    no_sub = np.zeros(m, dtype=bool)
    todo = np.ones(m, dtype=bool)
    for attempt in range(30):
        sel = np.flatnonzero(todo)
        if not len(sel):
            break
        bp, bq = _random_baskets(rng, cat, len(sel))
        r = rep_o[sel]
        bp[r, 0] = r_prod[person[sel[r]]]
        bq[r, 0] = 1
        extra = rng.random(len(sel)) < (0.25 if attempt < 15 else 0.0)
        bp[r & ~extra, 1] = -1
        bp[r, 2] = -1
        bq[bp < 0] = 0
        prod[sel], qty[sel] = bp, bq
        tot = order_totals(cat, prod, qty, no_sub, pct, t)[4]
        person_tot = np.bincount(person, weights=tot, minlength=n)
        bad = np.where(
            rep_o, (person_tot[person] < 60) | (person_tot[person] > 290), (tot < 55) | (tot > 290)
        )
        todo = bad
    kind = np.full(m, K_WEB, np.int8)
    return OrderPlan(idx[person], sec, kind, prod, qty, no_sub, code)


_PCT = {
    "": 0.0,
    "WELCOME10": 0.10,
    "BFCM25": 0.25,
    "WINBACK20": 0.20,
    "SPRING15": 0.15,
    "VIPGLOW15": 0.15,
}


def discount_pct(codes: np.ndarray) -> np.ndarray:
    return np.array([_PCT.get(c, 0.0) for c in codes.tolist()])


def _bfcm(clock: Clock, sec: np.ndarray) -> np.ndarray:
    from .config import is_bfcm

    return is_bfcm(clock, sec)
