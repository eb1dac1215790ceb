# ruff: noqa: UP031  (%-formatting is the fast path for millions of JSON strings)
"""Klaviyo events: campaigns to the engaged subscribed audience, flows (welcome, abandoned cart,
post-purchase, winback), opens/clicks thinned by the engagement curve, Placed Order, Viewed
Product, Unsubscribed. Kept numeric until ``finalize_klaviyo`` (after the cut)."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import text
from .activity import Activity
from .catalog import Catalog
from .commerce import K_ADDON, K_SUB_FIRST, K_WEB
from .config import DAY, Clock, _thanksgiving
from .identities import Identities
from .ids import encode_ulid_arrow, short_ids, ulid_parts, ulids
from .web import EV_VI, HOST

METRICS = (
    "Received Email",
    "Opened Email",
    "Clicked Email",
    "Unsubscribed",
    "Placed Order",
    "Viewed Product",
)
M_RECV, M_OPEN, M_CLICK, M_UNSUB, M_ORDER, M_VIEW = range(6)
FLOWS = (  # name, [(delay seconds, subject)]
    (
        "Welcome Series",
        [
            (300, "Welcome to GlowLab - here is 10% off"),
            (2 * DAY, "Meet our best-selling serum"),
            (5 * DAY, "Your skin routine in 3 steps"),
        ],
    ),
    ("Abandoned Cart", [(4 * 3600, "You left something in your cart")]),
    ("Post-Purchase", [(7 * DAY, "How is your new routine going?")]),
    (
        "Winback",
        [
            (0, "We miss you - 20% off with WINBACK20"),
            (25 * DAY, "Last chance: your WINBACK20 offer"),
        ],
    ),
)
SUBJECTS = (
    "New in: Peptide Firming Serum",
    "The SPF you will actually wear",
    "Skin School: retinol 101",
    "Your weekend glow edit",
    "Bundle and save this week",
    "Dry skin? Try this barrier cream",
    "Customer favourites restocked",
    "Black Friday starts now: 25% off",
    "Cyber Monday: last call",
    "Holiday gift sets are here",
    "New year, new routine",
    "Free shipping this weekend",
)


def _campaigns(rng, clock: Clock):
    days = []
    for dd, d in zip(clock.day_index().tolist(), clock.dates(), strict=True):
        tg = _thanksgiving(d.year)
        regular = d.weekday() == 1 or (d.weekday() == 3 and rng.random() < 0.5)
        bfcm = d in (tg + timedelta(days=1), tg + timedelta(days=4))
        if regular or bfcm or (d.month == 12 and d.day in (5, 12)):
            days.append((dd, d))
    day = np.array([x[0] for x in days])
    t = clock.t0 + day * DAY + 15 * 3600 + rng.integers(0, 3600, len(day))
    subj = []
    for _, d in days:
        tg = _thanksgiving(d.year)
        if tg <= d <= tg + timedelta(days=3):
            subj.append(7)
        elif d == tg + timedelta(days=4):
            subj.append(8)
        elif d.month == 12:
            subj.append(9)
        elif d.month == 1:
            subj.append(10)
        else:
            subj.append(int(rng.choice([0, 1, 2, 3, 4, 5, 6, 11])))
    return t.astype(np.int64), np.array(subj)


def _engage(rng, act: Activity, person, t, prof):
    """Opens and clicks for received emails -> lists of (prof, t, metric, ref)."""
    f = act.factor(person, t)
    opened = rng.random(len(t)) < act.open[person] * f
    delay = np.minimum(rng.lognormal(np.log(3 * 3600), 1.2, len(t)), 3 * DAY).astype(np.int64)
    ot = t + delay
    clicked = opened & (rng.random(len(t)) < act.click[person] * f)
    ct = ot + rng.integers(10, 600, len(t))
    return opened, ot, clicked, ct


def build_klaviyo(
    rng,
    clock: Clock,
    cat: Catalog,
    ident: Identities,
    act: Activity,
    info: pd.DataFrame,
    ga4: pd.DataFrame,
    brand: dict | None = None,
):
    """Klaviyo events of these profiles. ``brand``: the account's campaigns and flow, metric and
    campaign ids (``brand_of`` of shard 0's result) — one Klaviyo account, whatever the shard."""
    kp_n = len(ident.kp_person)
    kperson = ident.kp_person
    subscribed = ident.kp_consent == "SUBSCRIBED"
    u_t = act.unsub[kperson]
    um = subscribed & (u_t > ident.kp_created) & (u_t < clock.horizon)
    unsub = np.where(um, u_t, np.iinfo(np.int64).max)
    c_t, c_subj = _campaigns(rng, clock) if brand is None else (brand["c_t"], brand["c_subj"])
    cols = {k: [] for k in ("prof", "t", "metric", "camp", "flow", "ref")}

    def add(prof, t, metric, camp=-1, flow=-1, ref=-1):
        k = len(t)
        cols["prof"].append(np.asarray(prof, np.int64))
        cols["t"].append(np.asarray(t, np.int64))
        cols["metric"].append(np.full(k, metric, np.int8))
        for name, v in (("camp", camp), ("flow", flow), ("ref", ref)):
            cols[name].append(np.broadcast_to(np.asarray(v, np.int64), (k,)).copy())

    def emails(prof, t, camp, flow, ref):
        person = kperson[prof]
        add(prof, t, M_RECV, camp, flow, ref)
        op, ot, cl, ct = _engage(rng, act, person, t, prof)
        add(
            prof[op],
            ot[op],
            M_OPEN,
            camp[op] if camp.ndim else camp,
            flow[op] if flow.ndim else flow,
            ref[op],
        )
        add(
            prof[cl],
            ct[cl],
            M_CLICK,
            camp[cl] if camp.ndim else camp,
            flow[cl] if flow.ndim else flow,
            ref[cl],
        )

    # ---- campaigns, in fixed-size profile chunks
    chunk = 4000
    for a in range(0, kp_n, chunk):
        prof = np.arange(a, min(a + chunk, kp_n))
        per = kperson[prof]
        tt = np.broadcast_to(c_t[None, :], (len(prof), len(c_t)))
        pp = np.broadcast_to(per[:, None], tt.shape)
        ok = (ident.kp_created[prof][:, None] <= tt) & (tt < unsub[prof][:, None])
        f = act.factor(pp.ravel(), tt.ravel()).reshape(tt.shape)
        recv = ok & (rng.random(tt.shape) < act.send[per][:, None] * (0.35 + 0.65 * f))
        pi, ci = np.nonzero(recv)
        emails(prof[pi], c_t[ci], ci, np.int64(-1), c_subj[ci])
    # ---- flows
    fl_prof, fl_t, fl_id, fl_ref = [], [], [], []

    def flow(fi, prof, t0):
        for step, (delay, _) in enumerate(FLOWS[fi][1]):
            fl_prof.append(prof)
            fl_t.append(t0 + delay)
            fl_id.append(np.full(len(prof), fi))
            fl_ref.append(np.full(len(prof), step))

    welcome = (ident.kp_source != "shopify") | subscribed
    flow(0, np.flatnonzero(welcome), ident.kp_created[welcome])
    pid = ident.profile_of
    ab = ga4[ga4["abandon"] & (ga4["acct"] >= 0)]
    ab_person = ident.dv_person[ab["dev"].to_numpy()]
    ab_prof = pid[ab_person]
    keep = (ab_prof >= 0) & (rng.random(len(ab)) < 0.7)
    flow(1, ab_prof[keep], ab["ts"].to_numpy()[keep] // 1_000_000)
    o = info[info["counted"] & (info["person"] >= 0)].sort_values(["person", "t"], kind="stable")
    op = o["person"].to_numpy()
    ot = o["t"].to_numpy()
    oprof = pid[op]
    web = o["kind"].isin([K_WEB, K_ADDON, K_SUB_FIRST]).to_numpy() & (oprof >= 0)
    flow(2, oprof[web], ot[web])
    nxt = np.full(len(op), np.iinfo(np.int64).max)
    same = np.zeros(len(op), bool)
    same[:-1] = op[1:] == op[:-1]
    nxt[:-1] = np.where(same[:-1], ot[1:], nxt[:-1])
    wb = (oprof >= 0) & (nxt - ot > 100 * DAY)
    flow(3, oprof[wb], ot[wb] + 75 * DAY)
    if fl_prof:
        fp, ft = np.concatenate(fl_prof), np.concatenate(fl_t)
        fi, fr = np.concatenate(fl_id), np.concatenate(fl_ref)
        ok = subscribed[fp] & (ft >= ident.kp_created[fp]) & (ft < unsub[fp]) & (ft < clock.horizon)
        emails(fp[ok], ft[ok], np.int64(-1), fi[ok], fr[ok])
    # ---- unsubscribes, orders, product views
    add(np.flatnonzero(um), unsub[um], M_UNSUB)
    po = (oprof >= 0) & (ot >= ident.kp_created[np.maximum(oprof, 0)])
    add(oprof[po], ot[po] + 1, M_ORDER, ref=o.index.to_numpy()[po])
    vi = ga4[(ga4["ev"] == EV_VI) & (ga4["acct"] >= 0)]
    vprof = pid[ident.dv_person[vi["dev"].to_numpy()]]
    vt = vi["ts"].to_numpy() // 1_000_000
    keep = (vprof >= 0) & (vt >= ident.kp_created[np.maximum(vprof, 0)])
    keep &= rng.random(len(vi)) < 0.6
    add(vprof[keep], vt[keep], M_VIEW, ref=vi["prod"].to_numpy()[keep])

    ev = pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})
    ev = ev[ev["t"] < clock.horizon]
    ev = ev.sort_values(["t", "prof", "metric"], kind="stable").reset_index(drop=True)
    ms, r1, r2 = ulid_parts(ev["t"].to_numpy(), rng)
    ev["ms"], ev["r1"], ev["r2"] = ms, r1, r2
    for col, typ in (("prof", np.int32), ("camp", np.int16), ("flow", np.int8), ("ref", np.int32)):
        ev[col] = ev[col].astype(typ)
    if brand is None:
        brand = {
            "campaign_ids": ulids(c_t - 3 * DAY, rng),
            "flow_ids": short_ids(len(FLOWS), rng),
            "metric_ids": short_ids(len(METRICS), rng),
        }
    meta = {
        "campaign_ids": brand["campaign_ids"],
        "campaign_subj": c_subj,
        "campaign_t": c_t,
        "flow_ids": brand["flow_ids"],
        "metric_ids": brand["metric_ids"],
        "unsub": unsub,
        "unsub_flag": um,
    }
    return ev, meta


