"""Day two: the nightly next-day refresh against the full build, end to end through Dagster, in
the same run. Target at scale 10: the next-day refresh takes at most 20% of the full build.

    python benchmarks/bench_nextday.py --scale 1 --days 3
    python benchmarks/bench_nextday.py --scale 10 --days 2

One fresh process per scale: a scratch warehouse database (Dagster's run storage in it too), a
temporary CDP_HOME. It runs `cdp_pipeline` as `cdp demo` does (ingest -> dbt -> churn -> segments,
then the export sensor's runs), then `--next-day` `--days` times, and reports wall time and time
per stage (from Dagster's step statistics) for the full build and the median next day.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mib, pipeline_environment, write_result  # noqa: E402

AS_OF = "2026-11-20"
TARGET_RATIO = 0.20
STAGES = ("ingest", "dbt", "churn", "segments", "exports", "other")


def stage_of(step_key: str) -> str:
    """The stage a step belongs to, as `cdp status` counts it (its "sources" is ingest here)."""
    from orchestration.status import stage_of as status_stage

    stage = status_stage(step_key)
    return "ingest" if stage == "sources" else stage if stage in STAGES else "other"


def timed_run(next_day: bool, scale: float) -> dict:
    import dagster as dg

    from orchestration.pipeline import run_pipeline

    started = time.perf_counter()
    result = run_pipeline(seed=42, scale=scale, as_of=AS_OF, next_day=next_day)
    wall = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"pipeline failed: {result.notes}")
    stages = dict.fromkeys(STAGES, 0.0)
    with dg.DagsterInstance.get() as instance:
        for s in instance.get_run_step_stats(result.run_id):
            stages[stage_of(s.step_key)] += (s.end_time or 0) - (s.start_time or 0)
        run = instance.get_run_record_by_id(result.run_id)
        pipeline_s = run.end_time - run.start_time
        exports = instance.get_run_records(
            dg.RunsFilter(job_name="segment_export", created_after=run.create_timestamp)
        )
        stages["exports"] = sum((r.end_time or 0) - (r.start_time or 0) for r in exports)
    # what the steps do not account for: Dagster's own start-up, the run's bookkeeping
    stages["other"] += max(0.0, pipeline_s - sum(v for k, v in stages.items() if k != "exports"))
    return {"wall_s": round(wall, 2), **{f"{k}_s": round(v, 2) for k, v in stages.items()}}


def once(scale: float, days: int) -> dict:
    with pipeline_environment("cdp_bench_nextday"):
        full = timed_run(False, scale)
        print(f"  full: {full}", file=sys.stderr)
        nexts = []
        for day in range(days):
            nexts.append(timed_run(True, scale))
            print(f"  next day {day + 1}: {nexts[-1]}", file=sys.stderr)
    median = {k: round(statistics.median(n[k] for n in nexts), 2) for k in full}
    return {
        "scale": scale,
        "days": days,
        "full": full,
        "next_day_median": median,
        "next_days": nexts,
        "ratio": round(median["wall_s"] / full["wall_s"], 4),
        "peak_rss_mib": round(peak_rss_mib()),
    }


def stages_text(run: dict) -> str:
    return ", ".join(f"{k} {run[f'{k}_s']:.1f}" for k in STAGES)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    r = once(args.scale, args.days)
    if args.once:
        print(json.dumps(r))
        return
    scale = f"scale {args.scale:g}"
    target = f"<= {TARGET_RATIO:.0%}" if args.scale >= 10 else ""
    figures = [
        {
            "figure": f"next-day refresh / full build, wall (median of {args.days} days), {scale}",
            "value": f"{r['ratio']:.1%} ({r['next_day_median']['wall_s']:.1f} s / "
            f"{r['full']['wall_s']:.1f} s)",
            "unit": "",
            "target": target,
            "ok": (r["ratio"] <= TARGET_RATIO) if target else None,
        },
        {
            "figure": f"full build per stage (s), {scale}",
            "value": stages_text(r["full"]),
            "unit": "",
            "target": "",
            "ok": None,
        },
        {
            "figure": f"next-day refresh per stage (s, median), {scale}",
            "value": stages_text(r["next_day_median"]),
            "unit": "",
            "target": "",
            "ok": None,
        },
        {
            "figure": f"peak memory, full build + next days, {scale}",
            "value": r["peak_rss_mib"],
            "unit": "MiB",
            "target": "",
            "ok": None,
        },
    ]
    name = f"nextday-{args.scale:g}"
    print(write_result(name, figures, r), file=sys.stderr)


if __name__ == "__main__":
    main()
