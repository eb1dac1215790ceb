"""Shared benchmark plumbing: a scratch database, machine facts, results files, the README table.

Each measurement runs in its own process (so peak RSS is that run's), several times; the
reported figure is the median, since this machine is shared and noisy."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"
sys.path.insert(0, str(ROOT))


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = f"{platform.machine()} {os.cpu_count()} cores {mem_gib:.0f} GiB"
    return f"{cpu}, Python {platform.python_version()}"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def scratch_database(prefix: str = "cdp_bench"):
    """A fresh database on the warehouse server (embedded unless CDP_DATABASE_URL); dropped."""
    import psycopg

    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse

    server = db.with_database(db.warehouse_url(), "postgres")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = db.with_database(server, name)
    try:
        with db.connect(url) as conn:
            ensure_warehouse(conn)
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def pipeline_environment(prefix: str):
    """A scratch warehouse and a temporary CDP_HOME whose Dagster instance keeps its run storage
    in that warehouse (dagster-postgres), as a deployment does; the environment points at both.
    Yields (url, home)."""
    import tempfile

    from orchestration.runtime.settings import settings

    with scratch_database(prefix) as url, tempfile.TemporaryDirectory() as home:
        dagster_home = Path(home) / "dagster"
        dagster_home.mkdir()
        storage = url.replace("postgresql://", "postgresql+psycopg2://", 1)
        (dagster_home / "dagster.yaml").write_text(
            json.dumps({"storage": {"postgres": {"postgres_url": storage}},
                        "telemetry": {"enabled": False}})
        )  # fmt: skip
        os.environ.update(
            {"CDP_DATABASE_URL": url, "CDP_HOME": home, "DAGSTER_HOME": str(dagster_home)}
        )
        settings.cache_clear()
        yield url, home


def run_isolated(script: Path, args: list[str], runs: int) -> list[dict]:
    """Run ``script --once args`` ``runs`` times, each in a fresh process; parse its JSON line."""
    out = []
    for i in range(runs):
        proc = subprocess.run(
            [sys.executable, "-W", "ignore", str(script), "--once", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{script.name} run {i + 1} failed:\n{proc.stderr[-3000:]}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  run {i + 1}/{runs}: {out[-1]}", file=sys.stderr)
    return out


def median_of(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    med.update({k: v for k, v in runs[0].items() if k not in med})
    return med


def write_result(name: str, figures: list[dict], raw: list[dict] | dict) -> Path:
    """figures: [{figure, value, unit, target, ok}] — what the README table shows."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "figures": figures,
        "runs": raw,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    update_readme()
    return path


def update_readme() -> None:
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        for f in data["figures"]:
            mark = "yes" if f.get("ok") else ("—" if f.get("ok") is None else "**no**")
            rows.append(
                f"| {data['benchmark']} | {f['figure']} | {f['value']} {f.get('unit', '')} | "
                f"{f.get('target', '')} | {mark} | {data['machine']} | {data['date']} |"
            )
    text = README.read_text() if README.exists() else ""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    table = "\n".join(
        [
            start,
            "| benchmark | figure (median) | value | target | meets | machine | date |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            end,
        ]
    )
    if start in text and end in text:
        text = text[: text.index(start)] + table + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + table + "\n"
    README.write_text(text)
