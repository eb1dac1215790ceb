"""Source identities of each person: Shopify customers (incl. guest checkouts), Klaviyo profiles,
GA4 devices, subscription-app customers. Includes the deliberate identity mess (case variants,
phone formats, junk values) while keeping every person linked by a real identifier chain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import (
    BUYER_PERSONAS,
    DAY,
    FUTURE_DAYS,
    NAT,
    P_ANON,
    P_PROSPECT,
    PERSONAS,
    Clock,
    seasonal_days,
    web_seconds_of_day,
)
from .ids import sequential_ids, shard_base, ulids
from .names import JUNK_EMAIL, JUNK_PHONES
from .people import Population

BUYER_CODES = [PERSONAS.index(p) for p in BUYER_PERSONAS]
WEB_STREAM, APP_STREAM = "3141592653", "2718281828"
TRAFFIC = (  # (source, medium, campaign name, weight)
    ("google", "organic", "(organic)", 0.33),
    ("google", "cpc", "brand_search", 0.15),
    ("facebook", "paid_social", "prospecting_glow", 0.12),
    ("instagram", "social", "(referral)", 0.1),
    ("(direct)", "(none)", "(direct)", 0.15),
    ("klaviyo", "email", "newsletter", 0.08),
    ("tiktok", "paid_social", "ugc_serum", 0.07),
)


def fmt_phone(digits: np.ndarray, style: np.ndarray) -> np.ndarray:
    out = []
    for d, s in zip(digits.tolist(), style.tolist(), strict=True):
        if not d:
            out.append(None)
        elif s == 0:
            out.append(f"+1{d}")
        elif s == 1:
            out.append(f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}")
        elif s == 2:
            out.append(d)
        elif s == 3:
            out.append(f"{d[:3]}-{d[3:6]}-{d[6:]}")
        else:
            out.append(f"({d[:3]}) {d[3:6]}-{d[6:]}")
    return np.array(out, dtype=object)


def email_variant(emails: np.ndarray, style: np.ndarray) -> np.ndarray:
    """0 as is, 1 'Sarah.Lee@Gmail.com', 2 upper case, 3 ' Sarah.Lee@Gmail.com ' (whitespace)."""
    out = []
    for e, s in zip(emails.tolist(), style.tolist(), strict=True):
        if not e or s == 0:
            out.append(e or None)
            continue
        if s == 2:
            out.append(e.upper())
            continue
        local, dom = e.split("@")
        t = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
        t = f"{t}@{dom[:1].upper()}{dom[1:]}"
        out.append(f" {t} " if s == 3 else t)
    return np.array(out, dtype=object)


@dataclass
class Identities:
    # shopify customers
    sc_person: np.ndarray
    sc_id: np.ndarray
    sc_created: np.ndarray
    sc_email: np.ndarray
    sc_phone: np.ndarray
    sc_guest: np.ndarray
    sc_consent: np.ndarray  # subscribed | not_subscribed at creation
    main_of: np.ndarray  # person -> index into sc_* (or -1)
    # klaviyo profiles
    kp_person: np.ndarray
    kp_id: np.ndarray
    kp_created: np.ndarray
    kp_linked: np.ndarray  # when external_id gets set (NAT: never)
    kp_email: np.ndarray
    kp_phone: np.ndarray
    kp_source: np.ndarray
    kp_consent: np.ndarray
    profile_of: np.ndarray  # person -> index into kp_* (or -1)
    # ga4 devices
    dv_person: np.ndarray
    dv_pseudo: np.ndarray
    dv_start: np.ndarray
    dv_category: np.ndarray
    dv_stream: np.ndarray
    dv_platform: np.ndarray
    dv_traffic: np.ndarray  # index into TRAFFIC
    dv_login: np.ndarray  # bool: the device logs in (known persons)
    first_seen: np.ndarray  # person -> first appearance (sec)
    prospect_kind: np.ndarray  # person -> 0 n/a, 1 newsletter only, 2 identified visitor


def build_identities(
    rng, clock: Clock, pop: Population, first_order: np.ndarray, guest_orders: np.ndarray
) -> Identities:
    """``first_order``: person -> first order second (NAT if none). ``guest_orders``: (person,
    time) pairs of orders placed through a guest checkout (one guest account per person)."""
    n = pop.n
    buyer = np.isin(pop.persona, BUYER_CODES)
    prospect = pop.persona == P_PROSPECT
    anon = pop.persona == P_ANON
    # ------------------------------------------------------------ first appearance
    lo = np.where(pop.future, 0, -(729 - 1))
    hi = np.where(pop.future, FUTURE_DAYS, 0)
    d = seasonal_days(rng, clock, lo, hi)
    visit = (clock.t0 + d * DAY + web_seconds_of_day(rng, n)).astype(np.int64)
    first_seen = np.where(buyer, first_order - rng.integers(0, 1800, size=n), visit)
    # people who arrive after as_of never show up on or before it
    first_seen = np.where(pop.future, np.maximum(first_seen, clock.t0 + DAY), first_seen)
    kind = np.zeros(n, dtype=np.int8)
    kind[prospect] = np.where(rng.random(prospect.sum()) < 0.5, 1, 2)

    # ------------------------------------------------------------ shopify customers
    has_main = buyer | (kind == 2)
    m_person = np.flatnonzero(has_main)
    g_person, g_time = guest_orders
    sc_person = np.concatenate([m_person, g_person])
    sc_guest = np.concatenate([np.zeros(len(m_person), bool), np.ones(len(g_person), bool)])
    sc_created = np.concatenate(
        [first_seen[m_person], g_time - rng.integers(5, 120, len(g_person))]
    )
    sc_id = sequential_ids(sc_created, shard_base(6_012_345_000_000, pop.shard), rng, max_gap=9000)
    k = len(sc_person)
    style = np.where(
        sc_guest,
        rng.choice([1, 2, 3], size=k, p=[0.4, 0.2, 0.4]),
        np.where(rng.random(k) < 0.1, 1, 0),
    )
    sc_email = email_variant(pop.email[sc_person], style)
    ph_style = np.where(
        sc_guest, rng.choice([2, 3, 4], size=k), np.where(rng.random(k) < 0.8, 0, 1)
    )
    give_phone = rng.random(k) < np.where(sc_guest, 0.5, 0.65)
    sc_phone = fmt_phone(np.where(give_phone, pop.phone[sc_person], ""), ph_style)
    junk_ph = ~sc_guest & (rng.random(k) < 0.03)
    sc_phone[junk_ph] = np.asarray(JUNK_PHONES, dtype=object)[rng.integers(0, 4, junk_ph.sum())]
    sc_consent = np.where(rng.random(k) < 0.7, "subscribed", "not_subscribed").astype(object)
    main_of = np.full(n, -1)
    main_of[m_person] = np.arange(len(m_person))
    has_guest = np.zeros(n, dtype=bool)
    has_guest[g_person] = True

    # ------------------------------------------------------------ klaviyo profiles
    has_prof = (
        (buyer & (rng.random(n) < 0.88)) | (kind == 1) | ((kind == 2) & (rng.random(n) < 0.5))
    )
    p_person = np.flatnonzero(has_prof)
    kp_n = len(p_person)
    early = buyer[p_person] & (rng.random(kp_n) < 0.2)
    fs = first_seen[p_person]
    floor = np.where(pop.future[p_person], clock.t0 + DAY, clock.start)
    early_t = np.maximum(fs - (rng.integers(1, 120, kp_n) * DAY), floor)
    kp_created = np.where(early, early_t, fs + rng.integers(60, 900, kp_n))
    kp_linked = np.where(has_main[p_person], np.maximum(kp_created, fs + 300), NAT)
    kp_source = np.where(
        early | (kind[p_person] == 1),
        np.where(rng.random(kp_n) < 0.55, "signup_form", "popup"),
        "shopify",
    ).astype(object)
    kp_email = email_variant(pop.email[p_person], np.where(rng.random(kp_n) < 0.2, 1, 0))
    kp_ph = np.where(rng.random(kp_n) < 0.45, pop.phone[p_person], "")
    kp_phone = fmt_phone(kp_ph, np.where(rng.random(kp_n) < 0.5, 1, 0))
    junk = rng.random(kp_n) < 0.02
    kp_phone[junk] = np.asarray(JUNK_PHONES, dtype=object)[rng.integers(0, 4, junk.sum())]
    kp_consent = np.where(
        (kind[p_person] == 1) | (rng.random(kp_n) < 0.8), "SUBSCRIBED", "NEVER_SUBSCRIBED"
    ).astype(object)
    kp_id = ulids(kp_created, rng)
    profile_of = np.full(n, -1)
    profile_of[p_person] = np.arange(kp_n)

    # junk email on a few main Shopify accounts: only people linked by external_id + real email
    cand = np.flatnonzero(buyer & ~has_guest & (profile_of >= 0))
    cand = cand[np.isin(cand, p_person[kp_linked != NAT])]
    n_junk = max(1, int(round(0.004 * buyer.sum()))) if len(cand) else 0
    junk_people = cand[rng.permutation(len(cand))[:n_junk]]
    sc_email[main_of[junk_people]] = JUNK_EMAIL

    # ------------------------------------------------------------ ga4 devices
    n_dev = np.zeros(n, dtype=np.int64)
    n_dev[buyer] = rng.choice([1, 2, 3], size=buyer.sum(), p=[0.5, 0.35, 0.15])
    n_dev[kind == 2] = rng.choice([1, 2], size=(kind == 2).sum(), p=[0.7, 0.3])
    n_dev[anon] = 1
    dv_person = np.repeat(np.arange(n), n_dev)
    seq = np.concatenate([np.arange(x) for x in n_dev]) if len(dv_person) else dv_person
    later = rng.integers(1, 400, len(dv_person)) * DAY + rng.integers(0, DAY, len(dv_person))
    dv_start = np.where(seq == 0, first_seen[dv_person], first_seen[dv_person] + later)
    dv_start = np.minimum(dv_start, clock.horizon - DAY)
    nd = len(dv_person)
    app = (seq > 0) & (rng.random(nd) < 0.15)
    dv_stream = np.where(app, APP_STREAM, WEB_STREAM).astype(object)
    dv_platform = np.where(app, np.where(rng.random(nd) < 0.55, "IOS", "ANDROID"), "WEB")
    dv_category = np.where(
        app, "mobile", rng.choice(["mobile", "desktop", "tablet"], size=nd, p=[0.6, 0.32, 0.08])
    ).astype(object)
    w = np.array([t[3] for t in TRAFFIC])
    dv_traffic = rng.choice(len(TRAFFIC), size=nd, p=w / w.sum())
    first_digits = 1_000_000_000 + rng.choice(8_999_999_999, size=nd, replace=False)
    dv_pseudo = np.array(
        [f"{a}.{b}" for a, b in zip(first_digits.tolist(), dv_start.tolist(), strict=True)],
        dtype=object,
    )
    dv_login = ~anon[dv_person]

    return Identities(
        sc_person,
        sc_id,
        sc_created,
        sc_email,
        sc_phone,
        sc_guest,
        sc_consent,
        main_of,
        p_person,
        kp_id,
        kp_created,
        kp_linked,
        kp_email,
        kp_phone,
        kp_source,
        kp_consent,
        profile_of,
        dv_person,
        dv_pseudo,
        dv_start,
        dv_category,
        dv_stream,
        dv_platform.astype(object),
        dv_traffic,
        dv_login,
        np.minimum(first_seen, np.where(has_prof, _kp_min(n, p_person, kp_created), first_seen)),
        kind,
    )


def _kp_min(n: int, person: np.ndarray, created: np.ndarray) -> np.ndarray:
    out = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(out, person, created)
    return out