def brand_of(meta: dict) -> dict:
    """What every shard of a demo shares with shard 0: the Klaviyo account's campaigns and ids."""
    return {
        "c_t": meta["campaign_t"],
        "c_subj": meta["campaign_subj"],
        **{k: meta[k] for k in ("campaign_ids", "flow_ids", "metric_ids")},
    }


def finalize_klaviyo(
    ev: pd.DataFrame, meta: dict, ident: Identities, cat: Catalog, info: pd.DataFrame
) -> pd.DataFrame:
    """Numeric rows -> contract columns, in id order (ULIDs sort like (ms, r1, r2)).

    Text columns are Arrow-backed (see ``text``): built from lookup tables by Arrow kernels."""
    ev = ev.sort_values(["ms", "r1", "r2"], kind="stable")
    metric = ev["metric"].to_numpy()
    camp = ev["camp"].to_numpy()
    flow = ev["flow"].to_numpy()
    ref = ev["ref"].to_numpy()
    value = np.full(len(ev), np.nan)
    po = metric == M_ORDER
    value[po] = info["total"].to_numpy()[ref[po]]
    columns = {
        "id": encode_ulid_arrow(ev["ms"], ev["r1"], ev["r2"]),
        "profile_id": text.pick(ident.kp_id, ev["prof"].to_numpy()),
        "metric_id": text.pick(meta["metric_ids"], metric),
        "metric_name": text.pick(METRICS, metric),
        "datetime": ev["t"].to_numpy(),
        "campaign_id": text.pick(meta["campaign_ids"], np.maximum(camp, 0), camp >= 0),
        "flow_id": text.pick(meta["flow_ids"], np.maximum(flow, 0), flow >= 0),
        "value": np.round(value, 2),
        "properties": _properties(metric, camp, flow, ref, cat, info),
    }
    return pd.DataFrame(
        {k: text.column(v) if isinstance(v, pa.Array) else v for k, v in columns.items()}
    )


