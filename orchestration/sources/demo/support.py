"""Helpdesk requesters and tickets (versioned: open -> pending -> solved -> closed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import DAY, NAT, P_CHURN, P_ONE, P_PROSPECT, P_REG, P_RISK, P_VIP, Clock
from .identities import Identities, email_variant, fmt_phone
from .ids import sequential_ids, shard_base
from .names import JUNK_EMAIL, JUNK_PHONES
from .people import Population

CATEGORIES = ("shipping", "product_issue", "general", "billing", "subscription", "returns")
SUBJECTS = {
    "shipping": (
        "Where is my order?",
        "Package marked delivered but not received",
        "Can I change my shipping address?",
        "Order arrived late",
    ),
    "product_issue": (
        "Breakout after using the serum",
        "Pump on my bottle is broken",
        "Product arrived damaged",
        "Cream smells different than usual",
        "Not seeing results",
    ),
    "general": (
        "Which moisturizer for dry skin?",
        "Is the retinol safe during pregnancy?",
        "Ingredient question",
        "Can I use vitamin C with niacinamide?",
    ),
    "billing": (
        "Charged twice for my subscription",
        "Refund request",
        "Unexpected charge",
        "Discount code did not apply",
    ),
    "subscription": (
        "How do I skip my next shipment?",
        "Please cancel my subscription",
        "Change delivery frequency",
        "Too much product piling up",
        "Pause my subscription",
    ),
    "returns": ("Return request", "Wrong item received"),
}
_NORMAL_W = (0.38, 0.15, 0.25, 0.08, 0.08, 0.06)
_TROUBLE_W = (0.08, 0.27, 0.02, 0.28, 0.35, 0.0)
_RATE = {P_VIP: 0.5, P_REG: 0.4, P_RISK: 0.3, P_CHURN: 0.3, P_ONE: 0.25, P_PROSPECT: 0.03}


def build_helpdesk(
    rng,
    clock: Clock,
    pop: Population,
    ident: Identities,
    info: pd.DataFrame,
    sub_info: pd.DataFrame,
):
    n = pop.n
    code = pop.persona
    fs = ident.first_seen
    o = info[info["counted"] & (info["person"] >= 0)]
    h = o[o["t"] < clock.t0 + DAY]
    last = np.full(n, NAT)
    np.maximum.at(last, h["person"].to_numpy(), h["t"].to_numpy())
    last_any = np.full(n, NAT)
    np.maximum.at(last_any, o["person"].to_numpy(), o["t"].to_numpy())
    cancel = np.full(n, NAT)
    cancel[sub_info["person"].to_numpy()] = sub_info["cancel_t"].to_numpy()
    # ---- background tickets over each person's active window
    rate = np.array([_RATE.get(int(c), 0.0) for c in range(7)])[code]
    end = np.full(n, clock.horizon)
    end = np.where(code == P_ONE, np.minimum(last_any + 60 * DAY, clock.horizon), end)
    end = np.where((code == P_CHURN) & (cancel != NAT), cancel, end)
    span = np.maximum(end - fs, 0)
    k = rng.poisson(rate * span / (365 * DAY))
    p1 = np.repeat(np.arange(n), k)
    t1 = fs[p1] + (rng.random(len(p1)) * span[p1]).astype(np.int64)
    trouble1 = np.zeros(len(p1), bool)
    # ---- trouble tickets: at risk (2-5 in the last 120 days, starting before orders stop)
    risk = np.flatnonzero(code == P_RISK)
    kr = rng.integers(2, 6, len(risk))
    pr = np.repeat(risk, kr)
    lo = np.maximum(last[pr] - 40 * DAY, clock.t0 - 118 * DAY)
    tr = lo + (rng.random(len(pr)) * (clock.t0 - 2 * DAY - lo)).astype(np.int64)
    # churned: 1-3 in the 3 months before cancelling
    ch = np.flatnonzero((code == P_CHURN) & (cancel != NAT))
    kc = rng.integers(1, 4, len(ch))
    pc = np.repeat(ch, kc)
    tc = cancel[pc] - rng.integers(3 * DAY, 90 * DAY, len(pc))
    # at risk, future: keep complaining a little
    kf = rng.poisson(0.6, len(risk))
    pf = np.repeat(risk, kf)
    tf = clock.t0 + DAY + rng.integers(0, 364 * DAY, len(pf))
    person = np.concatenate([p1, pr, pc, pf])
    t = np.concatenate([t1, tr, tc, tf])
    trouble = np.concatenate([trouble1, np.ones(len(pr) + len(pc) + len(pf), bool)])
    keep = (t >= fs[person]) & (t < clock.horizon)
    person, t, trouble = person[keep], t[keep], trouble[keep]
    m = len(t)
    is_sub = np.isin(code[person], [P_VIP, P_REG, P_RISK, P_CHURN])
    w_n = np.array(_NORMAL_W)
    cat_n = rng.choice(6, size=m, p=w_n / w_n.sum())
    cat_n = np.where(~is_sub & (cat_n == 4), 2, cat_n)
    cat_t = rng.choice(6, size=m, p=np.array(_TROUBLE_W) / sum(_TROUBLE_W))
    cat = np.where(trouble, cat_t, cat_n)
    category = np.asarray(CATEGORIES, dtype=object)[cat]
    subj = np.array(
        [
            SUBJECTS[c][int(u * len(SUBJECTS[c]))]
            for c, u in zip(category.tolist(), rng.random(m).tolist(), strict=True)
        ],
        dtype=object,
    )
    channel = rng.choice(
        ["email", "chat", "contact_form", "phone", "social"],
        size=m,
        p=[0.45, 0.25, 0.15, 0.1, 0.05],
    ).astype(object)
    pri = np.where(
        trouble,
        rng.choice(4, size=m, p=[0.05, 0.5, 0.35, 0.1]),
        rng.choice(4, size=m, p=[0.2, 0.62, 0.15, 0.03]),
    )
    priority = np.array(["low", "normal", "high", "urgent"], dtype=object)[pri]
    score = (
        np.where(
            trouble,
            rng.choice(5, size=m, p=[0.3, 0.3, 0.22, 0.12, 0.06]),
            rng.choice(5, size=m, p=[0.03, 0.05, 0.1, 0.3, 0.52]),
        )
        + 1
    )
    rated = rng.random(m) < 0.55
    # ---- requesters: one per person with tickets
    first_t = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_t, person, t)
    rq_person = np.flatnonzero(first_t < np.iinfo(np.int64).max)
    r = len(rq_person)
    rq_created = first_t[rq_person]
    rq_id = sequential_ids(rq_created, shard_base(402_345_000, pop.shard), rng, 60)
    main = ident.main_of[rq_person]
    has_ext = (main >= 0) & (rng.random(r) < 0.6)
    ext = np.where(has_ext, ident.sc_id[np.maximum(main, 0)].astype(str), None).astype(object)
    rq_email = email_variant(pop.email[rq_person], rng.choice([0, 1, 2], size=r, p=[0.7, 0.2, 0.1]))
    u = rng.random(r)
    rq_email[has_ext & (u < 0.015)] = JUNK_EMAIL
    rq_email[has_ext & (u >= 0.015) & (u < 0.06)] = None
    ph = np.where(rng.random(r) < 0.3, pop.phone[rq_person], "")
    rq_phone = fmt_phone(ph, rng.choice([2, 3, 4], size=r))
    junk = rng.random(r) < 0.03
    rq_phone[junk] = np.asarray(JUNK_PHONES, dtype=object)[rng.integers(0, 4, junk.sum())]
    requesters = pd.DataFrame(
        {
            "id": rq_id,
            "external_id": ext,
            "created_at": rq_created,
            "updated_at": rq_created,
            "email": rq_email,
            "phone": rq_phone,
            "first_name": pop.first_name[rq_person],
            "last_name": pop.last_name[rq_person],
        }
    )
    requesters["_t"] = rq_created
    rq_of = np.full(n, -1)
    rq_of[rq_person] = np.arange(r)
    # ---- ticket versions
    tid = sequential_ids(t, shard_base(31_234_000, pop.shard), rng, 3)
    solve = t + rng.integers(3 * 3600, np.where(trouble, 9 * DAY, 4 * DAY))
    base = pd.DataFrame(
        {
            "id": tid,
            "requester_id": rq_id[rq_of[person]],
            "channel": channel,
            "subject": subj,
            "category": category,
            "status": "open",
            "priority": priority,
            "satisfaction_score": pd.array(np.full(m, None), dtype="Int64"),
            "created_at": t,
            "updated_at": t,
            "closed_at": NAT,
            "email": rq_email[rq_of[person]],
        }
    )
    base["_t"] = t
    pend = base[rng.random(m) < 0.4].copy()
    pend["status"] = "pending"
    pend["updated_at"] = pend["_t"] = pend["created_at"] + rng.integers(3600, 20 * 3600, len(pend))
    solved = base.copy()
    solved["status"] = "solved"
    solved["updated_at"] = solved["_t"] = solved["closed_at"] = solve
    solved["satisfaction_score"] = pd.array(np.where(rated, score, None), dtype="Int64")
    closed = solved.copy()
    closed["status"] = "closed"
    closed["updated_at"] = closed["_t"] = solve + 4 * DAY
    tickets = pd.concat([base, pend, solved, closed], ignore_index=True)
    truth_first = pd.DataFrame({"person": rq_person, "id": rq_id, "first": rq_created})
    return requesters, tickets, truth_first
