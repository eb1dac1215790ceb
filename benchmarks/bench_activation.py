"""Activation (issue 6). Figures: CSV export of a 100,000-member segment with email decryption
(rows/s, the whole ``export_segment``: the changes query, one audited decryption of every
distinct email, the vectorised join, CSV encoding, fsynced atomic writes, manifest, LATEST and
the ledger/state transaction); the same with the default columns (email, first and last name);
webhook delivery of 100,000 members (first delivery: everyone as entered) in signed batches of
500 to a local receiver in another process that verifies each signature and dedupes on
``webhook-id``.

    python benchmarks/bench_activation.py --members 100000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_of, run_isolated, scratch_database, write_result  # noqa: E402

SLUG = "bench_segment"
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1ub3QtZm9yLXByb2R1Y3Rpb24="


def _receiver(port_queue, stop_event) -> None:
    """A deduping, signature-checking webhook receiver (its own process, so it does not share
    the exporter's GIL). GET /stats answers {processed, duplicates, bad, records}."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Lock, Thread

    from orchestration.activation.webhooks import SignatureError, verify

    seen: set[str] = set()
    stats = {"processed": 0, "duplicates": 0, "bad": 0, "records": 0}
    lock = Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps(stats).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            try:
                msg_id = verify(SECRET, dict(self.headers), body)
            except SignatureError:
                with lock:
                    stats["bad"] += 1
                status = 401
            else:
                with lock:
                    if msg_id in seen:
                        stats["duplicates"] += 1
                    else:
                        seen.add(msg_id)
                        doc = json.loads(body)
                        stats["processed"] += 1
                        stats["records"] += len(doc["entered"]) + len(doc["exited"])
                status = 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    port_queue.put(server.server_address[1])
    stop_event.wait()
    server.shutdown()
    server.server_close()


def setup(url: str, n: int, keys) -> None:
    """n customers with encrypted contacts, a segment of all of them, refreshed for real."""
    import pandas as pd

    from orchestration.privacy.vault import encrypt_many, index_series
    from orchestration.runtime import db
    from orchestration.segments.membership import ensure_tables, record_changes

    ids = [f"cus_{i:08d}" for i in range(n)]
    people = pd.DataFrame(
        {
            "email": [f"customer.{i}@example.com" for i in range(n)],
            "first_name": [f"first{i % 5000}" for i in range(n)],
            "last_name": [f"last{i % 7919}" for i in range(n)],
        }
    )
    hashes = {}
    with db.connect(url) as conn:
        for col, pii_type in (("email", "email"), ("first_name", "name"), ("last_name", "name")):
            hashes[col], plain = index_series(keys, people[col], pii_type)
            vault = encrypt_many(keys, pii_type, plain)
            vault["ciphertext"] = vault["ciphertext"].str.slice(2)
            conn.execute(
                "create temp table if not exists vault_load (pii_type text, "
                "value_hash text, ciphertext text, key_id text)"
            )
            conn.execute("truncate vault_load")
            cols = ["pii_type", "value_hash", "ciphertext", "key_id"]
            db.copy_csv(conn, "vault_load", cols, db.frame_chunks(vault[cols]))
            conn.execute(
                "insert into pii.vault (pii_type, value_hash, ciphertext, key_id) "
                "select pii_type, value_hash, decode(ciphertext, 'hex'), key_id "
                "from vault_load on conflict do nothing"
            )
        conn.execute(
            "create table marts.customer_profiles (customer_id text primary key, "
            "lifetime_value numeric(12,2), churn_risk_score int, lifecycle_stage text)"
        )
        conn.execute(
            "create table marts.customer_contacts (customer_id text primary key, email_hash text,"
            " phone_hash text, first_name_hash text, last_name_hash text)"
        )
        frame = pd.DataFrame(
            {
                "customer_id": ids,
                "lifetime_value": [600 + i % 900 for i in range(n)],
                "churn_risk_score": [i % 100 for i in range(n)],
                "lifecycle_stage": "active",
            }
        )
        db.copy_csv(conn, "marts.customer_profiles", list(frame.columns), db.frame_chunks(frame))
        contacts = pd.DataFrame(
            {
                "customer_id": ids,
                "email_hash": hashes["email"],
                "first_name_hash": hashes["first_name"],
                "last_name_hash": hashes["last_name"],
            }
        )
        db.copy_csv(
            conn, "marts.customer_contacts", list(contacts.columns), db.frame_chunks(contacts)
        )
        ensure_tables(conn)
        conn.execute(
            f"create materialized view segments.{SLUG} as select customer_id "
            "from marts.customer_profiles where lifetime_value > 500"
        )
        conn.execute(f"create unique index on segments.{SLUG} (customer_id)")
        conn.execute(
            "insert into segments.definitions (slug, name, rule_hash, sql, columns) "
            "values (%s, %s, 'bench', 'bench', '{customer_id}')",
            (SLUG, SLUG),
        )
        record_changes(conn, SLUG, "bench-refresh")
        conn.execute("analyze")
        conn.commit()


def segment_file(directory: Path, exports: list[dict]) -> None:
    doc = {
        "name": SLUG,
        "slug": SLUG,
        "exports": exports,
        "rules": {
            "logic": "AND",
            "conditions": [{"field": "lifetime_value", "operator": "greater_than", "value": 500}],
        },
    }
    (directory / f"{SLUG}.yml").write_text(json.dumps(doc))


def once(n: int) -> dict:
    import httpx

    from orchestration.activation.config import ActivationConfig
    from orchestration.activation.delivery import RetryPolicy
    from orchestration.activation.exports import export_segment
    from orchestration.activation.files import verify_export
    from orchestration.privacy.vault import VaultKeys

    keys = VaultKeys.from_master(b"a" * 32)
    out: dict = {"members": n}
    with scratch_database("cdp_bench_act") as url, tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        setup(url, n, keys)
        out["setup_s"] = round(time.perf_counter() - t0, 1)
        seg_dir, exports = tmp_path / "segments", tmp_path / "exports"
        seg_dir.mkdir()
        kw = dict(
            segments_dir=seg_dir,
            exports_dir=exports,
            keys=keys,
            cfg=ActivationConfig(exports_keep=2),
        )

        segment_file(
            seg_dir,
            [
                {
                    "destination": "csv",
                    "columns": ["customer_id", "email", "lifetime_value", "churn_risk_score"],
                }
            ],
        )
        t0 = time.perf_counter()
        first = export_segment(url, SLUG, "bench-csv-1", **kw)
        out["csv_email_s"] = round(time.perf_counter() - t0, 3)
        assert first.members == n and first.entered == n
        manifest = verify_export(first.directory)
        assert manifest["files"]["members.csv"]["rows"] == n
        out["csv_email_rows_per_s"] = round(n / out["csv_email_s"])

        segment_file(seg_dir, [{"destination": "csv"}])  # default columns: email + names
        t0 = time.perf_counter()
        export_segment(url, SLUG, "bench-csv-2", force=True, **kw)
        out["csv_default_s"] = round(time.perf_counter() - t0, 3)
        out["csv_default_rows_per_s"] = round(n / out["csv_default_s"])

        ctx = mp.get_context("spawn")
        port_q, stop = ctx.Queue(), ctx.Event()
        proc = ctx.Process(target=_receiver, args=(port_q, stop), daemon=True)
        proc.start()
        try:
            port = port_q.get(timeout=60)
            segment_file(
                seg_dir,
                [
                    {
                        "destination": "webhook",
                        "batch_size": 500,
                        "url": f"http://127.0.0.1:{port}/hooks",
                        "secret_env": "BENCH_SECRET",
                    }
                ],
            )
            t0 = time.perf_counter()
            policy = RetryPolicy(concurrency=4)
            env = {"BENCH_SECRET": SECRET}
            result = export_segment(
                url, SLUG, "bench-hook-1", env=env, policy=policy, force=True, **kw
            )
            out["webhook_s"] = round(time.perf_counter() - t0, 2)
            stats = httpx.get(f"http://127.0.0.1:{port}/stats").json()
        finally:
            stop.set()
            proc.join(10)
        report = result.deliveries[0]
        assert report.delivered == report.batches and stats["records"] == n, (report, stats)
        assert stats["bad"] == 0 and stats["duplicates"] == 0
        out["webhook_batches"] = report.batches
        out["webhook_members_per_s"] = round(n / out["webhook_s"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    if args.once:
        print(json.dumps(once(args.members)))
        return
    runs = run_isolated(Path(__file__), ["--members", str(args.members)], args.runs)
    med = median_of(runs)
    n = f"{args.members:,}"
    figures = [
        {
            "figure": f"CSV export of a {n}-member segment with email decryption",
            "value": med["csv_email_rows_per_s"],
            "unit": "rows/s",
            "target": ">= 100000",
            "ok": med["csv_email_rows_per_s"] >= 100_000,
        },
        {
            "figure": "CSV export, default columns (email, first and last name decrypted)",
            "value": med["csv_default_rows_per_s"],
            "unit": "rows/s",
            "target": "",
            "ok": None,
        },
        {
            "figure": f"webhook delivery of {n} members (signed batches of 500, local receiver)",
            "value": med["webhook_s"],
            "unit": "s",
            "target": "<= 30",
            "ok": med["webhook_s"] <= 30,
        },
    ]
    path = write_result("activation", figures, runs)
    print(json.dumps(med, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
