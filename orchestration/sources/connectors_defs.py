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


def materialize_mixed(
    context, *, url, keys, blocklist, seed, scale, as_of, generate: bool = True
) -> Iterator:
    """Land every source per its mode; one MaterializeResult per raw table. ``generate=False``
    (``cdp run``): sources in demo mode generate nothing, their tables stay as landed."""
    from orchestration.runtime.db import connect
    from orchestration.runtime.schema import ensure_warehouse
    from orchestration.sources.connectors.live import run_live_source
    from orchestration.sources.landing import load_frames

    with connect(url) as conn:
        ensure_warehouse(conn)
    modes = source_modes()
    demo_tables = [t for t in TABLES if modes[t.source] == "demo"] if generate else []
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
        elif mode == "off" or not generate:
            for t in tables:
                yield dg.MaterializeResult(
                    asset_key=_key(t.qualified),
                    metadata={"mode": mode if mode == "off" else "as landed", "rows_loaded": 0},
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


def land_imports(context, *, url, keys, blocklist) -> dict[str, dict]:
    """The shop CSV exports waiting in CDP_IMPORT_DIR, imported (each file once); per raw table
    the rows added and the files that added them, for the asset metadata."""
    from orchestration.runtime.db import connect
    from orchestration.runtime.schema import ensure_warehouse
    from orchestration.sources.imports.importer import sync_import_dir
    from orchestration.sources.imports.values import DateRules

    cfg = connector_settings()
    if cfg.import_dir is None:
        return {}
    with connect(url) as conn:
        ensure_warehouse(conn)
    rules = DateRules(cfg.import_timezone, cfg.import_date_format)
    reports = sync_import_dir(
        url, cfg.import_dir, rules, keys=keys, blocklist=blocklist, log=context.log.info
    )
    out: dict[str, dict] = {}
    for r in reports:
        for table, rows in r.landed.items():
            entry = out.setdefault(table, {"imported_rows": 0, "imported_files": []})
            entry["imported_rows"] += rows
            entry["imported_files"].append(r.path.name)
    return out


def with_imports(result: dg.MaterializeResult, imported: dict[str, dict]) -> dg.MaterializeResult:
    """A raw table's result with what the import drop folder added to it."""
    got = imported.get(".".join(result.asset_key.path))
    if not got:
        return result
    return dg.MaterializeResult(
        asset_key=result.asset_key,
        metadata={
            **(result.metadata or {}),
            "imported_rows": got["imported_rows"],
            "imported_files": ", ".join(got["imported_files"]),
        },
    )
