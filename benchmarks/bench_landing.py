"""Generate + land the demo (issue: foundation). Figures: wall time for generate + land at a
scale, landing throughput (rows/s through validation, PII vault and COPY), peak memory.

    python benchmarks/bench_landing.py --scale 1 --runs 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_of, peak_rss_mib, run_isolated, scratch_database, write_result  # noqa: E402

AS_OF = date(2026, 11, 25)


def once(scale: float) -> dict:
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import VaultKeys
    from orchestration.sources.demo_landing import land_demo

    keys = VaultKeys.from_master(b"b" * 32)
    with scratch_database() as url:
        started = time.perf_counter()
        summary = land_demo(
            url, seed=42, scale=scale, as_of=AS_OF, keys=keys, blocklist=load_blocklist()
        )
        total = time.perf_counter() - started
        copy_seconds = summary.load_seconds
        peak = peak_rss_mib()  # of generate + land, before the ceilings' own payloads
        ceilings = plain_copy_rows_per_s(url, scale)
    return {
        "scale": scale,
        "total_s": round(total, 2),
        "generate_s": round(summary.generate_seconds, 2),
        "land_s": round(copy_seconds, 2),
        "rows": summary.rows_loaded,
        "land_rows_per_s": round(summary.rows_loaded / copy_seconds),
        "peak_rss_mib": round(peak),
        "plain_copy_rows_per_s": round(ceilings["csv_1"]),
        "binary_copy_rows_per_s": round(ceilings["binary_1"]),
        "binary_copy_2_rows_per_s": round(ceilings["binary_2"]),
    }


def plain_copy_rows_per_s(url: str, scale: float) -> dict:
    """Ceilings: the same rows (PII columns left out) COPYed into bare copies of the tables with
    no validation, no vault, no hashing, payloads built beforehand, only the COPY timed.
    ``csv_1``: CSV on one connection (what "plain COPY" meant before the binary loader);
    ``binary_1``: binary COPY on one connection; ``binary_2``: binary COPY with every table cut
    in two halves landed on two connections at once — what the server itself can ingest here."""
    import threading

    from orchestration.runtime import db, pgbinary
    from orchestration.sources.demo import DemoConfig, generate_demo
    from orchestration.sources.schemas import BY_NAME
    from orchestration.sources.validation import check

    data = generate_demo(DemoConfig(seed=42, scale=scale, as_of=AS_OF))
    rows = sum(len(f) for f in data.tables.values())
    tables, csv, halves = [], {}, ([], [])
    for name, frame in data.tables.items():
        table = BY_NAME[name]
        frame = frame.drop(columns=[p.column for p in table.pii])
        tables.append((table, list(frame.columns)))
        csv[name] = db.frame_to_csv(frame)
        typed = [(check(frame[c], t).typed, t) for c, t in table.columns]
        mid = len(frame) // 2
        for half, (start, stop) in zip(halves, ((0, mid), (mid, len(frame))), strict=True):
            cols = [(a.slice(start, stop - start), t) for a, t in typed]
            half.append((table, pgbinary.encode_rows(cols)))
    seconds = {}
    with db.connect(url) as conn:
        for variant in ("csv_1", "binary_1"):
            for table, _ in tables:
                cols = ", ".join(f'"{c}" {t}' for c, t in table.columns)
                conn.execute(f"create table bench_{table.source}_{table.entity} ({cols})")
            conn.commit()
            t0 = time.perf_counter()
            for table, columns in tables:
                bare = f"bench_{table.source}_{table.entity}"
                if variant == "csv_1":
                    db.copy_csv(conn, bare, columns, [csv[table.qualified]])
                else:
                    for half in halves:
                        payload = dict((t.qualified, p) for t, p in half)[table.qualified]
                        db.copy_binary(conn, bare, [c for c, _ in table.columns], payload)
                conn.commit()
            seconds[variant] = time.perf_counter() - t0
            for table, _ in tables:
                conn.execute(f"drop table bench_{table.source}_{table.entity}")
            conn.commit()
        for table, _ in tables:
            cols = ", ".join(f'"{c}" {t}' for c, t in table.columns)
            conn.execute(f"create table bench_{table.source}_{table.entity} ({cols})")
        conn.commit()

    def stream(half) -> None:
        with db.connect(url) as conn:
            for table, payload in half:
                bare = f"bench_{table.source}_{table.entity}"
                db.copy_binary(conn, bare, [c for c, _ in table.columns], payload)
                conn.commit()

    threads = [threading.Thread(target=stream, args=(half,)) for half in halves]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds["binary_2"] = time.perf_counter() - t0
    return {k: rows / v for k, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    if args.once:
        print(json.dumps(once(args.scale)))
        return
    runs = run_isolated(Path(__file__), ["--scale", str(args.scale)], args.runs)
    m = median_of(runs)
    limit = 60 * max(1.0, args.scale)  # scale 1 <= 60 s; scale 10 <= 10x that
    s = f"scale {args.scale:g}"
    figures = [
        {
            "figure": f"generate + land, {s}",
            "value": m["total_s"],
            "unit": "s",
            "target": f"<= {limit:.0f} s",
            "ok": m["total_s"] <= limit,
        },
        {"figure": f"generate only, {s}", "value": m["generate_s"], "unit": "s"},
        {
            "figure": f"landing throughput (validate + vault + COPY), {s}",
            "value": f"{m['land_rows_per_s']:,.0f}",
            "unit": "rows/s",
            "target": ">= 300,000",
            "ok": m["land_rows_per_s"] >= 300_000,
        },
        {
            "figure": f"plain COPY of the same rows (ceiling, 1 connection), {s}",
            "value": f"{m['plain_copy_rows_per_s']:,.0f}",
            "unit": "rows/s",
        },
        {
            "figure": f"plain binary COPY of the same rows (1 connection), {s}",
            "value": f"{m['binary_copy_rows_per_s']:,.0f}",
            "unit": "rows/s",
        },
        {
            "figure": f"plain binary COPY, same rows, 2 connections (server ceiling), {s}",
            "value": f"{m['binary_copy_2_rows_per_s']:,.0f}",
            "unit": "rows/s",
        },
        {"figure": f"rows landed, {s}", "value": f"{m['rows']:,.0f}", "unit": "rows"},
        {"figure": f"peak memory, {s}", "value": m["peak_rss_mib"], "unit": "MiB"},
    ]
    path = write_result(f"landing-scale{args.scale:g}", figures, runs)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
