"""Day two and after: the whole pipeline run again unchanged, then `cdp demo --next-day` three
times, the way a nightly schedule runs it — every run green, and each day changing exactly what
the new day brought. Ends with the incremental warehouse compared, row for row, with a full
refresh of the same data.

The oracles are independent of the warehouse: the generator's own output for each day (what
must land), the segment views before and after (what entered and exited), the identity history
(the only licence for a customer_id to change)."""

from __future__ import annotations

import csv
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from orchestration.runtime import db
from orchestration.sources.schemas import TABLES

pytestmark = pytest.mark.e2e

SEED, SCALE, AS_OF = 5, 0.15, "2026-11-20"
NEXT_DAYS = 3
# before the second next day, one run fails halfway through dbt (its session killed while it
# builds the timeline, after staging and identity have committed); the next run must recover
KILLED_RUN = 3
KILLED_MODEL = "int_timeline_events"
# before the last next day, a refund and a cancellation of orders placed months ago land
LATE_RUN = 2 + NEXT_DAYS - 1
RAW = [t.qualified for t in TABLES]
INCREMENTAL = (
    "staging.stg_klaviyo__events",
    "staging.stg_ga4__events",
    "intermediate.int_web_sessions_rolled_up",
    "intermediate.int_timeline_events",
)
SEGMENTS = (
    "vip_customers",
    "at_risk_subscribers",
    "prime_for_subscription",
    "churned_high_value",
    "high_value_at_risk",
)


def q(url, sql, params=None):
    with db.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def mart_names(url) -> list[str]:
    return [
        r[0]
        for r in q(
            url,
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' order by 1",
        )
    ]


def mart_digests(url) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every mart's rows."""
    out = {}
    for name in mart_names(url):
        out[name] = tuple(
            q(
                url,
                f"select count(*), coalesce(md5(string_agg(md5(t::text), '' "
                f"order by md5(t::text))), '') from marts.{name} t",
            )[0]
        )
    return out


@dataclass
class Snapshot:
    run_id: str
    success: bool
    notes: list[str]
    raw: dict[str, int]
    marts: dict[str, tuple[int, str]]
    assignment: dict[str, str]  # node_key -> customer_id
    members: dict[str, set[str]]
    latest_export: dict[str, str | None]
    failed_checks: list[str] = field(default_factory=list)


def snapshot(url, home: Path, result) -> Snapshot:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        evaluations = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(result.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
    failed_checks = [
        f"{ev.asset_key.to_user_string()}:{ev.check_name}" for ev in evaluations if not ev.passed
    ]
    latest = {}
    for slug in SEGMENTS:
        f = home / "exports" / slug / "LATEST"
        latest[slug] = f.read_text().strip() if f.exists() else None
    return Snapshot(
        run_id=result.run_id,
        success=result.success,
        notes=result.notes,
        raw={t: q(url, f"select count(*) from {t}")[0][0] for t in RAW},
        marts=mart_digests(url),
        assignment=dict(q(url, "select node_key, customer_id from marts.customer_identities")),
        members={
            s: {r[0] for r in q(url, f"select customer_id from segments.{s}")} for s in SEGMENTS
        },
        latest_export=latest,
        failed_checks=failed_checks,
    )


def day_rows(day: date) -> dict[str, int]:
    """What the generator itself says the day after ``day`` brings, table by table."""
    from orchestration.sources.demo import DemoConfig, generate_demo

    data = generate_demo(
        DemoConfig(
            seed=SEED,
            scale=SCALE,
            as_of=date.fromisoformat(AS_OF),
            since=day,
            through=day + timedelta(days=1),
        )
    )
    return {name: len(frame) for name, frame in data.tables.items()}


@dataclass
class Late:
    refund_id: int
    refunded_order: int
    cancelled_order: int
    rows: dict[str, int]


def land_late_changes(url: str) -> Late:
    """Land, through the loader, a refund of one old order and a new version of another that
    cancels it — what Shopify sends weeks after the order."""
    import pandas as pd

    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import load_keys
    from orchestration.runtime.settings import settings
    from orchestration.sources.landing import load_frames
    from orchestration.sources.schemas import BY_NAME

    orders = BY_NAME["raw_shopify.orders"]
    with db.connect(url) as conn:
        (day,) = conn.execute("select loaded_through from ops.demo_state").fetchone()
        old = [
            r[0]
            for r in conn.execute(
                "select order_id from marts.orders where ordered_at < %s::date - 60 "
                "and not is_cancelled and refunded_amount = 0 and customer_id is not null "
                "order by order_id limit 2",
                (AS_OF,),
            )
        ]
        names = [c for c, _ in orders.columns]
        version = conn.execute(
            f"select {', '.join(names)} from raw_shopify.orders where id = %s "
            "order by updated_at desc, _loaded_at desc limit 1",
            (old[1],),
        ).fetchone()
    at = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1, hours=12)
    refund_id = 9_000_000_000_001
    refund = pd.DataFrame(
        [{"id": refund_id, "order_id": old[0], "amount": "5.00", "note": "late goodwill refund",
          "restock": False, "created_at": at, "processed_at": at}]
    )  # fmt: skip
    cancel = pd.DataFrame([dict(zip(names, version, strict=True))])
    cancel[["cancelled_at", "updated_at"]] = at
    cancel["financial_status"] = "voided"
    cancel["email"], cancel["phone"] = None, None
    cfg = settings()
    results = load_frames(
        url,
        [(BY_NAME["raw_shopify.refunds"], refund), (orders, cancel)],
        keys=load_keys(cfg.pii_key, cfg.keys_dir),
        blocklist=load_blocklist(),
    )
    assert all(r.loaded == 1 for r in results), results
    return Late(refund_id, old[0], old[1], {"raw_shopify.refunds": 1, "raw_shopify.orders": 1})


