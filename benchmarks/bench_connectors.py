"""Live connectors through the fake servers (issue 7). Figures: Shopify extraction — orders/s of
client-side processing (HTTP handling, JSON parsing, mapping to raw frames), excluding the time
spent waiting on the (in-process) fake server and injected delays; the same end to end including
landing; GA4 export-file load — events/s from gzip NDJSON shard files to raw_ga4.events.

    python benchmarks/bench_connectors.py --scale 0.5 --runs 3
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sources" / "connectors"))
from common import median_of, run_isolated, scratch_database, write_result  # noqa: E402

AS_OF = date(2026, 11, 25)


def once(scale: float) -> dict:
    import orjson
    from fakes.shopify import FakeShopify

    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import VaultKeys
    from orchestration.sources.connectors import ga4_files, shopify
    from orchestration.sources.connectors.ga4_files import sync_ga4
    from orchestration.sources.demo import DemoConfig, generate_demo

    keys, blocklist = VaultKeys.from_master(b"b" * 32), load_blocklist()
    data = generate_demo(DemoConfig(seed=42, scale=scale, as_of=AS_OF))
    n_orders = len(data.tables["raw_shopify.orders"])
    out: dict = {"scale": scale, "orders": n_orders}
    with FakeShopify(data.tables, token="t", restore_rate=1e9, maximum=1e9) as fake:
        # extraction only: fetch every page and build the raw frames
        with shopify.make_client(fake.url, "t", "2025-07") as client:
            gql = shopify.ShopifyGraphQL(client)
            started = time.perf_counter()
            pending: list[dict] = []
            for nodes in gql.pages(shopify.ORDERS_QUERY, "orders", {"first": 50, "lines": 10}):
                pending += nodes
                if len(pending) >= 5_000:  # frames per batch, as sync_shopify builds them
                    shopify.orders_frames(pending)
                    pending = []
            shopify.orders_frames(pending)
            wall = time.perf_counter() - started
            client_s = wall - client.stats.network_seconds - client.stats.wait_seconds
        out["extract_wall_s"] = round(wall, 2)
        out["client_s"] = round(client_s, 3)
        out["orders_per_s_client"] = round(n_orders / client_s)
        # end to end: extraction + landing (vault, validation, COPY) in batches with cursors
        with scratch_database() as url, shopify.make_client(fake.url, "t", "2025-07") as client:
            started = time.perf_counter()
            shopify.sync_shopify(url, client, keys=keys, blocklist=blocklist, streams=("orders",))
            e2e = time.perf_counter() - started
            e2e_client = e2e - client.stats.network_seconds
        out["orders_per_s_end_to_end_client"] = round(n_orders / e2e_client)
        out["orders_per_s_end_to_end_wall"] = round(n_orders / e2e)
    # GA4: one gzip NDJSON file per day, loaded into raw_ga4.events
    events = data.tables["raw_ga4.events"]
    with tempfile.TemporaryDirectory() as tmp:
        by_day: dict[str, list[bytes]] = {}
        for r in events.to_dict("records"):  # NULL as None (the text columns are Arrow-backed)
            rev = r["ecommerce_purchase_revenue"]
            line = orjson.dumps({
                "event_date": r["event_date"], "event_timestamp": str(r["event_timestamp"]),
                "event_name": r["event_name"], "event_params": orjson.loads(r["event_params"]),
                "user_pseudo_id": r["user_pseudo_id"], "user_id": r["user_id"],
                "stream_id": r["stream_id"], "platform": r["platform"],
                "device": {"category": r["device_category"]}, "geo": {"country": r["geo_country"]},
                "traffic_source": {"name": r["traffic_source_name"],
                                   "medium": r["traffic_source_medium"],
                                   "source": r["traffic_source_source"]},
                "ecommerce": {"transaction_id": r["ecommerce_transaction_id"],
                              "purchase_revenue": None if rev != rev else rev},
            })  # fmt: skip
            by_day.setdefault(r["event_date"], []).append(line)
        for day, lines in by_day.items():
            Path(tmp, f"events_{day}.json.gz").write_bytes(gzip.compress(b"\n".join(lines), 1))
        with scratch_database() as url:
            started = time.perf_counter()
            _, g = sync_ga4(url, Path(tmp), keys=keys, blocklist=blocklist)
            ga4_s = time.perf_counter() - started
        # the connector's own share: reading + parsing the files into raw columns (no landing)
        started = time.perf_counter()
        ga4_files.read_shards(ga4_files.find_shards(Path(tmp)))
        parse_s = time.perf_counter() - started
    out["ga4_parse_events_per_s"] = round(g.rows / parse_s)
    out["ga4_events"] = g.rows
    out["ga4_s"] = round(ga4_s, 2)
    out["ga4_events_per_s"] = round(g.rows / ga4_s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    if args.once:
        print(json.dumps(once(args.scale)))
        return
    runs = run_isolated(Path(__file__), ["--scale", str(args.scale)], args.runs)
    med = median_of(runs)
    figures = [
        {"figure": f"Shopify orders/s, client-side (scale {args.scale}, {med['orders']} orders)",
         "value": med["orders_per_s_client"], "unit": "orders/s", "target": ">= 5000",
         "ok": med["orders_per_s_client"] >= 5000},
        {"figure": "Shopify orders/s incl. landing, client-side",
         "value": med["orders_per_s_end_to_end_client"], "unit": "orders/s", "target": "",
         "ok": None},
        {"figure": f"GA4 export files -> raw_ga4.events ({med['ga4_events']} events)",
         "value": med["ga4_events_per_s"], "unit": "events/s", "target": ">= 200000",
         "ok": med["ga4_events_per_s"] >= 200_000},
        {"figure": "GA4 export files read + parsed (no landing)",
         "value": med["ga4_parse_events_per_s"], "unit": "events/s", "target": "", "ok": None},
    ]  # fmt: skip
    path = write_result("connectors", figures, runs)
    print(json.dumps(med, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
