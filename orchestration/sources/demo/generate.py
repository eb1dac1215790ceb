"""Entry point: simulate the full horizon for (seed, scale, as_of), then cut to (since, through].

The population is simulated in shards (``DemoConfig.shards``), one at a time: ``iter_demo`` yields
each shard's rows, so generating and landing a demo holds one shard in memory whatever the scale.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..schemas import BY_NAME, RawTable
from .activity import build_activity
from .catalog import load_catalog
from .commerce import plan_one_time, plan_subscriptions
from .config import (
    BUYER_PERSONAS,
    DAY,
    NAT,
    PERSONAS,
    Clock,
    DemoConfig,
    DemoData,
    Shard,
    stream,
    to_ts,
)
from .email import brand_of, build_klaviyo, finalize_klaviyo
from .identities import Identities, build_identities
from .names import CITIES
from .orders import build_orders, combine, pick_guest_orders
from .people import Population, build_population, tax_rate
from .subscriptions import build_subscriptions
from .support import build_helpdesk
from .web import build_ga4, finalize_ga4

MIN_T = np.iinfo(np.int64).min


def _shopify_customers(pop: Population, ident: Identities, info: pd.DataFrame, unsub: np.ndarray):
    p = ident.sc_person
    city = pop.city[p]
    base = pd.DataFrame(
        {
            "id": ident.sc_id,
            "state": np.where(ident.sc_guest, "disabled", "enabled"),
            "verified_email": ~ident.sc_guest,
            "email_marketing_consent": ident.sc_consent,
            "tags": np.where(
                ident.sc_guest, "", np.where(ident.sc_consent == "subscribed", "newsletter", "")
            ),
            "city": np.array([c[0] for c in CITIES], dtype=object)[city],
            "province_code": np.array([c[1] for c in CITIES], dtype=object)[city],
            "country_code": "US",
            "zip": pop.zip[p],
            "created_at": ident.sc_created,
            "updated_at": ident.sc_created,
            "email": ident.sc_email,
            "phone": ident.sc_phone,
            "first_name": pop.first_name[p],
            "last_name": pop.last_name[p],
            "address1": pop.address1[p],
        }
    )
    base["_t"] = ident.sc_created
    # a new version whenever the customer orders, and when they unsubscribe
    o = info[(info["account"] >= 0) & info["counted"]]
    acct = o["account"].to_numpy()
    v_ord = base.iloc[acct].copy()
    v_ord["updated_at"] = v_ord["_t"] = np.maximum(o["t"].to_numpy() + 5, v_ord["_t"].to_numpy())
    main = (
        ~ident.sc_guest & (ident.sc_consent == "subscribed") & (unsub[p] < np.iinfo(np.int64).max)
    )
    v_uns = base[main].copy()
    v_uns["updated_at"] = v_uns["_t"] = np.maximum(unsub[p][main], v_uns["_t"].to_numpy() + 1)
    out = pd.concat([base, v_ord, v_uns], ignore_index=True)
    uns_at = unsub[ident.sc_person[_row_acct(out, ident)]]
    flip = (out["email_marketing_consent"] == "subscribed").to_numpy() & (out["_t"] >= uns_at)
    out.loc[flip, "email_marketing_consent"] = "unsubscribed"
    out.loc[flip, "tags"] = ""
    return out


def _row_acct(out: pd.DataFrame, ident: Identities) -> np.ndarray:
    return pd.Index(ident.sc_id).get_indexer(out["id"].to_numpy())


def _klaviyo_profiles(pop: Population, ident: Identities, unsub: np.ndarray, unsub_flag):
    p = ident.kp_person
    city = pop.city[p]
    ext = ident.sc_id[np.maximum(ident.main_of[p], 0)].astype(str)
    base = pd.DataFrame(
        {
            "id": ident.kp_id,
            "external_id": None,
            "email_consent": ident.kp_consent,
            "location_city": np.array([c[0] for c in CITIES], dtype=object)[city],
            "location_region": np.array([c[1] for c in CITIES], dtype=object)[city],
            "location_country": "United States",
            "source": ident.kp_source,
            "created": ident.kp_created,
            "updated": ident.kp_created,
            "email": ident.kp_email,
            "phone": ident.kp_phone,
            "first_name": pop.first_name[p],
            "last_name": pop.last_name[p],
        }
    )
    base["_t"] = ident.kp_created
    base["_i"] = np.arange(len(p))
    linked = ident.kp_linked != NAT
    v_link = base[linked].copy()
    v_link["updated"] = v_link["_t"] = ident.kp_linked[linked]
    v_uns = base[unsub_flag].copy()
    v_uns["updated"] = v_uns["_t"] = unsub[unsub_flag]
    out = pd.concat([base, v_link, v_uns], ignore_index=True)
    i = out["_i"].to_numpy()
    t = out["_t"].to_numpy()
    set_ext = linked[i] & (t >= ident.kp_linked[i])
    out["external_id"] = np.where(set_ext, ext[i], None)
    uns = unsub_flag[i] & (t >= unsub[i])
    out.loc[uns, "email_consent"] = "UNSUBSCRIBED"
    return out.drop(columns="_i")


def simulate(cfg: DemoConfig, shard: Shard | None = None, brand: dict | None = None) -> dict:
    """Everything of one shard over the fixed horizon; independent of ``since``/``through``.

    ``shard`` defaults to the whole population unsharded (what ``cfg.shards()`` is for a scale up
    to ``cfg.chunk``). ``brand``: what every shard shares with shard 0 (``email.brand_of``)."""
    shard = shard or Shard(0, 1, cfg.scale, 0)
    k = shard.index

    def rng(name: str) -> np.random.Generator:
        return stream(cfg.seed, name, k)

    clock = Clock(cfg.as_of)
    cat = load_catalog()
    pop = build_population(replace(cfg, scale=shard.scale), clock, k)
    tax = tax_rate(pop)
    plan_s, sub_plan = plan_subscriptions(rng("subs"), clock, pop, cat, tax)
    plan_o = plan_one_time(rng("one_time"), clock, pop, cat, tax)
    plan = combine(plan_s, plan_o)
    buyers = np.isin(pop.persona, [PERSONAS.index(p) for p in BUYER_PERSONAS])
    guest_mask, guests = pick_guest_orders(rng("guests"), plan, int(buyers.sum()))
    first_order = np.full(pop.n, np.iinfo(np.int64).max)
    np.minimum.at(first_order, plan.person, plan.t)
    first_order = np.where(first_order == np.iinfo(np.int64).max, NAT, first_order)
    ident = build_identities(rng("ident"), clock, pop, first_order, guests)
    orders, lines, refunds, info = build_orders(
        rng("orders"), clock, pop, cat, plan, guest_mask, ident, tax
    )
    s_cust, subs, s_events, sub_info = build_subscriptions(
        rng("subscriptions"), pop, cat, sub_plan, ident, info
    )
    act = build_activity(rng("activity"), clock, pop, info, sub_info, ident.first_seen)
    ga4 = build_ga4(rng("ga4"), clock, cat, ident, act, info)
    kev, kmeta = build_klaviyo(rng("klaviyo"), clock, cat, ident, act, info, ga4, brand)
    requesters, tickets, rq_truth = build_helpdesk(
        rng("helpdesk"), clock, pop, ident, info, sub_info
    )
    unsub_person = np.full(pop.n, np.iinfo(np.int64).max)
    unsub_person[ident.kp_person[kmeta["unsub_flag"]]] = kmeta["unsub"][kmeta["unsub_flag"]]
    tables = {
        "raw_shopify.customers": _shopify_customers(pop, ident, info, unsub_person),
        "raw_shopify.orders": orders,
        "raw_shopify.refunds": refunds,
        "raw_subscriptions.customers": s_cust,
        "raw_subscriptions.subscriptions": subs,
        "raw_subscriptions.events": s_events,
        "raw_klaviyo.profiles": _klaviyo_profiles(pop, ident, kmeta["unsub"], kmeta["unsub_flag"]),
        "raw_helpdesk.tickets": tickets,
        "raw_helpdesk.requesters": requesters,
    }
    # identity truth with each identity's first appearance
    dev_first = (ga4["ts"] // 1_000_000).groupby(ga4["dev"]).min()
    truth = pd.concat(
        [
            pd.DataFrame(
                {
                    "source": "shopify",
                    "identity_type": "customer_id",
                    "source_id": ident.sc_id.astype(str),
                    "person": ident.sc_person,
                    "first": ident.sc_created,
                }
            ),
            pd.DataFrame(
                {
                    "source": "klaviyo",
                    "identity_type": "profile_id",
                    "source_id": ident.kp_id,
                    "person": ident.kp_person,
                    "first": ident.kp_created,
                }
            ),
            pd.DataFrame(
                {
                    "source": "ga4",
                    "identity_type": "user_pseudo_id",
                    "source_id": ident.dv_pseudo[dev_first.index.to_numpy()],
                    "person": ident.dv_person[dev_first.index.to_numpy()],
                    "first": dev_first.to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "source": "helpdesk",
                    "identity_type": "requester_id",
                    "source_id": rq_truth["id"].astype(str),
                    "person": rq_truth["person"],
                    "first": rq_truth["first"],
                }
            ),
            pd.DataFrame(
                {
                    "source": "subscriptions",
                    "identity_type": "customer_id",
                    "source_id": s_cust["id"].drop_duplicates().astype(str).to_numpy(),
                    "person": sub_info["person"].to_numpy(),
                    "first": sub_info["created"],
                }
            ),
        ],
        ignore_index=True,
    )
    return {
        "clock": clock,
        "cat": cat,
        "pop": pop,
        "ident": ident,
        "tables": tables,
        "lines": lines,
        "info": info,
        "ga4": ga4,
        "kev": kev,
        "kmeta": kmeta,
        "truth": truth,
        "person_base": shard.person_base,
    }


def _window(
    df: pd.DataFrame, lo: int, hi: int, key: list[str] | None, t: np.ndarray | None = None
) -> pd.DataFrame:
    t = df["_t"].to_numpy() if t is None else t
    out = df[(t >= lo) & (t < hi)]
    if key:
        out = out.sort_values("_t", kind="stable").drop_duplicates(key, keep="last")
    return out


def conform(df: pd.DataFrame, table: RawTable, presorted: bool = False) -> pd.DataFrame:
    """Contract column order and dtypes, sorted by the record id."""
    out = {}
    types = dict(table.columns)
    idx = pd.RangeIndex(len(df))
    for col in table.input_columns:
        v = df[col] if col in df.columns else pd.Series([None] * len(df), index=df.index)
        typ = types.get(col, "text")
        arr = v.to_numpy() if not isinstance(v.dtype, pd.ArrowDtype) else None
        if typ == "timestamptz":
            ts = to_ts(arr.astype(np.int64))
            out[col] = pd.Series(ts.array, index=idx, dtype="datetime64[ns, UTC]")
        elif typ in ("bigint", "integer"):
            if v.isna().any():
                out[col] = pd.Series(pd.array(v.to_numpy(object), dtype="Int64"), index=idx)
            else:
                out[col] = pd.Series(arr.astype(np.int64), index=idx)
        elif typ.startswith("numeric"):
            out[col] = pd.Series(np.round(pd.to_numeric(v).to_numpy(np.float64), 2), index=idx)
        elif typ == "boolean":
            out[col] = pd.Series(arr.astype(bool), index=idx)
        elif isinstance(v.dtype, pd.ArrowDtype):  # the event tables' Arrow-built text
            out[col] = pd.Series(v.array, index=idx, copy=False)
        else:
            if arr.dtype != object:  # e.g. float NaN from a merge: normalise to None
                obj = np.asarray(arr, dtype=object)
                arr = np.where(pd.isna(obj), None, obj)
            out[col] = pd.Series(arr, index=idx, dtype=object, copy=False)
    frame = pd.DataFrame(out)
    if presorted:
        return frame
    return frame.sort_values(list(table.record_id), kind="stable").reset_index(drop=True)


def cut(sim: dict, cfg: DemoConfig) -> DemoData:
    clock: Clock = sim["clock"]
    hi = clock.day_end(cfg.end_date)
    lo = clock.day_end(cfg.since) if cfg.since is not None else MIN_T
    tables: dict[str, pd.DataFrame] = {}
    for name, df in sim["tables"].items():
        t = BY_NAME[name]
        key = list(t.record_id) if t.updated_at not in ("created_at",) else None
        if name == "raw_shopify.refunds":
            key = None
        tables[name] = _window(df, lo, hi, key)
    o = tables["raw_shopify.orders"]
    lines = sim["lines"].merge(
        o[["id", "updated_at"]].rename(columns={"id": "order_id"}), on="order_id", how="inner"
    )
    tables["raw_shopify.order_lines"] = lines
    presorted = ("raw_ga4.events", "raw_klaviyo.events")
    out = {name: conform(tables[name], BY_NAME[name]) for name in BY_NAME if name not in presorted}
    # the two big event tables: strings are built only for rows inside the window, one at a time
    ga = sim.pop("ga4")
    ga = _window(ga, lo, hi, None, ga["ts"].to_numpy() // 1_000_000)
    ga = finalize_ga4(ga, clock, sim["cat"], sim["ident"], sim["info"])
    out["raw_ga4.events"] = conform(ga, BY_NAME["raw_ga4.events"], presorted=True)
    del ga
    kv = sim.pop("kev")
    kv = _window(kv, lo, hi, None, kv["t"].to_numpy())
    kv = finalize_klaviyo(kv, sim["kmeta"], sim["ident"], sim["cat"], sim["info"])
    out["raw_klaviyo.events"] = conform(kv, BY_NAME["raw_klaviyo.events"], presorted=True)
    del kv
    out = {name: out[name] for name in BY_NAME}
    # ---- truth
    tr = sim["truth"]
    first_person = tr.groupby("person")["first"].min()
    base = sim.get("person_base", 0) + 1  # truth person ids count from 1 across shards
    ids = tr[(tr["first"] >= lo) & (tr["first"] < hi)]
    ids = pd.DataFrame(
        {
            "source": ids["source"].to_numpy(),
            "identity_type": ids["identity_type"].to_numpy(),
            "source_id": ids["source_id"].to_numpy(),
            "person_id": ids["person"].to_numpy(np.int64) + base,
        }
    )
    ids = ids.sort_values(["source", "identity_type", "source_id"], kind="stable")
    fp = first_person[(first_person >= lo) & (first_person < hi)]
    persona = np.asarray(PERSONAS, dtype=object)[sim["pop"].persona[fp.index.to_numpy()]]
    persons = pd.DataFrame(
        {
            "person_id": fp.index.to_numpy(np.int64) + base,
            "persona": persona,
            "is_buyer": np.isin(persona, BUYER_PERSONAS),
        }
    )
    truth = {
        "demo_truth.persons": persons.sort_values("person_id").reset_index(drop=True),
        "demo_truth.identities": ids.reset_index(drop=True),
    }
    return DemoData(tables=out, truth=truth)


def iter_demo(cfg: DemoConfig, cache_dir: Path | None = None) -> Iterator[DemoData]:
    """The demo data set described by ``cfg``, one shard at a time (deterministic): only one
    shard's simulation and rows are alive at once. With ``cache_dir`` each shard's simulation
    is kept there and re-used (see ``cached_simulation``)."""
    brand = None
    for shard in cfg.shards():
        if cache_dir is None:
            sim = simulate(cfg, shard, brand)
        else:
            sim = cached_simulation(cfg, cache_dir, shard, brand)
        brand = brand or brand_of(sim["kmeta"])
        data = cut(sim, cfg)
        del sim  # not held while the caller lands the shard
        yield data


def generate_demo(cfg: DemoConfig | None = None, cache_dir: Path | None = None) -> DemoData:
    """Generate the demo data set described by ``cfg`` (deterministic), every shard of it
    concatenated (memory follows the scale: ``iter_demo`` for one shard at a time)."""
    parts = list(iter_demo(cfg or DemoConfig(), cache_dir))
    if len(parts) == 1:
        return parts[0]
    return DemoData(
        tables={n: _concat([p.tables[n] for p in parts]) for n in parts[0].tables},
        truth={n: _concat([p.truth[n] for p in parts]) for n in parts[0].truth},
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


@cache
def _code_version() -> str:
    """A digest of the generator's code: a cached simulation from other code is not re-used."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_simulation(
    cfg: DemoConfig, cache_dir: Path, shard: Shard | None = None, brand: dict | None = None
) -> dict:
    """``simulate(cfg, shard, brand)``, kept on disk in ``cache_dir``: every next day of a demo
    cuts one more day from the same simulation of (seed, scale, chunk, as_of), so it is loaded
    (about a tenth of the time) instead of simulated again. One demo's shards are kept (one
    file each, ``shard`` defaults to the first); a torn or unreadable file is simulated again."""
    shard = shard or cfg.shards()[0]
    key = hashlib.sha256(
        repr(
            (cfg.seed, float(cfg.scale), float(cfg.chunk), cfg.as_of.isoformat(), _code_version())
        ).encode()
    ).hexdigest()[:16]
    path = cache_dir / f"simulation-{key}-{shard.index}.pickle"
    try:
        with path.open("rb") as f:
            return pickle.load(f)  # our own file, under CDP_HOME
    except FileNotFoundError:
        pass
    except Exception:  # a torn write or an unpicklable leftover: simulate again
        path.unlink(missing_ok=True)
    sim = simulate(cfg, shard, brand)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for old in cache_dir.glob("simulation-*.pickle"):
        if not old.name.startswith(f"simulation-{key}-"):  # another demo's
            old.unlink(missing_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(sim, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return sim


__all__ = ["generate_demo", "iter_demo", "cached_simulation", "simulate", "cut", "DAY"]