@contextmanager
def killing_backend(url: str, model: str):
    """Terminate the database session of the dbt build the moment it works on ``model`` — a
    build failing halfway (a lost connection, a restarted server), some models done, some not."""
    stop = threading.Event()
    killed = []

    def watch():
        with db.connect(url, autocommit=True) as conn:
            while not stop.is_set() and not killed:
                # dbt's own session for that model (its statements carry the node id in a
                # comment), running or between two statements of the model's transaction; not
                # another query that merely names the model (status bookkeeping afterwards)
                pids = conn.execute(
                    "select pid from pg_stat_activity where datname = current_database() "
                    "and pid <> pg_backend_pid() "
                    "and state in ('active', 'idle in transaction') and query like %s",
                    (f'%"node_id": "model.cdp_lite.{model}"%',),
                ).fetchall()
                for (pid,) in pids:
                    conn.execute("select pg_terminate_backend(%s)", (pid,))
                    killed.append(pid)
                stop.wait(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()
    assert killed, f"no dbt session ever worked on {model}"


@pytest.fixture(scope="module")
def days(server_url, tmp_path_factory):
    """Full run, unchanged rerun, then NEXT_DAYS next days; a snapshot after each."""
    from orchestration.pipeline import run_pipeline
    from tests.conftest import pipeline_environment

    home = tmp_path_factory.mktemp("days-home")
    late = None
    with pipeline_environment(server_url, home, "cdp_test_days") as url:
        snaps = []
        for i, next_day in enumerate((False, False, *([True] * NEXT_DAYS))):
            if i == KILLED_RUN:
                with killing_backend(url, KILLED_MODEL):
                    result = run_pipeline(seed=SEED, scale=SCALE, as_of=AS_OF, next_day=True)
                snaps.append(snapshot(url, home, result))
                assert not result.success, "the run whose dbt connection was killed succeeded"
            if i == LATE_RUN:
                late = land_late_changes(url)
            result = run_pipeline(seed=SEED, scale=SCALE, as_of=AS_OF, next_day=next_day)
            snaps.append(snapshot(url, home, result))
            assert result.success, (len(snaps), result.notes)
        yield url, home, snaps, late


def test_every_run_is_green_but_the_killed_one_which_says_why(days):
    _, _, snaps, _ = days
    for i, s in enumerate(snaps):
        if i == KILLED_RUN:
            assert not s.success
            assert any("cdp_dbt_models" in n for n in s.notes), s.notes
            continue
        assert s.success, (i, s.notes)
        assert s.failed_checks == [], (i, s.failed_checks)


def test_an_unchanged_rerun_adds_no_row_and_changes_no_mart_row(days):
    _, _, (first, rerun, *_), _ = days
    assert rerun.raw == first.raw
    changed = {m for m in first.marts if first.marts[m] != rerun.marts.get(m)}
    assert changed == set(), changed
    assert rerun.assignment == first.assignment
    assert rerun.members == first.members
    assert rerun.latest_export == first.latest_export  # nothing changed: nothing exported


def test_each_next_day_lands_exactly_that_days_rows(days):
    _, _, snaps, late = days
    as_of = date.fromisoformat(AS_OF)
    for n, (before, after) in enumerate(zip(snaps[1:], snaps[2:], strict=False)):
        expected = day_rows(as_of + timedelta(days=n))
        if after is snaps[-1]:  # the late refund and cancellation landed that day too
            expected = {t: expected.get(t, 0) + late.rows.get(t, 0) for t in RAW}
        landed = {t: after.raw[t] - before.raw[t] for t in RAW}
        assert landed == {t: expected.get(t, 0) for t in RAW}, n
        assert sum(landed.values()) > 0


def test_customer_ids_change_only_with_a_recorded_merge(days):
    url, _, snaps, _ = days
    changes = q(
        url,
        "select node_key, previous_customer_id, customer_id from "
        "intermediate.int_identity_changes where previous_customer_id is not null",
    )
    recorded = {(k, old, new) for k, old, new in changes}
    for before, after in zip(snaps[1:], snaps[2:], strict=False):
        moved = {
            (k, old, after.assignment[k])
            for k, old in before.assignment.items()
            if k in after.assignment and after.assignment[k] != old
        }
        assert moved <= recorded, moved - recorded
        assert set(before.assignment) <= set(after.assignment)  # no record is ever lost


def _ids(path: Path) -> set[str]:
    with path.open(newline="") as f:
        return {row["customer_id"] for row in csv.DictReader(f)}


def test_membership_changes_and_exports_carry_only_real_entries_and_exits(days):
    url, home, snaps, _ = days
    seen_changes = 0
    for before, after in zip(snaps[1:], snaps[2:], strict=False):
        for slug in SEGMENTS:
            entered = after.members[slug] - before.members[slug]
            exited = before.members[slug] - after.members[slug]
            rows = q(
                url,
                "select customer_id, change from segments.membership_changes "
                "where segment = %s and run_id = %s",
                (slug, after.run_id),
            )
            assert {c for c, ch in rows if ch == "entered"} == entered, slug
            assert {c for c, ch in rows if ch == "exited"} == exited, slug
            assert len(rows) == len(entered) + len(exited)  # each customer recorded once
            seen_changes += len(rows)
            if entered or exited:
                export = after.latest_export[slug]
                assert export != before.latest_export[slug], f"{slug}: changes not exported"
                folder = home / "exports" / slug / export
                assert _ids(folder / "entered.csv") == entered, slug
                assert _ids(folder / "exited.csv") == exited, slug
                assert _ids(folder / "members.csv") == after.members[slug], slug
            else:
                assert after.latest_export[slug] == before.latest_export[slug], slug
    assert seen_changes > 0  # three days of activity move someone


def test_timeline_shows_every_segment_change_once(days):
    url, _, _, _ = days
    missing, dupes = q(
        url,
        """
        select
          (select count(*) from segments.membership_changes c
           where not exists (
             select 1 from marts.customer_timeline t
             where t.source = 'segments' and t.customer_id = c.customer_id
               and t.occurred_at = c.changed_at and t.event_type = 'segment_' || c.change)),
          (select count(*) - count(distinct timeline_event_id) from marts.customer_timeline)""",
    )[0]
    assert (missing, dupes) == (0, 0)


def test_late_refunds_and_cancellations_reach_orders_customers_and_timeline(days):
    """A refund and a cancellation landed months after their orders."""
    url, _, _, late = days
    refunded, refund_on_timeline = q(
        url,
        "select o.refunded_amount, exists (select 1 from marts.customer_timeline t "
        "  where t.customer_id = o.customer_id and t.event_type = 'order_refunded' "
        "  and t.timeline_event_id = %s) "
        "from marts.orders o where o.order_id = %s",
        (f"shopify:refund:{late.refund_id}", late.refunded_order),
    )[0]
    assert refunded == 5 and refund_on_timeline
    cancelled, events = q(
        url,
        "select o.is_cancelled, array(select t.event_type from marts.customer_timeline t "
        "  where t.timeline_event_id = 'shopify:order:' || o.order_id) "
        "from marts.orders o where o.order_id = %s",
        (late.cancelled_order,),
    )[0]
    assert cancelled and events == ["order_cancelled"]  # replaced, not added beside
    # every customer's lifetime value is net of every refund and cancellation, late ones included
    off = q(
        url,
        """
        select count(*) from marts.customers c
        left join (select customer_id, sum(total_price - refunded_amount) as net
                   from marts.orders where not is_cancelled group by customer_id) o
          using (customer_id)
        where abs(c.lifetime_value - coalesce(o.net, 0)) > 0.01""",
    )[0][0]
    assert off == 0


def test_incremental_warehouse_equals_a_full_refresh(days):
    """Every mart after the incremental days, row for row, against `dbt build --full-refresh`
    of the same raw data (except-all both ways)."""
    from orchestration.warehouse.project import run_dbt

    url, _, _, _ = days
    # the nightly builds were incremental: the last one rewrote a small part of each model
    for model in INCREMENTAL:
        rewritten, total = q(
            url,
            f"select count(*) filter (where _built_at = (select max(_built_at) from {model})), "
            f"count(*) from {model}",
        )[0]
        assert 0 < rewritten < total * 0.2, (model, rewritten, total)
    names = mart_names(url)
    with db.connect(url) as conn:
        conn.execute("create schema incremental_copy")
        for name in names:
            conn.execute(f"create table incremental_copy.{name} as select * from marts.{name}")
        conn.commit()
    run_dbt(["build", "--full-refresh", "--indirect-selection", "buildable"], url)
    diffs = {}
    for name in names:
        extra, missing = q(
            url,
            f"select (select count(*) from (select * from incremental_copy.{name} "
            f"except all select * from marts.{name}) a), "
            f"(select count(*) from (select * from marts.{name} "
            f"except all select * from incremental_copy.{name}) b)",
        )[0]
        if extra or missing:
            diffs[name] = (extra, missing)
    assert diffs == {}
