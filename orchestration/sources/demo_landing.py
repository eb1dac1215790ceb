"""Land the demo generator's data: a full history, or the next day of activity.

Plain Python (no Dagster): the ``demo_sources`` asset and ``cdp demo`` both call ``land_demo``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg

from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.runtime.db import connect, copy_csv, frame_chunks
from orchestration.runtime.schema import ensure_warehouse
from orchestration.sources.landing import LoadResult, load_frames
from orchestration.sources.schemas import BY_NAME, TABLES

RAW_SCHEMAS = tuple(dict.fromkeys(t.schema for t in TABLES))


@dataclass
class DemoLandingSummary:
    mode: str  # full | next_day | unchanged
    seed: int
    scale: float
    as_of: date
    loaded_through: date
    results: list[LoadResult] = field(default_factory=list)
    generate_seconds: float = 0.0
    load_seconds: float = 0.0
    persons: int = 0

    @property
    def rows_loaded(self) -> int:
        return sum(r.loaded for r in self.results if not r.skipped)

    @property
    def rows_received(self) -> int:
        return sum(r.received for r in self.results)


def demo_state(conn: psycopg.Connection) -> tuple | None:
    return conn.execute(
        "select seed, scale, as_of, loaded_through from ops.demo_state where id = 1"
    ).fetchone()


def reset_raw(conn: psycopg.Connection) -> None:
    """Empty the raw landing tables, their batches, the vault and the demo truth."""
    with conn.transaction():
        for t in TABLES:
            conn.execute(f"truncate {t.qualified}")
        conn.execute(
            "truncate ops.load_batches, ops.rejected_records, pii.vault, pii.blocked_values, "
            "demo_truth.persons, demo_truth.identities, ops.demo_state"
        )


def land_demo(
    url: str,
    *,
    seed: int,
    scale: float,
    as_of: date,
    keys: VaultKeys,
    blocklist: Blocklist,
    next_day: bool = False,
    log=lambda msg: None,
    cache_dir: Path | None = None,
    chunk: float | None = None,
) -> DemoLandingSummary:
    """Generate and land the demo. ``next_day`` appends one more day after what was loaded.

    A full run over data generated with other parameters (seed, scale, as-of) first resets the
    raw tables: demo ids are deterministic per seed, so two data sets must not mix. A full run
    with the same parameters adds nothing (every batch is recognised and skipped). ``cache_dir``:
    where the simulation is kept for the next days (``generate.cached_simulation``). ``chunk``:
    the population's shard size (``DemoConfig.chunk``; tests and benchmarks) — not recorded in
    ``ops.demo_state``, so next days must pass the full load's."""
    with connect(url) as conn:
        return _land_demo(
            conn, url, seed, scale, as_of, keys, blocklist, next_day, log, cache_dir, chunk
        )


def _land_demo(conn, url, seed, scale, as_of, keys, blocklist, next_day, log, cache_dir, chunk):
    from orchestration.sources.demo import DemoConfig, generate_demo, iter_demo
    from orchestration.sources.demo.config import CHUNK_SCALE

    chunk = chunk or CHUNK_SCALE

    ensure_warehouse(conn)
    conn.commit()
    state = demo_state(conn)
    if next_day:
        if state is None:
            raise_no_state()
        seed, scale, as_of, loaded_through = state
        cfg = DemoConfig(
            seed=seed,
            scale=scale,
            as_of=as_of,
            since=loaded_through,
            through=loaded_through + timedelta(days=1),
            chunk=chunk,
        )
        mode, through = "next_day", loaded_through + timedelta(days=1)
    else:
        if state is not None and tuple(state[:3]) != (seed, scale, as_of):
            log(f"demo parameters changed from {state[:3]} — resetting the raw tables")
            reset_raw(conn)
            state = None
        cfg = DemoConfig(seed=seed, scale=scale, as_of=as_of, chunk=chunk)
        mode, through = "full", as_of
        if state is not None and state[3] > as_of:
            through = state[3]  # next days were appended since: keep them
    summary = DemoLandingSummary(mode, seed, scale, as_of, through)
    # A full history is generated and landed one shard of the population at a time (memory
    # follows the shard, not the scale); a next day is small, its shards are landed together.
    shards = cfg.shards()
    parts = iter_demo(cfg, cache_dir) if not next_day else iter([generate_demo(cfg, cache_dir)])
    by_table: dict[str, list[LoadResult]] = {}
    t0 = time.perf_counter()
    for i, data in enumerate(parts):
        summary.generate_seconds += time.perf_counter() - t0
        t1 = time.perf_counter()
        results = load_frames(
            url,
            [(BY_NAME[name], frame) for name, frame in data.tables.items()],
            keys=keys,
            blocklist=blocklist,
        )
        _land_truth(conn, data.truth, replace=not next_day and i == 0)
        conn.commit()
        summary.load_seconds += time.perf_counter() - t1
        for r in results:
            by_table.setdefault(r.table, []).append(r)
        if len(shards) > 1 and not next_day:
            got, new = sum(r.received for r in results), sum(r.loaded for r in results)
            log(f"shard {i + 1}/{len(shards)}: {got:,} rows, {new:,} new")
        del data, results  # before the next shard is generated
        t0 = time.perf_counter()
    summary.results = [_combined(rs) for rs in by_table.values()]
    log(
        f"generated {summary.rows_received:,} rows in {summary.generate_seconds:.1f}s, "
        f"landed in {summary.load_seconds:.1f}s"
    )
    for result in summary.results:
        verb = "unchanged" if result.skipped else f"loaded {result.loaded:,}"
        log(f"{result.table}: {verb} ({result.rejected} rejected) in {result.seconds:.1f}s")
    t1 = time.perf_counter()
    summary.persons = conn.execute("select count(*) from demo_truth.persons").fetchone()[0]
    conn.execute(
        "insert into ops.demo_state (id, seed, scale, as_of, loaded_through) "
        "values (1, %s, %s, %s, %s) on conflict (id) do update set seed = excluded.seed, "
        "scale = excluded.scale, as_of = excluded.as_of, loaded_through = "
        "greatest(ops.demo_state.loaded_through, excluded.loaded_through), updated_at = now()",
        (seed, scale, as_of, through),
    )
    conn.commit()
    summary.load_seconds += time.perf_counter() - t1
    if not next_day and all(r.skipped for r in summary.results):
        summary.mode = "unchanged"
    return summary


def _combined(parts: list[LoadResult]) -> LoadResult:
    """One table's results over the shards."""
    return LoadResult.combined(parts[0].table, parts)


def raise_no_state():
    from orchestration.errors import CdpError

    raise CdpError("no demo data loaded yet: run `cdp demo` (a full load) before --next-day")


def _land_truth(conn: psycopg.Connection, truth: dict, *, replace: bool) -> None:
    """Ground truth for evaluating identity resolution and personas (no model reads it)."""
    with conn.transaction():
        for name, frame in truth.items():
            if replace:
                conn.execute(f"truncate {name}")
            if not len(frame):
                continue
            tmp = "tmp_" + name.replace(".", "_")
            conn.execute(f"create temp table {tmp} (like {name}) on commit drop")
            copy_csv(conn, tmp, frame.columns, frame_chunks(frame))
            cols = ", ".join(frame.columns)
            conn.execute(
                f"insert into {name} ({cols}) select {cols} from {tmp} on conflict do nothing"
            )
