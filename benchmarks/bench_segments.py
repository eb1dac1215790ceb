"""Segments (issue: segments). Figures: `cdp segment test` latency on a property rule, p50/p95,
in-process (connect + catalog + compile + both queries) and as the whole command (a fresh
`cdp` process: interpreter, imports, connection); refreshing all five pre-built segment views,
from scratch and again on unchanged data. Targets: test p95 <= 300 ms at scale 1 (<= 2 s at
scale 10); all five views <= 30 s at scale 10.

    python benchmarks/bench_segments.py --scale 1             # lands + dbt-builds a scratch db
    python benchmarks/bench_segments.py --url "$(cdp db url)"     # an already built warehouse
    python benchmarks/bench_segments.py --url URL --replicate 10  # profiles x10 (scale-10 proxy)

Writes benchmarks/results/segments-<scale>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median_of, run_isolated, scratch_database, write_result  # noqa: E402

AS_OF = date(2026, 11, 20)
RULE = {  # a property rule: the brief's example plus a nested group
    "logic": "AND",
    "conditions": [
        {"field": "lifetime_value", "operator": "greater_than", "value": 500},
        {
            "logic": "OR",
            "conditions": [
                {"field": "subscription_status", "operator": "equals", "value": "active"},
                {"field": "orders_count", "operator": "greater_than_or_equal", "value": 3},
            ],
        },
    ],
}
TEST_TARGET_MS = {1.0: 300.0, 10.0: 2000.0}
REFRESH_TARGET_S = 30.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def warehouse(scale: float, url: str | None, replicate: int):
    if url and replicate <= 1:
        yield url
        return
    with scratch_database("cdp_bench_seg") as scratch:
        if url:
            _replicate(url, scratch, replicate)
        else:
            _build(scratch, scale)
        yield scratch


def _build(url: str, scale: float) -> None:
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import VaultKeys
    from orchestration.sources.demo_landing import land_demo
    from orchestration.warehouse.project import ensure_manifest, run_dbt

    ensure_manifest()
    land_demo(
        url,
        seed=42,
        scale=scale,
        as_of=AS_OF,
        keys=VaultKeys.from_master(b"b" * 32),
        blocklist=load_blocklist(),
    )
    run_dbt(["build", "--exclude", "resource_type:test"], url, check=True)


def _replicate(source: str, target: str, times: int) -> None:
    """marts.customer_profiles of ``source`` copied ``times`` times (ids suffixed) into target."""
    from orchestration.runtime import db

    with db.connect(source) as src, db.connect(target) as dst:
        ddl = src.execute(
            "select string_agg(format('%I %s', attname, format_type(atttypid, atttypmod)), ', '"
            " order by attnum) from pg_attribute where attrelid = 'marts.customer_profiles'"
            "::regclass and attnum > 0 and not attisdropped"
        ).fetchone()[0]
        dst.execute(f"create table marts.customer_profiles ({ddl})")
        with src.cursor().copy("copy marts.customer_profiles to stdout") as out:
            data = b"".join(bytes(chunk) for chunk in out)
        for i in range(times):
            with dst.cursor().copy("copy marts.customer_profiles from stdin") as into:
                into.write(data)
            dst.execute(
                "update marts.customer_profiles set customer_id = customer_id || %s"
                " where customer_id not like '%%~%%'",
                (f"~{i}",),
            )
        dst.execute("alter table marts.customer_profiles add primary key (customer_id)")
        dst.execute("analyze marts.customer_profiles")


def once(scale: float, url: str | None, replicate: int, iterations: int) -> dict:
    from orchestration.runtime import db
    from orchestration.segments.catalog import load_catalog
    from orchestration.segments.spec import parse_segment
    from orchestration.segments.tester import evaluate_segment
    from orchestration.segments.views import SEGMENTS_DIR, refresh_all

    spec = parse_segment({"name": "bench", "rules": RULE}, "bench")
    with warehouse(scale, url, replicate) as wh:
        with db.connect(wh, autocommit=True) as conn:
            base = conn.execute("select count(*) from marts.customer_profiles").fetchone()[0]
        in_process, count = [], None
        for _ in range(iterations):
            started = time.perf_counter()
            with db.connect(wh, autocommit=True) as conn:
                result = evaluate_segment(conn, spec, load_catalog(conn, descriptions=False))
            in_process.append((time.perf_counter() - started) * 1000)
            count = result.count
        env = {**os.environ, "CDP_DATABASE_URL": wh}
        rules = json.dumps(RULE)
        command = []
        for _ in range(max(5, iterations // 3)):
            started = time.perf_counter()
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "cdp"),
                    "segment",
                    "test",
                    "--rules",
                    rules,
                    "--json",
                ],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            command.append((time.perf_counter() - started) * 1000)
        with db.connect(wh, autocommit=True) as conn:
            for slug in [p.stem for p in SEGMENTS_DIR.glob("*.yml")]:
                conn.execute(f'drop materialized view if exists segments."{slug}"')
            started = time.perf_counter()
            built, errors = refresh_all(conn, SEGMENTS_DIR, run_id="bench-build")
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            again, _ = refresh_all(conn, SEGMENTS_DIR, run_id="bench-refresh")
            refresh_s = time.perf_counter() - started
    return {
        "scale": scale if not replicate > 1 else float(replicate),
        "profiles": base,
        "members": count,
        "test_in_process_p50_ms": round(statistics.median(in_process), 1),
        "test_in_process_p95_ms": round(pct(in_process, 0.95), 1),
        "test_command_p50_ms": round(statistics.median(command), 1),
        "test_command_p95_ms": round(pct(command, 0.95), 1),
        "build_all_views_s": round(build_s, 2),
        "refresh_all_views_s": round(refresh_s, 2),
        "segments": {r.slug: r.members for r in built},
        "changes_on_unchanged_refresh": sum(r.entered + r.exited for r in again),
        "errors": [str(e) for e in errors],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--url", default="", help="an already built warehouse to measure")
    parser.add_argument("--replicate", type=int, default=1, help="copy --url's profiles N times")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    if args.once:
        print(json.dumps(once(args.scale, args.url or None, args.replicate, args.iterations)))
        return
    extra = [
        "--scale",
        str(args.scale),
        "--iterations",
        str(args.iterations),
        "--replicate",
        str(args.replicate),
    ] + (["--url", args.url] if args.url else [])
    m = median_of(run_isolated(Path(__file__), extra, args.runs))
    scale = m["scale"]
    s = f"scale {scale:g}" + (
        f" (scale-1 profiles x{args.replicate})" if args.replicate > 1 else ""
    )
    test_target = TEST_TARGET_MS.get(scale, 300.0 * max(1.0, scale / 5))
    figures = [
        {
            "figure": f"cdp segment test p95, in-process (connect+catalog+compile+queries), {s}",
            "value": m["test_in_process_p95_ms"],
            "unit": "ms",
            "target": f"<= {test_target:.0f} ms",
            "ok": m["test_in_process_p95_ms"] <= test_target,
        },
        {
            "figure": f"cdp segment test p95, whole command (new process), {s}",
            "value": m["test_command_p95_ms"],
            "unit": "ms",
            "target": f"<= {test_target:.0f} ms",
            "ok": m["test_command_p95_ms"] <= test_target,
        },
        {
            "figure": f"cdp segment test p50 in-process / whole command, {s}",
            "value": f"{m['test_in_process_p50_ms']} / {m['test_command_p50_ms']}",
            "unit": "ms",
        },
        {
            "figure": f"build all five segment views from scratch, {s}",
            "value": m["build_all_views_s"],
            "unit": "s",
            "target": f"<= {REFRESH_TARGET_S:.0f} s",
            "ok": m["build_all_views_s"] <= REFRESH_TARGET_S,
        },
        {
            "figure": f"refresh all five views (concurrently, unchanged data), {s}",
            "value": m["refresh_all_views_s"],
            "unit": "s",
            "target": f"<= {REFRESH_TARGET_S:.0f} s",
            "ok": m["refresh_all_views_s"] <= REFRESH_TARGET_S
            and m["changes_on_unchanged_refresh"] == 0,
        },
    ]
    write_result(f"segments-{scale:g}", figures, m)


if __name__ == "__main__":
    main()
