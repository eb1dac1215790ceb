"""Dagster wiring for the sources domain: the demo generator lands every raw table, or, per
source, a live connector (``CDP_SOURCES=live`` or ``CDP_SOURCE_SHOPIFY=live|demo|off``; see
``connectors_defs``)."""
# no `from __future__ import annotations`: Dagster resolves config/resource annotations at runtime

import dagster as dg

from orchestration.resources import WarehouseResource
from orchestration.runtime.settings import settings, today_utc
from orchestration.sources.connectors_defs import (
    all_demo,
    land_imports,
    materialize_mixed,
    with_imports,
)
from orchestration.sources.demo_landing import land_demo
from orchestration.sources.schemas import TABLES


def raw_asset_key(qualified: str) -> dg.AssetKey:
    """raw_shopify.customers -> AssetKey(["raw_shopify", "customers"]) — the key dagster-dbt gives
    the matching dbt source, so lineage from raw tables into dbt models is real."""
    return dg.AssetKey(qualified.split("."))


BLOCKED_VALUES = dg.AssetKey(["pii", "blocked_values"])


class DemoSourcesConfig(dg.Config):
    seed: int = -1  # -1: CDP_DEMO_SEED (default 42)
    scale: float = -1.0  # -1: CDP_DEMO_SCALE (default 1)
    as_of: str = ""  # YYYY-MM-DD; empty: CDP_DEMO_AS_OF, else today (UTC)
    next_day: bool = False  # append one more day of activity after what is loaded
    # false (`cdp run`): build from what is landed; sources in demo mode generate nothing
    generate_demo: bool = True


@dg.multi_asset(
    name="demo_sources",
    group_name="sources",
    specs=[
        dg.AssetSpec(
            raw_asset_key(t.qualified),
            description=f"Raw {t.source} {t.entity} as the source delivers them (PII as blind "
            "indexes; plaintext encrypted in pii.vault).",
            kinds={"postgres"},
            metadata={"dagster/table_name": t.qualified},
        )
        for t in TABLES
    ]
    + [
        dg.AssetSpec(
            BLOCKED_VALUES,
            description="Blind indexes of junk identifier values (identity blocklist) seen at "
            "ingestion; identity resolution links nothing through them.",
            kinds={"postgres"},
            metadata={"dagster/table_name": "pii.blocked_values"},
        )
    ],
    description="Synthetic DTC skincare brand: generates and lands every raw source table.",
)
def demo_sources(
    context: dg.AssetExecutionContext, config: DemoSourcesConfig, warehouse: WarehouseResource
):
    cfg = settings()
    seed = config.seed if config.seed >= 0 else cfg.demo_seed
    scale = config.scale if config.scale > 0 else cfg.demo_scale
    from datetime import date

    as_of = date.fromisoformat(config.as_of) if config.as_of else (cfg.demo_as_of or today_utc())
    # shop CSV exports dropped in CDP_IMPORT_DIR land first, whatever the sources' modes
    imported = land_imports(
        context, url=warehouse.url(), keys=warehouse.vault_keys(), blocklist=warehouse.blocklist()
    )
    if not config.generate_demo or not all_demo():
        # CDP_SOURCES / CDP_SOURCE_<NAME> switched some source to live or off, or `cdp run`
        for result in materialize_mixed(
            context,
            url=warehouse.url(),
            keys=warehouse.vault_keys(),
            blocklist=warehouse.blocklist(),
            seed=seed,
            scale=scale,
            as_of=as_of,
            generate=config.generate_demo,
        ):
            yield with_imports(result, imported)
        return
    summary = land_demo(
        warehouse.url(),
        seed=seed,
        scale=scale,
        as_of=as_of,
        keys=warehouse.vault_keys(),
        blocklist=warehouse.blocklist(),
        next_day=config.next_day,
        log=context.log.info,
        cache_dir=settings().home / "cache",
    )
    by_table = {r.table: r for r in summary.results}
    for t in TABLES:
        r = by_table.get(t.qualified)
        if r is None:
            continue
        yield with_imports(
            dg.MaterializeResult(
                asset_key=raw_asset_key(t.qualified),
                metadata={
                    "batch_id": r.batch_id,
                    "rows_received": r.received,
                    "rows_loaded": 0 if r.skipped else r.loaded,
                    "rows_rejected": r.rejected,
                    "skipped_as_duplicate": r.skipped,
                    "seconds": round(r.seconds, 2),
                    "mode": summary.mode,
                    "as_of": str(summary.as_of),
                    "loaded_through": str(summary.loaded_through),
                },
            ),
            imported,
        )

    with warehouse.connect() as conn:
        blocked = dict(
            conn.execute(
                "select pii_type, count(*) from pii.blocked_values group by 1 order by 1"
            ).fetchall()
        )
    yield dg.MaterializeResult(
        asset_key=BLOCKED_VALUES,
        metadata={f"blocked_{k}_values": v for k, v in blocked.items()} or {"blocked": 0},
    )


defs = dg.Definitions(assets=[demo_sources])
