"""Dagster side of the live connectors: which source runs live, and the metadata a live run
reports. The raw asset keys stay with the ``demo_sources`` multi-asset (two assets cannot produce
one key); for sources switched to live (``CDP_SOURCES`` / ``CDP_SOURCE_<NAME>``) it calls
``run_live_source`` here instead of the generator, and for sources switched ``off`` it reports
the table unchanged."""
# no `from __future__ import annotations`: Dagster resolves annotations at runtime

from collections.abc import Iterator

import dagster as dg

from orchestration.sources.connectors.config import LIVE_SOURCES, connector_settings
from orchestration.sources.schemas import BY_NAME, TABLES


def source_modes() -> dict[str, str]:
    """source -> demo | live | off, from the connector settings (read once)."""
    return {s: connector_settings().mode(s) for s in LIVE_SOURCES}


def all_demo() -> bool:
    return all(m == "demo" for m in source_modes().values())


def _key(qualified: str) -> dg.AssetKey:
    return dg.AssetKey(qualified.split("."))


def materialize_mixed(context, *, url, keys, blocklist, seed, scale, as_of) -> Iterator:
    """Land every source per its mode; one MaterializeResult per raw table."""
    from orchestration.runtime.db import connect
    from orchestration.runtime.schema import ensure_warehouse
    from orchestration.sources.connectors.live import run_live_source
    from orchestration.sources.landing import load_frames

    with connect(url) as conn:
        ensure_warehouse(conn)
    modes = source_modes()
    demo_tables = [t for t in TABLES if modes[t.source] == "demo"]
    demo_results = {}
    if demo_tables:
        from orchestration.sources.demo import DemoConfig, generate_demo

        data = generate_demo(DemoConfig(seed=seed, scale=scale, as_of=as_of))
        frames = [(BY_NAME[t.qualified], data.tables[t.qualified]) for t in demo_tables]
        for r in load_frames(url, frames, keys=keys, blocklist=blocklist):
            demo_results[r.table] = r
    for source in LIVE_SOURCES:
        mode = modes[source]
        tables = [t for t in TABLES if t.source == source]
        if mode == "live":
            run = run_live_source(source, url, keys, blocklist, log=context.log.info)
            by_table = {r.table: r for r in run.results}
            meta = run.metadata()
            for t in tables:
                r = by_table.get(t.qualified)
                yield dg.MaterializeResult(
                    asset_key=_key(t.qualified),
                    metadata={
                        **meta,
                        "rows_received": r.received if r else 0,
                        "rows_loaded": r.loaded if r else 0,
                        "rows_rejected": r.rejected if r else 0,
                    },
                )
        elif mode == "off":
            for t in tables:
                yield dg.MaterializeResult(
                    asset_key=_key(t.qualified), metadata={"mode": "off", "rows_loaded": 0}
                )
        else:
            for t in tables:
                r = demo_results[t.qualified]
                yield dg.MaterializeResult(
                    asset_key=_key(t.qualified),
                    metadata={
                        "mode": "demo",
                        "batch_id": r.batch_id,
                        "rows_received": r.received,
                        "rows_loaded": 0 if r.skipped else r.loaded,
                        "rows_rejected": r.rejected,
                    },
                )
