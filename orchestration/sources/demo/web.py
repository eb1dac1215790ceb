"""GA4 BigQuery-export events: browsing sessions thinned by each person's engagement curve plus a
checkout session for every web order. Kept numeric until ``finalize_ga4`` (after the cut)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from . import text
from .activity import Activity
from .catalog import Catalog
from .commerce import K_ADDON, K_SUB_FIRST, K_WEB
from .config import DAY, FUTURE_DAYS, HISTORY_DAYS, Clock, season_weights, seasonal_days
from .config import web_seconds_of_day as _sod
from .identities import TRAFFIC, Identities

EVENTS = (
    "session_start",
    "page_view",
    "login",
    "page_view",
    "view_item",
    "add_to_cart",
    "begin_checkout",
    "purchase",
)
EV_SS, EV_PV, EV_LOGIN, EV_PV2, EV_VI, EV_ATC, EV_BC, EV_PUR = range(8)
PAGES = (
    "/",
    "/collections/{c}",
    "/products/{h}",
    "/cart",
    "/checkouts/cn/{o}",
    "/checkouts/cn/{o}/thank_you",
    "/account/login",
    "/blogs/skin-school/{c}-guide",
)
HOST = "https://glowlab.example"


def _browse_sessions(rng, clock: Clock, ident: Identities, act: Activity):
    dev_p = ident.dv_person
    n_dev = np.bincount(dev_p, minlength=len(act.web))[dev_p]
    seq = np.zeros(len(dev_p), dtype=np.int64)
    seq[1:] = np.where(dev_p[1:] == dev_p[:-1], 1, 0)
    seq = pd.Series(seq).groupby(dev_p).cumsum().to_numpy()
    share = np.where(n_dev == 1, 1.0, np.where(seq == 0, 0.6, 0.4 / np.maximum(n_dev - 1, 1)))
    w = season_weights(clock)
    w = w / w.mean()
    cw = np.concatenate([[0.0], np.cumsum(w)])
    start_day = (ident.dv_start - clock.t0) // DAY
    si = np.clip(start_day + HISTORY_DAYS - 1, 0, len(w))
    mass = cw[-1] - cw[si]
    n_draw = rng.poisson(act.web[dev_p] * share * mass)
    dev = np.repeat(np.arange(len(dev_p)), n_draw)
    day = seasonal_days(rng, clock, start_day[dev] - 1, np.full(len(dev), FUTURE_DAYS))
    sec = clock.t0 + day * DAY + _sod(rng, len(dev))
    keep = (sec >= ident.dv_start[dev]) & (rng.random(len(dev)) < act.factor(dev_p[dev], sec))
    return dev[keep], sec[keep]


def build_ga4(
    rng, clock: Clock, cat: Catalog, ident: Identities, act: Activity, info: pd.DataFrame
) -> pd.DataFrame:
    b_dev, b_sec = _browse_sessions(rng, clock, ident, act)
    # ---- checkout sessions for web orders
    o = info[
        info["counted"] & (info["person"] >= 0) & info["kind"].isin([K_WEB, K_ADDON, K_SUB_FIRST])
    ]
    dev_first = np.searchsorted(ident.dv_person, np.arange(len(act.web)))
    dev_cnt = np.bincount(ident.dv_person, minlength=len(act.web))
    op = o["person"].to_numpy()
    ot = o["t"].to_numpy()
    j = (rng.random(len(op)) * np.maximum(dev_cnt[op], 1)).astype(np.int64)
    pd_dev = dev_first[op] + j
    pd_dev = np.where(ident.dv_start[pd_dev] <= ot, pd_dev, dev_first[op])
    p_sec = ot - rng.integers(240, 1500, len(op))
    dev = np.concatenate([b_dev, pd_dev])
    start = np.concatenate([b_sec, p_sec])
    buy = np.concatenate([np.zeros(len(b_dev), bool), np.ones(len(op), bool)])
    oidx = np.concatenate([np.full(len(b_dev), -1), np.arange(len(op))])
    order = np.lexsort((start, dev))
    dev, start, buy, oidx = dev[order], start[order], buy[order], oidx[order]
    s = len(dev)
    first = np.ones(s, dtype=bool)
    first[1:] = dev[1:] != dev[:-1]
    # ---- events per session
    pv = 1 + np.minimum(rng.geometric(0.5, s) - 1, 7)
    vi = np.where(
        buy, np.clip(np.asarray(o["n_items"])[np.maximum(oidx, 0)], 1, 2), rng.binomial(pv, 0.45)
    )
    atc = buy | ((vi > 0) & (rng.random(s) < 0.12))
    bc = buy | (atc & (rng.random(s) < 0.35))
    login = first & ident.dv_login[dev]
    counts = np.stack(
        [np.ones(s, np.int64), np.ones(s, np.int64), login, pv - 1, vi, atc, bc, buy], axis=1
    ).astype(np.int64)
    tot = counts.sum(axis=1)
    cum = np.cumsum(counts, axis=1)
    sess = np.repeat(np.arange(s), tot)
    off = np.concatenate([[0], np.cumsum(tot)[:-1]])
    pos = np.arange(len(sess)) - off[sess]
    code = (pos[:, None] >= cum[sess]).sum(axis=1).astype(np.int8)
    gap = rng.integers(2_000_000, 90_000_000, len(sess))
    gap[pos == 0] = 0
    gap[code == EV_PV] = rng.integers(1_000, 900_000, (code == EV_PV).sum())
    cs = np.cumsum(gap)
    offset = cs - cs[off[sess]]
    ts = start[sess] * 1_000_000 + rng.integers(0, 999, s)[sess] + offset
    # ---- pages and products
    sprod = np.where(
        buy, np.asarray(o["first_prod"])[np.maximum(oidx, 0)], rng.integers(0, cat.n, s)
    )
    prod = np.where(pos == 2, sprod[sess], rng.integers(0, cat.n, len(sess)))
    land = rng.choice([0, 1, 2, 7], size=s, p=[0.4, 0.2, 0.35, 0.05])
    browse = rng.choice([0, 1, 2, 7], size=len(sess), p=[0.15, 0.3, 0.5, 0.05])
    page = np.select(
        [
            code <= EV_PV,
            code == EV_LOGIN,
            code == EV_PV2,
            code == EV_VI,
            code == EV_ATC,
            code == EV_BC,
            code == EV_PUR,
        ],
        [land[sess], 6, browse, 2, 3, 4, 5],
    )
    prod = np.where(code == EV_ATC, sprod[sess], prod)
    first_vi = (code == EV_VI) & (pos == cum[sess, EV_PV2])
    prod = np.where(first_vi, sprod[sess], prod)
    # ---- sources: first session = device first touch; later ones mixed
    w = np.array([t[3] for t in TRAFFIC])
    w[4] *= 2.5
    ssrc = np.where(
        first | (rng.random(s) < 0.3),
        ident.dv_traffic[dev],
        rng.choice(len(TRAFFIC), size=s, p=w / w.sum()),
    )
    # ---- user_id after the device logs in (login happens in its first session)
    ev_dev = dev[sess]
    login_ts = np.full(len(ident.dv_person), np.iinfo(np.int64).max)
    lm = code == EV_LOGIN
    np.minimum.at(login_ts, ev_dev[lm], ts[lm])
    main = ident.main_of[ident.dv_person[ev_dev]]
    acct = np.where((ts >= login_ts[ev_dev]) & (main >= 0), main, -1).astype(np.int32)
    is_pur = code == EV_PUR
    orow = np.where(is_pur, o.index.to_numpy()[np.maximum(oidx[sess], 0)], -1).astype(np.int32)
    df = pd.DataFrame(
        {
            "ts": ts,
            "ev": code,
            "dev": ev_dev.astype(np.int32),
            "sess": start[sess],
            "src": ssrc[sess].astype(np.int8),
            "page": page.astype(np.int8),
            "prod": prod.astype(np.int16),
            "acct": acct,  # index of the logged-in Shopify customer, -1 before login
            "orow": orow,  # purchase: row of the order in the order info
            "abandon": (code == EV_ATC) & ~buy[sess],
        }
    )
    df = df.drop_duplicates(["dev", "ts", "ev"], keep="first")
    return df


def finalize_ga4(
    df: pd.DataFrame, clock: Clock, cat: Catalog, ident: Identities, info: pd.DataFrame
) -> pd.DataFrame:
    """Numeric GA4 rows -> contract columns (strings built only for rows that survived the cut),
    already in record-id order (stream_id, user_pseudo_id, event_timestamp, event_name).

    Text columns are Arrow-backed (see ``text``): built from lookup tables by Arrow kernels."""
    dev0 = df["dev"].to_numpy()
    stream_rank = np.unique(ident.dv_stream, return_inverse=True)[1].ravel()
    pseudo_rank = np.argsort(np.argsort(ident.dv_pseudo.astype(str), kind="stable"))
    name_rank = np.argsort(np.argsort(np.asarray(EVENTS, dtype=str), kind="stable"))
    order = np.lexsort(
        (name_rank[df["ev"].to_numpy()], df["ts"].to_numpy(), pseudo_rank[dev0], stream_rank[dev0])
    )
    df = df.iloc[order]
    dev = df["dev"].to_numpy()
    days = (df["ts"].to_numpy() // 1_000_000 - clock.t0) // DAY + HISTORY_DAYS - 1
    date_str = [d.strftime("%Y%m%d") for d in clock.dates()]
    src = text.strings([t[0] for t in TRAFFIC])
    med = text.strings([t[1] for t in TRAFFIC])
    camp = text.strings([t[2] for t in TRAFFIC])
    page = df["page"].to_numpy()
    prod = df["prod"].to_numpy().astype(np.int64)
    sess = df["sess"].to_numpy()
    s_idx = df["src"].to_numpy()
    params = text.concat(
        '[{"key":"ga_session_id","value":{"int_value":',
        text.decimal(sess),
        '}},{"key":"page_location","value":{"string_value":"',
        _page_locations(page, prod, sess, cat),
        '"}},{"key":"source","value":{"string_value":"',
        text.pick(src, s_idx),
        '"}},{"key":"medium","value":{"string_value":"',
        text.pick(med, s_idx),
        '"}}]',
    )
    tr = ident.dv_traffic[dev]
    acct = df["acct"].to_numpy()
    uid = np.where(acct >= 0, ident.sc_id[np.maximum(acct, 0)], -1)
    orow = df["orow"].to_numpy()
    txn = np.where(orow >= 0, info["order_id"].to_numpy()[np.maximum(orow, 0)], -1)
    rev = np.where(orow >= 0, info["total"].to_numpy()[np.maximum(orow, 0)], np.nan)
    n = len(df)
    columns = {
        "event_date": text.pick(date_str, np.clip(days, 0, len(date_str) - 1)),
        "event_timestamp": df["ts"].to_numpy(),
        "event_name": text.pick(EVENTS, df["ev"].to_numpy()),
        "event_params": params,
        "user_pseudo_id": text.pick(ident.dv_pseudo, dev),
        "user_id": text.decimal(uid, uid > 0),
        "stream_id": text.pick(ident.dv_stream, dev),
        "platform": text.pick(ident.dv_platform, dev),
        "device_category": text.pick(ident.dv_category, dev),
        "geo_country": text.pick(["United States"], np.zeros(n, dtype=np.int64)),
        "traffic_source_source": text.pick(src, tr),
        "traffic_source_medium": text.pick(med, tr),
        "traffic_source_name": text.pick(camp, tr),
        "ecommerce_transaction_id": text.decimal(txn, txn > 0),
        "ecommerce_purchase_revenue": np.round(rev, 2),
    }
    return pd.DataFrame(
        {k: text.column(v) if isinstance(v, pa.Array) else v for k, v in columns.items()}
    )


def _page_locations(page: np.ndarray, prod: np.ndarray, sess: np.ndarray, cat: Catalog):
    """``page_location`` per event: a lookup table of every product, collection and blog URL
    plus the fixed pages; checkout URLs (session id in hex) are formatted for those rows only."""
    cats = [c.replace("_", "-") + "s" for c in cat.category]
    n_prod = len(cats)
    urls = [f"{HOST}/", f"{HOST}/cart", f"{HOST}/account/login"]
    urls += [f"{HOST}/products/{h}" for h in cat.handle]
    urls += [f"{HOST}/collections/{c}" for c in cats]
    urls += [f"{HOST}/blogs/skin-school/{c}-guide" for c in cats]
    index = np.select(
        [page == 0, page == 3, page == 6, page == 2, page == 1, page == 7],
        [0, 1, 2, 3 + prod, 3 + n_prod + prod, 3 + 2 * n_prod + prod],
        default=-1,
    )
    checkout = np.flatnonzero(index < 0)  # pages 4 and 5: the checkout and its thank-you page
    base = text.pick(urls, index, index >= 0)
    texts = [
        f"{HOST}/checkouts/cn/{se:x}" + ("/thank_you" if pg == 5 else "")
        for pg, se in zip(page[checkout].tolist(), sess[checkout].tolist(), strict=True)
    ]
    return text.fill_rows(base, checkout, texts)
