"""Churn on real data: the CDNOW master file (23,570 customers who first bought at CDNOW in the
first quarter of 1997, their 69,659 purchases through June 1998), landed as Shopify orders in a
scratch warehouse, built with dbt and trained at the standard cutoffs (scoring cutoff 1998-07-01,
holdout 1998-04-02, training cutoffs 90 days before it and every 30 days back). Reports every
candidate's holdout ROC-AUC, Brier score and top-decile lift, and which one is the champion.

CDNOW ships inside the ``lifetimes`` wheel; get it with

    pip download lifetimes --no-deps -d /tmp/cdnow && cd /tmp/cdnow && unzip -o Lifetimes-*.whl
    python benchmarks/bench_churn_cdnow.py --cdnow /tmp/cdnow/lifetimes/datasets/CDNOW_master.txt

``--keep`` leaves the scratch database in place and prints its URL; ``--url URL`` trains again on
such a database without landing and building. By default CDNOW goes straight through the loader
(``load_frames``) as Shopify orders: one order per CDNOW row, at noon UTC of its day, no email
or phone. ``--via-import`` lands it the way a shop would instead: ``benchmarks/cdnow.py`` writes
it as a Shopify orders export and ``cdp import shopify-orders``'s importer lands that (customers
keyed by a placeholder email per CDNOW id).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mib, scratch_database, write_result  # noqa: E402

MASTER_CUSTOMERS = 23_570


def read_cdnow(path: Path) -> pd.DataFrame:
    """customer_id, date, quantity, price from the master file (4 columns) or the lifetimes
    sample (5 columns: the master id, a sample id, then the same three)."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str)
    raw = raw[raw[0].str.isdigit()]  # the master file has a header line, the sample none
    if raw.shape[1] == 5:
        raw = raw.drop(columns=1)
    raw.columns = ["customer_id", "date", "quantity", "price"]
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(int),
            "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "quantity": raw["quantity"].astype(int),
            "price": raw["price"].astype(float),
        }
    )


def shopify_orders(cdnow: pd.DataFrame):
    """One Shopify order per CDNOW row, every column of raw_shopify.orders present."""
    from orchestration.sources.schemas import TABLES

    table = next(t for t in TABLES if t.qualified == "raw_shopify.orders")
    n = len(cdnow)
    at = (cdnow["date"] + pd.Timedelta(hours=12)).dt.tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "id": range(1, n + 1),
            "name": [f"#{i}" for i in range(1001, 1001 + n)],
            "customer_id": cdnow["customer_id"].to_numpy(),
            "financial_status": "paid",
            "currency": "USD",
            "subtotal_price": cdnow["price"].round(2).to_numpy(),
            "total_discounts": 0.0,
            "total_shipping_price": 0.0,
            "total_tax": 0.0,
            "total_price": cdnow["price"].round(2).to_numpy(),
            "source_name": "web",
            "test": False,
            "created_at": at,
            "processed_at": at,
            "updated_at": at,
        }
    )
    for column in table.input_columns:
        if column not in frame:
            frame[column] = None
    return frame[table.input_columns], table


def land(url: str, cdnow_path: Path) -> dict:
    """Land CDNOW as Shopify orders and build the warehouse up to marts.churn_features."""
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import VaultKeys
    from orchestration.sources.landing import load_frames
    from orchestration.warehouse.project import run_dbt

    cdnow = read_cdnow(cdnow_path)
    frame, table = shopify_orders(cdnow)
    started = time.perf_counter()
    results = load_frames(
        url,
        [(table, frame)],
        keys=VaultKeys.from_master(b"c" * 32),
        blocklist=load_blocklist(),
        producer="cdnow",
    )
    landed = time.perf_counter() - started
    run_dbt(["seed"], url)
    run_dbt(["run", "--select", "+churn_features"], url)
    return {
        "customers": int(cdnow["customer_id"].nunique()),
        "purchases": len(cdnow),
        "loaded": sum(r.loaded for r in results),
        "rejected": sum(r.rejected for r in results),
        "land_s": round(landed, 1),
        "build_s": round(time.perf_counter() - started - landed, 1),
    }


def land_via_import(url: str, cdnow_path: Path) -> dict:
    """Land CDNOW as a Shopify orders export through the CSV importer, then build."""
    from cdnow import cdnow_to_shopify_csv

    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import VaultKeys
    from orchestration.sources.imports.importer import import_files
    from orchestration.sources.imports.values import DateRules
    from orchestration.warehouse.project import run_dbt

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cdp-bench-cdnow-") as tmp:
        csv_path = Path(tmp) / "cdnow_orders_export.csv"
        orders = cdnow_to_shopify_csv(cdnow_path, csv_path)
        (report,) = import_files(
            url,
            [csv_path],
            "shopify-orders",
            DateRules(None, None),
            keys=VaultKeys.from_master(b"c" * 32),
            blocklist=load_blocklist(),
        )
    landed = time.perf_counter() - started
    run_dbt(["seed"], url)
    run_dbt(["run", "--select", "+churn_features"], url)
    return {
        "customers": int(read_cdnow(cdnow_path)["customer_id"].nunique()),
        "purchases": orders,
        "loaded": report.orders,
        "rejected": report.rejected + report.loader_rejected,
        "land_s": round(landed, 1),
        "build_s": round(time.perf_counter() - started - landed, 1),
        "landing": "cdp import shopify-orders",
    }


