"""Run one live source end to end: the entry point the Dagster ``sources`` assets call.

``land_live_source(source, url, keys, blocklist, log)`` returns one ``LoadResult`` per raw table;
``run_live_source`` also returns what the run did (records fetched, pages, throttle waits, new
cursors) for the asset's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from orchestration.errors import CdpError
from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys
from orchestration.sources.connectors import state
from orchestration.sources.connectors.config import ConnectorSettings, connector_settings
from orchestration.sources.landing import LoadResult


@dataclass
class LiveRun:
    source: str
    results: list[LoadResult] = field(default_factory=list)
    streams: list[state.StreamStats] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        out: dict = {"mode": "live", **self.extra}
        for s in self.streams:
            for k, v in s.as_metadata().items():
                out[f"{s.stream}.{k}"] = v
        return out


def run_live_source(
    source: str,
    url: str,
    keys: VaultKeys,
    blocklist: Blocklist,
    log: Callable[[str], None] = lambda msg: None,
    cfg: ConnectorSettings | None = None,
) -> LiveRun:
    cfg = cfg or connector_settings()
    run = LiveRun(source)
    if source in ("shopify", "klaviyo"):
        if source == "shopify":
            from orchestration.sources.connectors import shopify as mod

            sync = mod.sync_shopify
        else:
            from orchestration.sources.connectors import klaviyo as mod

            sync = mod.sync_klaviyo
        with mod.client_from_settings(cfg, log=log) as client:
            run.streams = sync(url, client, keys=keys, blocklist=blocklist, log=log)
            run.extra.update(client.stats.as_metadata())
    elif source == "ga4":
        from orchestration.sources.connectors.ga4_files import sync_ga4

        if cfg.ga4_export_dir is None:
            raise CdpError("the GA4 connector is live but CDP_GA4_EXPORT_DIR is not set")
        stream, g = sync_ga4(url, cfg.ga4_export_dir, keys=keys, blocklist=blocklist, log=log)
        run.streams = [stream]
        run.extra.update(
            shards_loaded=g.shards_loaded,
            shards_skipped=g.shards_skipped,
            intraday_replaced=g.intraday_replaced,
        )
    elif source in ("helpdesk", "subscriptions"):
        from orchestration.sources.connectors.csv_drops import ENV_VARS, sync_drops

        directory = cfg.helpdesk_drop_dir if source == "helpdesk" else cfg.subscriptions_drop_dir
        if directory is None:
            raise CdpError(f"the {source} connector is live but {ENV_VARS[source]} is not set")
        stream, d = sync_drops(url, source, directory, keys=keys, blocklist=blocklist, log=log)
        run.streams = [stream]
        run.extra.update(
            files_loaded=d.files_loaded,
            files_skipped=d.files_skipped,
            files_ignored=", ".join(d.ignored),
        )
    else:
        raise CdpError(
            f"unknown source {source!r}; live sources: shopify, klaviyo, ga4, "
            "helpdesk, subscriptions"
        )
    run.results = state.merge_results([r for s in run.streams for r in s.results])
    return run


def land_live_source(
    source: str,
    url: str,
    keys: VaultKeys,
    blocklist: Blocklist,
    log: Callable[[str], None] = lambda msg: None,
) -> list[LoadResult]:
    return run_live_source(source, url, keys, blocklist, log).results
