"""All five sources through their live connectors (fake Shopify and Klaviyo servers, GA4 export
files, helpdesk and subscription CSV drops), then `dbt build`: every mart must be identical, row
for row, to the build over the same data landed by the generator. This is what "a brand can point
CDP Lite at its own store" means: the connectors are not a second, subtly different data set.
"""

from __future__ import annotations

import gzip
from collections import Counter

import pytest
from fakes.klaviyo import FakeKlaviyo
from fakes.shopify import FakeShopify
from test_api_connectors import API_KEY, TOKEN
from test_file_connectors import export_rows, write_csv

from orchestration.runtime import db
from orchestration.sources.connectors.config import load_connector_settings
from orchestration.sources.connectors.live import run_live_source
from orchestration.warehouse.project import run_dbt

SOURCES = ("shopify", "klaviyo", "ga4", "helpdesk", "subscriptions")
# marts whose rows derive only from source data (no load timestamps, no now())
MARTS = (
    "customers",
    "customer_identities",
    "customer_contacts",
    "customer_timeline",
    "customer_profiles",
    "orders",
    "churn_features",
    "metrics_daily",
    "overview",
)


def write_exports(tables, root) -> dict[str, str]:
    """The demo data set as the files a brand's exports would drop; the env vars naming them."""
    ga4, helpdesk, subs = root / "ga4", root / "helpdesk", root / "subscriptions"
    for d in (ga4, helpdesk, subs):
        d.mkdir()
    events = tables["raw_ga4.events"]
    by_day: dict[str, list[bytes]] = {}
    for day, line in zip(events["event_date"], export_rows(events), strict=True):
        by_day.setdefault(day, []).append(line)
    for day, lines in by_day.items():
        (ga4 / f"events_{day}.json.gz").write_bytes(gzip.compress(b"\n".join(lines), 1))
    for entity in ("tickets", "requesters"):
        write_csv(tables[f"raw_helpdesk.{entity}"], helpdesk / f"{entity}.csv")
    for entity in ("customers", "subscriptions", "events"):
        write_csv(tables[f"raw_subscriptions.{entity}"], subs / f"{entity}_export.csv")
    return {
        "CDP_GA4_EXPORT_DIR": str(ga4),
        "CDP_HELPDESK_DROP_DIR": str(helpdesk),
        "CDP_SUBSCRIPTIONS_DROP_DIR": str(subs),
    }


def mart_rows(url: str, mart: str) -> Counter:
    with db.connect(url) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = %s order by ordinal_position",
                (mart,),
            )
        ]
        assert cols, f"marts.{mart} was not built"
        sel = ", ".join(f'"{c}"::text' for c in cols)
        return Counter(conn.execute(f"select {sel} from marts.{mart}").fetchall())


@pytest.mark.e2e
def test_live_connectors_build_the_same_warehouse_as_the_generator(
    live_db, generator_db, demo_data, vault, tmp_path
):
    keys, blocklist = vault
    env = write_exports(demo_data.tables, tmp_path)
    with (
        FakeShopify(demo_data.tables, token=TOKEN, restore_rate=100_000) as fs,
        FakeKlaviyo(demo_data.tables, api_key=API_KEY) as fk,
    ):
        cfg = load_connector_settings(
            {
                **env,
                "CDP_SOURCES": "live",
                "SHOPIFY_STORE_DOMAIN": fs.url,
                "SHOPIFY_ACCESS_TOKEN": TOKEN,
                "KLAVIYO_BASE_URL": fk.url,
                "KLAVIYO_API_KEY": API_KEY,
            }
        )
        runs = {s: run_live_source(s, live_db, keys, blocklist, cfg=cfg) for s in SOURCES}
    for source, run in runs.items():
        assert sum(r.loaded for r in run.results) > 0, source
        assert sum(r.rejected for r in run.results) == 0, source

    for url, target in ((live_db, "live"), (generator_db, "generator")):
        proc = run_dbt(["build", "--target-path", str(tmp_path / target)], url, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:]

    for mart in MARTS:
        live, generated = mart_rows(live_db, mart), mart_rows(generator_db, mart)
        assert sum(generated.values()) > 0, mart
        assert live == generated, (
            f"marts.{mart}: {sum((live - generated).values())} rows only after the live load, "
            f"{sum((generated - live).values())} only after the generator's"
        )
