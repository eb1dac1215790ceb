"""Scale 30 (300,000+ profiles) end to end: generate + land, dbt build, churn, segments, through
Dagster as `cdp demo` runs them, with wall time and memory per stage. Targets: completes on this
2-core, 24 GiB machine with peak RSS <= 8 GiB, and every stage at most linear in the data
(scale 30 <= 3.3x scale 10).

    python benchmarks/bench_scale30.py --scale 10
    python benchmarks/bench_scale30.py --scale 30   # check `free -g` first: >= 14 GiB available

One fresh process per scale: a scratch warehouse database (Dagster's run storage in it too), a
temporary CDP_HOME; `cdp_pipeline` runs once (the full build) and its stages are timed from
Dagster's step statistics. A sampler thread reads memory once a second: the RSS of this process
(the pipeline runs in it: landing, churn, segments), of its child processes (dbt) and the
proportional set size of the PostgreSQL server's processes (its shared buffers counted once);
each stage's peak is the largest sample within its steps' time span. Results for every scale
run so far are kept in results/scale30.json (runs by scale), so the scale-30 figures carry their
ratio to scale 10. Not in `make bench` (it takes the better part of an hour at scale 30).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nextday import stage_of  # noqa: E402
from common import RESULTS, peak_rss_mib, pipeline_environment, write_result  # noqa: E402

AS_OF = "2026-11-20"
NAME = "scale30"
PEAK_TARGET_MIB = 8 * 1024
LINEAR = 3.3  # scale 30 / scale 10, per stage
STAGES = ("ingest", "dbt", "churn", "segments", "exports", "other")


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(tree: dict[int, list[int]], pid: int) -> list[int]:
    out, todo = [], list(tree.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def postmaster_pid(url: str) -> int | None:
    """The embedded server's postmaster (its socket directory is its data directory); None for a
    server elsewhere, whose memory this benchmark cannot see."""
    from urllib.parse import parse_qs, urlsplit

    host = parse_qs(urlsplit(url).query).get("host", [urlsplit(url).hostname or ""])[0]
    pidfile = Path(host) / "postmaster.pid"
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Sampler(threading.Thread):
    """(time, own RSS, children's RSS, server PSS) in MiB, once a second."""

    def __init__(self, postmaster: int | None, every: float = 1.0):
        super().__init__(daemon=True)
        self.postmaster, self.every = postmaster, every
        self.samples: list[tuple[float, float, float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.done.is_set():
            tree = _children()
            kids = sum(_rss_kib(p) for p in _descendants(tree, me))
            server = 0
            if self.postmaster:
                pids = [self.postmaster, *_descendants(tree, self.postmaster)]
                server = sum(_pss_kib(p) for p in pids)
            self.samples.append((time.time(), _rss_kib(me) / 1024, kids / 1024, server / 1024))
            self.done.wait(self.every)

    def peaks(self, spans: list[tuple[float, float]]) -> dict:
        inside = [s for s in self.samples if any(a - 1 <= s[0] <= b + 1 for a, b in spans)]
        if not inside:
            return {"process_mib": 0, "children_mib": 0, "server_mib": 0}
        return {
            "process_mib": round(max(s[1] for s in inside)),
            "children_mib": round(max(s[2] for s in inside)),
            "server_mib": round(max(s[3] for s in inside)),
        }


def run_once(scale: float) -> dict:
    import dagster as dg

    from orchestration.pipeline import run_pipeline
    from orchestration.runtime import db

    with pipeline_environment("cdp_bench_scale30") as (url, _home):
        sampler = Sampler(postmaster_pid(url))
        sampler.start()
        started = time.perf_counter()
        result = run_pipeline(seed=42, scale=scale, as_of=AS_OF, next_day=False)
        wall = time.perf_counter() - started
        # a failed step is recorded with what the stages before it measured
        failure = "" if result.success else "; ".join(result.notes)[:500]
        spans: dict[str, list[tuple[float, float]]] = {s: [] for s in STAGES}
        with dg.DagsterInstance.get() as instance:
            for s in instance.get_run_step_stats(result.run_id):
                if s.start_time and s.end_time:
                    spans[stage_of(s.step_key)].append((s.start_time, s.end_time))
            run = instance.get_run_record_by_id(result.run_id)
            exports = instance.get_run_records(
                dg.RunsFilter(job_name="segment_export", created_after=run.create_timestamp)
            )
            spans["exports"] = [(r.start_time, r.end_time) for r in exports if r.end_time]
            pipeline_s = run.end_time - run.start_time
        sampler.done.set()
        sampler.join()
        seconds = {k: sum(b - a for a, b in v) for k, v in spans.items()}
        seconds["other"] += max(0.0, pipeline_s - sum(seconds[k] for k in STAGES[:-2]))
        counts = dict(result.row_counts)
        with db.connect(url) as conn:
            raw_rows = conn.execute("select sum(rows_loaded) from ops.load_batches").fetchone()[0]
            customers = 0
            if db.table_exists(conn, "marts.customers"):
                customers = conn.execute("select count(*) from marts.customers").fetchone()[0]
    stages = {
        k: {"seconds": round(seconds[k], 1), **sampler.peaks(spans[k])} for k in STAGES if spans[k]
    }
    stages["other"] = {"seconds": round(seconds["other"], 1)}
    return {
        "scale": scale,
        "ok": result.success,
        "failure": failure,
        "wall_s": round(wall, 1),
        "stages": stages,
        "peak_rss_mib": round(peak_rss_mib()),
        "peak_children_mib": round(max((s[2] for s in sampler.samples), default=0)),
        "peak_server_mib": round(max((s[3] for s in sampler.samples), default=0)),
        "raw_rows": int(raw_rows or 0),
        "customers": customers,
        "row_counts": counts,
    }


def _stages_text(run: dict, key: str, fmt: str) -> str:
    return ", ".join(
        f"{k} {fmt.format(v[key])}" for k, v in run["stages"].items() if v.get(key) is not None
    )


def figures_for(runs: dict[str, dict]) -> list[dict]:
    out = []
    for key in sorted(runs, key=float):
        r = runs[key]
        s = f"scale {float(key):g} ({r['customers']:,} profiles, {r['raw_rows']:,} raw rows)"
        peak = max(r["peak_rss_mib"], *(v.get("children_mib", 0) for v in r["stages"].values()))
        worst = max(
            (k for k in r["stages"] if "process_mib" in r["stages"][k]),
            key=lambda k: r["stages"][k]["process_mib"],
        )
        sc = f"scale {float(key):g}"
        big = float(key) >= 30
        out += [
            {
                "figure": f"end to end wall, {s}",
                "value": r["wall_s"] if r.get("ok", True) else f"failed: {r['failure'][:160]}",
                "unit": "s" if r.get("ok", True) else "",
                "target": "completes" if big else "",
                "ok": r.get("ok", True) if big else None,
            },
            {"figure": f"per stage (s), {sc}", "value": _stages_text(r, "seconds", "{:.1f}")},
            {
                "figure": f"peak RSS (largest process: pipeline or dbt), {sc}",
                "value": f"{peak} MiB (highest stage: {worst})",
                "unit": "",
                "target": f"<= {PEAK_TARGET_MIB} MiB" if big else "",
                "ok": (peak <= PEAK_TARGET_MIB) if big else None,
            },
            {
                "figure": f"peak RSS of the pipeline process per stage (MiB), {sc}",
                "value": _stages_text(r, "process_mib", "{}"),
            },
            {
                "figure": f"PostgreSQL server memory (PSS, MiB) per stage, {sc}",
                "value": _stages_text(r, "server_mib", "{}"),
            },
        ]
    if "10" in runs and "30" in runs:
        a, b = runs["10"]["stages"], runs["30"]["stages"]
        ratios = {k: b[k]["seconds"] / a[k]["seconds"] for k in a if k in b and a[k]["seconds"]}
        main = ("ingest", "dbt", "churn", "segments")
        out.append(
            {
                "figure": "scale 30 / scale 10 time per stage",
                "value": ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()),
                "unit": "",
                "target": f"<= {LINEAR}x each (ingest, dbt, churn, segments)",
                "ok": all(ratios.get(k, 0) <= LINEAR for k in main),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=10.0)
    args = parser.parse_args()
    run = run_once(args.scale)
    print(json.dumps(run), file=sys.stderr)
    path = RESULTS / f"{NAME}.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else {}
    runs[f"{args.scale:g}"] = run
    print(write_result(NAME, figures_for(runs), runs), file=sys.stderr)


if __name__ == "__main__":
    main()