def _properties(metric, camp, flow, ref, cat: Catalog, info: pd.DataFrame) -> pa.Array:
    """Event properties JSON. Placed Order payloads are unique per order and are concatenated
    by Arrow; every other payload depends only on (metric, campaign, flow, ref), so each
    distinct one is formatted once in Python and the rows pick theirs."""
    q = json.dumps
    subj_c = [q(s) for s in SUBJECTS]
    subj_f = [[q(s) for _, s in f[1]] for f in FLOWS]
    fname = [q(f[0]) for f in FLOWS]

    def prop(m: int, c: int, f: int, r: int) -> str:
        if m == M_VIEW:
            return (
                '{"product_name":%s,"product_id":"%d","category":"%s","url":"%s/products/%s"}'
                % (
                    q(cat.title[r]),
                    cat.product_id[r],
                    cat.category[r],
                    HOST,
                    cat.handle[r],
                )
            )
        if m == M_UNSUB:
            return '{"method":"unsubscribe_link","list":"Newsletter"}'
        if c >= 0:
            return '{"subject":%s,"campaign_name":"Weekly %d"}' % (subj_c[r], c + 1)
        return '{"subject":%s,"flow_name":%s,"flow_message":%d}' % (subj_f[f][r], fname[f], r + 1)

    order = metric == M_ORDER
    # one int64 key per (metric, campaign, flow, ref) of the other rows
    key = (
        (metric.astype(np.int64) << 56)
        | ((camp.astype(np.int64) + 1) << 40)
        | ((flow.astype(np.int64) + 1) << 32)
        | (ref.astype(np.int64) + 1)
    )
    key = np.where(order, -1, key)
    uniq, inverse = np.unique(key, return_inverse=True)
    texts = []
    for k in uniq.tolist():
        if k < 0:
            texts.append("")  # Placed Order rows: filled below
            continue
        m, c, f, r = k >> 56, ((k >> 40) & 0xFFFF) - 1, ((k >> 32) & 0xFF) - 1, (k & 0xFFFFFFFF) - 1
        texts.append(prop(m, c, f, r))
    props = text.pick(texts, inverse.ravel())
    if order.any():
        rows = np.flatnonzero(order)
        oid = text.decimal(info["order_id"].to_numpy()[ref[rows]])
        items = text.decimal(info["n_items"].to_numpy()[ref[rows]])
        placed = text.concat(
            '{"order_id":"', oid, '","item_count":', items, ',"$event_id":"', oid, '"}'
        )
        mask = np.zeros(len(metric), dtype=bool)
        mask[rows] = True
        props = pc.replace_with_mask(props, pa.array(mask), placed)
    return props
