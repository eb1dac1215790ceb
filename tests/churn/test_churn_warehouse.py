"""Churn end to end on a built demo warehouse: no leakage across the cutoff, the Dagster assets
and their gates, the brief's personas in the right bands, and alerts."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import httpx
import pandas as pd
import pytest

from orchestration.churn import alerts, store
from orchestration.churn import defs as churn_defs
from orchestration.churn.config import churn_config
from orchestration.churn.snapshots import FeatureSql, normalize_features
from orchestration.resources import WarehouseResource
from orchestration.runtime import db

pytestmark = pytest.mark.db

CHURN_ASSETS = [
    churn_defs.churn_model,
    churn_defs.holdout_quality_gate,
    churn_defs.churn_scores,
    churn_defs.score_drift,
    churn_defs.every_eligible_customer_scored,
]


def _features(conn, sql: str) -> pd.DataFrame:
    cur = conn.execute(sql)
    frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    return normalize_features(frame).sort_values("customer_id").reset_index(drop=True)


def test_changing_data_after_the_cutoff_does_not_change_features(churn_warehouse):
    url = churn_warehouse
    with db.connect(url) as conn:
        scoring = conn.execute("select max(cutoff_date) from marts.churn_features").fetchone()[0]
    cutoff = scoring - timedelta(days=120)
    sql = FeatureSql(url)(cutoff)
    with db.connect(url) as conn:
        before = _features(conn, sql)
        c = {"c": cutoff}
        # the future disappears ...
        assert (
            conn.execute(
                "delete from intermediate.int_orders_rolled_up where ordered_at >= %(c)s", c
            ).rowcount
            > 0
        )
        conn.execute(
            "delete from intermediate.int_web_sessions_rolled_up where session_started_at >= %(c)s",
            c,
        )
        conn.execute("delete from raw_klaviyo.events where datetime >= %(c)s", c)
        conn.execute("delete from raw_subscriptions.events where created_at >= %(c)s", c)
        conn.execute("delete from raw_helpdesk.tickets where created_at >= %(c)s", c)
        # ... and what happened later to earlier records changes
        conn.execute(
            """update intermediate.int_orders_rolled_up
               set refunded_amount = refunded_amount + 50,
                   first_refunded_at = %(c)s::date + 5, is_cancelled = true,
                   cancelled_at = %(c)s::date + 3
               where ordered_at < %(c)s and ordered_at >= %(c)s::date - 60
                   and not is_cancelled
                   and (first_refunded_at is null or first_refunded_at >= %(c)s)""",
            c,
        )
        conn.execute(
            """update raw_helpdesk.tickets set satisfaction_score = 1
               where created_at < %(c)s and (closed_at >= %(c)s or closed_at is null)""",
            c,
        )
        after = _features(conn, sql)
        conn.rollback()
    pd.testing.assert_frame_equal(before, after)
    assert before["is_buyer"].sum() > 100


@pytest.fixture(scope="module")
def scored(churn_warehouse):
    resources = {"warehouse": WarehouseResource(database_url=churn_warehouse)}
    first = dg.materialize(CHURN_ASSETS, resources=resources)
    # the model is fresh (CDP_CHURN_RETRAIN_DAYS): retraining the same data is asked for
    second = dg.materialize(
        CHURN_ASSETS,
        resources=resources,
        run_config={"ops": {"churn_model": {"config": {"retrain": True}}}},
    )
    assert first.success and second.success
    return churn_warehouse, first, second


def test_a_fresh_model_is_reused_and_unchanged_scores_are_not_rewritten(scored):
    url, _, _ = scored
    resources = {"warehouse": WarehouseResource(database_url=url)}
    with db.connect(url) as conn:
        runs = conn.execute("select count(*) from ml.model_runs").fetchone()[0]
        before = conn.execute("select * from ml.churn_scores order by customer_id").fetchall()
    third = dg.materialize(CHURN_ASSETS, resources=resources)
    assert third.success
    meta = third.asset_materializations_for_node("churn_model")[0].metadata
    assert meta["retrained"].value is False
    with db.connect(url) as conn:
        assert conn.execute("select count(*) from ml.model_runs").fetchone()[0] == runs
        after = conn.execute("select * from ml.churn_scores order by customer_id").fetchall()
    assert after == before  # scored_at included: nothing changed, nothing rewritten
    # a week of data later the model is retrained
    from orchestration.churn import run as churn_run
    from orchestration.churn.config import load_config

    assert churn_run.current_model(url, load_config({"CDP_CHURN_RETRAIN_DAYS": "0"}))[0] is None
    with db.connect(url) as conn:
        conn.execute(
            "update ml.model_runs set cutoffs = jsonb_set(cutoffs, '{scoring}', "
            "to_jsonb((cutoffs ->> 'scoring')::date - 7))"
        )
        conn.commit()
    try:
        current, why = churn_run.current_model(url, load_config({}))
        assert current is None and "7 day(s)" in why
    finally:
        with db.connect(url) as conn:
            conn.execute(
                "update ml.model_runs set cutoffs = jsonb_set(cutoffs, '{scoring}', "
                "to_jsonb((cutoffs ->> 'scoring')::date + 7))"
            )
            conn.commit()


def _personas(conn) -> pd.DataFrame:
    cur = conn.execute(
        """select distinct i.customer_id, p.persona, s.risk_band, s.churn_risk_score
           from ml.churn_scores s
           join intermediate.int_identities_stitched i on i.customer_id = s.customer_id
           join demo_truth.identities t on t.source = i.source
               and t.identity_type = i.identity_type and t.source_id = i.source_id
           join demo_truth.persons p on p.person_id = t.person_id"""
    )
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def test_checks_pass_and_every_eligible_customer_is_scored(scored):
    url, first, second = scored
    checks = {e.check_name: e.passed for e in second.get_asset_check_evaluations()}
    assert checks == {
        "holdout_quality_gate": True,
        "score_drift": True,  # same data, same model: PSI 0
        "every_eligible_customer_scored": True,
    }
    with db.connect(url) as conn:
        eligible = conn.execute(
            "select count(*) from marts.churn_features where is_subscriber "
            "or (is_buyer and days_since_last_order <= 180)"
        ).fetchone()[0]
        assert conn.execute("select count(*) from ml.churn_scores").fetchone()[0] == eligible


def test_runs_are_recorded_and_reproducible(scored):
    url, first, second = scored
    with db.connect(url) as conn:
        runs = conn.execute(
            "select model_version, metrics, cutoffs, artifact_path from ml.model_runs "
            "order by trained_at"
        ).fetchall()
    assert len(runs) == 2
    (v1, m1, c1, path), (v2, m2, _, _) = runs
    assert v1 == v2 and m1 == m2
    baselines = {"recency_baseline", "rfm_baseline", "bgnbd_baseline"}
    assert set(m1) == {"model", *baselines}
    for scorer in m1.values():
        assert set(scorer) == {"roc_auc", "pr_auc", "brier", "top_decile_lift"}
    meta = json.loads((pd.io.common.Path(path) / "metadata.json").read_text())
    assert meta["cutoffs"] == c1 and meta["features"] and meta["data_hash"]
    assert meta["champion"] == "model"
    assert m1["model"]["roc_auc"] > max(m1[b]["roc_auc"] for b in baselines)
    assert m1["model"]["brier"] < min(m1[b]["brier"] for b in baselines)
    with db.connect(url) as conn:
        champion, warnings = conn.execute(
            "select champion, warnings from ml.model_runs order by trained_at desc limit 1"
        ).fetchone()
    assert champion == "model" and warnings == []


def test_at_risk_subscribers_score_high_and_vips_low(scored):
    url, _, _ = scored
    with db.connect(url) as conn:
        p = _personas(conn)
    at_risk = p[p["persona"] == "at_risk_subscriber"]
    vips = p[p["persona"] == "vip_subscriber"]
    assert len(at_risk) > 100 and len(vips) > 100
    assert at_risk["risk_band"].isin(["high", "critical"]).mean() >= 0.55
    assert at_risk["risk_band"].isin(["medium", "high", "critical"]).mean() >= 0.8
    assert (vips["risk_band"] == "low").mean() >= 0.95
    assert at_risk["churn_risk_score"].median() > 50 > vips["churn_risk_score"].max()


def test_scores_explain_themselves(scored):
    url, _, _ = scored
    with db.connect(url) as conn:
        rows = conn.execute(
            "select top_drivers, recommended_action, value_at_stake from ml.churn_scores "
            "where risk_band in ('high', 'critical')"
        ).fetchall()
    assert rows
    assert all(1 <= len(d) <= 3 for d, _, _ in rows)
    assert {a for _, a, _ in rows} <= {
        "vip_outreach", "skip_instead_of_cancel", "save_offer", "win_back_discount",
    }  # fmt: skip
    assert any("no order for" in t for d, _, _ in rows for t in d)


def test_a_champion_below_the_floor_warns_and_scores_anyway(churn_warehouse, monkeypatch):
    monkeypatch.setenv("CDP_CHURN_MIN_ROC_AUC", "0.9999")
    monkeypatch.setenv("CDP_CHURN_RETRAIN_DAYS", "0")
    churn_config.cache_clear()
    try:
        result = dg.materialize(
            CHURN_ASSETS,
            resources={"warehouse": WarehouseResource(database_url=churn_warehouse)},
            raise_on_error=False,
        )
    finally:
        churn_config.cache_clear()
    assert result.success
    gate = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "holdout_quality_gate"
    ]
    assert gate and not gate[0].passed and gate[0].severity == dg.AssetCheckSeverity.WARN
    assert "below CDP_CHURN_MIN_ROC_AUC" in gate[0].description
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert dg.AssetKey(["churn_scores"]) in materialized
    meta = result.asset_materializations_for_node("churn_model")[0].metadata
    assert meta["champion"].value == "model" and meta["warnings"].value
    from orchestration import status

    churn = status.collect(churn_warehouse).stage("churn")
    assert churn.state == "ok" and "warning: the champion's holdout ROC-AUC" in churn.detail


def test_alerts_once_per_entry_into_the_high_bands(scored):
    url, _, _ = scored
    posted = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with db.connect(url) as conn:
        store.ensure_tables(conn)
        conn.execute("truncate ml.churn_alert_state, ml.churn_alerts")
        conn.commit()
        first = alerts.raise_alerts(conn, min_value=100, webhook_url="http://hook", client=client)
        assert first.customers and first.delivery == "posted 200"
        assert len(posted) == 1 and posted[0]["customers"][0]["why"]
        assert all(c["value_at_stake"] > 100 for c in posted[0]["customers"])
        again = alerts.raise_alerts(conn, min_value=100, webhook_url="http://hook", client=client)
        assert again.customers == [] and len(posted) == 1
        # leaves the band, comes back: alerted again, alone
        cid = first.customers[0]["customer_id"]
        band = conn.execute(
            "select risk_band from ml.churn_scores where customer_id = %s", (cid,)
        ).fetchone()[0]
        conn.execute("update ml.churn_scores set risk_band = 'low' where customer_id = %s", (cid,))
        assert alerts.raise_alerts(conn, min_value=100, webhook_url=None).customers == []
        conn.execute(
            "update ml.churn_scores set risk_band = %s where customer_id = %s", (band, cid)
        )
        back = alerts.raise_alerts(conn, min_value=100, webhook_url=None)
        assert [c["customer_id"] for c in back.customers] == [cid]
        assert back.delivery == "logged (no webhook URL)"
        recorded = conn.execute(
            "select count(*) from ml.churn_alerts where customer_id = %s", (cid,)
        ).fetchone()[0]
        assert recorded == 2


# These change which model scores: they run last in this module.


def _scoring_cutoff(url):
    with db.connect(url) as conn:
        return conn.execute("select max(cutoff_date) from marts.churn_features").fetchone()[0]


def _build_features_at(url, cutoff) -> None:
    from orchestration.warehouse.project import run_dbt

    proc = run_dbt(
        ["run", "--select", "churn_features", "--vars", f'{{"churn_cutoff_date": "{cutoff}"}}'],
        url,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_scoring_at_an_older_cutoff_ignores_newer_models(scored, tmp_path):
    from orchestration.churn import run as churn_run
    from orchestration.churn.config import load_config
    from orchestration.errors import CdpError

    url, _, _ = scored
    cfg = load_config({})
    latest = _scoring_cutoff(url)
    older = latest - timedelta(days=30)
    try:
        # a backtest at an older cutoff: every model so far was trained on data up to `latest`
        _build_features_at(url, older)
        with pytest.raises(CdpError, match=f"no churn model trained on data before {older}"):
            churn_run.score(url, cfg)
        old = churn_run.train_model(url, cfg, tmp_path)
        assert old.trained.cutoffs.scoring == older
        # the models trained on data up to `latest` are the newest runs (as when a backtest
        # follows the nightly training) ...
        with db.connect(url) as conn:
            newer = conn.execute(
                """update ml.model_runs set trained_at = now()
                   where (cutoffs ->> 'scoring')::date = %s returning model_version""",
                (latest,),
            ).fetchall()
            conn.commit()
        assert newer and old.version not in {v for (v,) in newer}
        # ... and scoring at the older cutoff still uses the model trained before it
        at_older = churn_run.score(url, cfg)
        assert at_older.version == old.version and at_older.model_cutoff == older
    finally:
        _build_features_at(url, latest)
    at_latest = churn_run.score(url, cfg)
    assert at_latest.version in {v for (v,) in newer} and at_latest.model_cutoff == latest


def test_a_useless_model_loses_and_profiles_still_get_scores(scored, tmp_path):
    from orchestration.churn import run as churn_run
    from orchestration.churn.config import load_config
    from orchestration.warehouse.project import run_dbt
    from tests.churn.test_model import useless_builder

    url, _, _ = scored
    cfg = load_config({})
    trained = churn_run.train_model(url, cfg, tmp_path, builder=useless_builder)
    v = trained.verdict
    assert not v.model_won and v.champion in {"recency_baseline", "rfm_baseline", "bgnbd_baseline"}
    assert "does not beat" in v.warnings[0]
    summary = churn_run.score(url, cfg)
    assert summary.champion == v.champion and summary.version == trained.version
    proc = run_dbt(["run", "--select", "stg_ml__churn_scores", "customer_profiles"], url)
    assert proc.returncode == 0
    with db.connect(url) as conn:
        eligible, scored_rows, profiles, versions = conn.execute(
            """select
                 (select count(*) from marts.churn_features
                  where is_subscriber or (is_buyer and days_since_last_order <= 180)),
                 (select count(*) from ml.churn_scores),
                 (select count(churn_risk_score) from marts.customer_profiles),
                 (select array_agg(distinct model_version) from ml.churn_scores)"""
        ).fetchone()
        warnings = conn.execute(
            "select warnings from ml.model_runs where run_id = %s", (trained.run_id,)
        ).fetchone()[0]
    assert scored_rows == eligible == profiles > 100
    assert versions == [trained.version]
    assert warnings == v.warnings


def test_the_demo_is_a_subscription_shop_and_keeps_its_actions(scored):
    from orchestration.warehouse.shop import shop_profile

    url, first, _ = scored
    with db.connect(url) as conn:
        shop = shop_profile(conn)
        actions = dict(
            conn.execute(
                "select recommended_action, count(*) from ml.churn_scores group by 1"
            ).fetchall()
        )
    print(f"demo: {shop.reason}; actions {actions}")
    assert shop.kind == "subscription" and shop.subscription_records > 0
    meta = first.asset_materializations_for_node("churn_scores")[0].metadata
    assert meta["shop_kind"].value == "subscription"
    # subscribers are saved, not discounted; the one_off shop's actions never appear
    assert actions.get("save_offer", 0) + actions.get("skip_instead_of_cancel", 0) > 0
    assert set(actions) <= {
        "vip_outreach", "skip_instead_of_cancel", "save_offer", "win_back_discount", "no_action",
    }  # fmt: skip
    assert max(actions.values()) < 0.8 * sum(actions.values())