def train(url: str) -> dict:
    from orchestration.churn import run
    from orchestration.churn.config import load_config

    cfg = load_config()
    with tempfile.TemporaryDirectory(prefix="cdp-bench-cdnow-") as home:
        started = time.perf_counter()
        trained = run.train_model(url, cfg, Path(home))
        scored = run.score(url, cfg)
        seconds = time.perf_counter() - started
    t = trained.trained
    return {
        "champion": t.champion,
        "model_won": trained.verdict.model_won,
        "warnings": trained.verdict.warnings,
        "cutoffs": t.cutoffs.as_dict(),
        "rows": t.rows,
        "holdout_churn_rate": round(t.holdout_base_rate, 4),
        "metrics": t.metrics,
        "scored_customers": len(scored.scores),
        "train_score_s": round(seconds, 1),
        "peak_rss_mib": round(peak_rss_mib()),
    }


def metrics_table(metrics: dict[str, dict]) -> str:
    rows = ["| candidate | ROC-AUC | Brier | top-decile lift |", "| --- | --- | --- | --- |"]
    rows += [
        f"| {name} | {m['roc_auc']:.4f} | {m['brier']:.4f} | {m['top_decile_lift']:.2f} |"
        for name, m in metrics.items()
    ]
    return "\n".join(rows)


def figures(result: dict, sample: str) -> list[dict]:
    m = result["metrics"]
    best_base = max(v["roc_auc"] for k, v in m.items() if k != "model")
    champ = m[result["champion"]]["roc_auc"]
    names = ("model", "bgnbd_baseline", "rfm_baseline", "recency_baseline")
    return [
        {
            "figure": f"CDNOW{sample} holdout ROC-AUC model / BG/NBD / RFM / recency",
            "value": " / ".join(f"{m[n]['roc_auc']:.3f}" for n in names),
            "unit": "",
            "target": "model >= best baseline",
            "ok": m["model"]["roc_auc"] >= best_base,
        },
        {
            "figure": f"CDNOW{sample} champion holdout ROC-AUC",
            "value": f"{champ:.3f} ({result['champion']})",
            "unit": "",
            "target": ">= best baseline",
            "ok": champ >= best_base,
        },
        {
            "figure": f"CDNOW{sample} holdout Brier model / BG/NBD / RFM / recency",
            "value": " / ".join(f"{m[n]['brier']:.3f}" for n in names),
            "unit": "",
            "target": "",
            "ok": None,
        },
        {
            "figure": f"CDNOW{sample} holdout top-decile lift model / BG/NBD / RFM / recency",
            "value": " / ".join(f"{m[n]['top_decile_lift']:.2f}" for n in names),
            "unit": "",
            "target": "",
            "ok": None,
        },
    ]


def kept_database(prefix: str) -> str:
    """A fresh warehouse database that outlives the run (drop it yourself when done)."""
    import uuid

    import psycopg

    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse

    server = db.with_database(db.warehouse_url(), "postgres")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = db.with_database(server, name)
    with db.connect(url) as conn:
        ensure_warehouse(conn)
    return url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cdnow", type=Path, help="CDNOW_master.txt (or CDNOW_sample.txt)")
    parser.add_argument("--url", help="train again on a database prepared with --keep")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--no-write", action="store_true", help="print only, no results file")
    parser.add_argument(
        "--via-import", action="store_true", help="land through the Shopify CSV importer"
    )
    args = parser.parse_args()
    landing = land_via_import if args.via_import else land
    prepared = {}
    if args.url:
        result = train(args.url)
    elif args.cdnow is None:
        parser.error("--cdnow is required unless --url is given")
    elif args.keep:
        url = kept_database("cdp_bench_cdnow")
        print(f"kept database (drop it when done): {url}", file=sys.stderr)
        prepared = landing(url, args.cdnow)
        result = train(url)
    else:
        with scratch_database("cdp_bench_cdnow") as url:
            prepared = landing(url, args.cdnow)
            print(f"  landed and built: {prepared}", file=sys.stderr)
            result = train(url)
    result.update(prepared)
    print(metrics_table(result["metrics"]), file=sys.stderr)
    print(json.dumps(result, default=str))
    sample = result.get("customers", MASTER_CUSTOMERS) != MASTER_CUSTOMERS
    if not args.no_write:
        name = "churn-cdnow-sample" if sample else "churn-cdnow"
        path = write_result(name, figures(result, " sample" if sample else ""), result)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
