"""A shop with a few months of one-off orders and no subscriptions: three months of the CDNOW
sample (real purchases no one here wrote). Too little history for labelled training snapshots
must not stop the product: the churn step scores with BG/NBD fitted on the purchase histories,
says so in ml.model_runs, and profiles and the segments for a one_off shop are built, with the
subscription segments skipped and the actions those of a shop without subscriptions."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from orchestration.runtime import db

pytestmark = pytest.mark.db

SAMPLE = Path(__file__).parent / "data" / "cdnow_sample.txt.gz"


def test_three_months_of_one_off_orders_build_scores_profiles_and_segments(warehouse_url, tmp_path):
    from benchmarks.bench_churn_cdnow import land
    from orchestration.churn import run as churn_run
    from orchestration.churn.actions import ONE_OFF_ACTIONS
    from orchestration.churn.config import load_config
    from orchestration.segments.views import SEGMENTS_DIR, list_segments, refresh_all
    from orchestration.warehouse.project import run_dbt
    from orchestration.warehouse.shop import shop_profile

    url = warehouse_url
    short = tmp_path / "cdnow_q1.txt.gz"
    with gzip.open(SAMPLE, "rt") as src, gzip.open(short, "wt") as dst:
        dst.writelines(line for line in src if line.split()[2] < "19970401")
    landed = land(url, short)
    assert landed["rejected"] == 0 and landed["loaded"] > 1000
    cfg = load_config({})
    trained = churn_run.train_model(url, cfg, tmp_path)
    assert trained.trained.champion == "bgnbd_baseline"
    assert trained.trained.rows["train"] == 0 and trained.trained.rows["unlabelled"] > 1000
    first = trained.verdict.warnings[0]
    assert first.startswith("not enough history for churn training: training snapshots need")
    assert first.endswith("'scoring': '1997-04-01'})")
    scored = churn_run.score(url, cfg)
    s = scored.scores
    assert scored.shop_kind == "one_off"
    assert s["churn_probability"].between(0, 1).all() and s["churn_probability"].nunique() > 10
    actions = s["recommended_action"].value_counts(normalize=True)
    assert set(actions.index) <= set(ONE_OFF_ACTIONS)
    assert actions.max() < 0.8, actions.to_dict()  # not one action for everyone
    run_dbt(["run", "--select", "+customer_profiles"], url)
    with db.connect(url) as conn:
        assert shop_profile(conn).kind == "one_off"
        warnings, profiles, scored_profiles = conn.execute(
            """select (select warnings from ml.model_runs order by trained_at desc limit 1),
                      (select count(*) from marts.customer_profiles),
                      (select count(churn_risk_score) from marts.customer_profiles)"""
        ).fetchone()
        assert any("unvalidated" in w for w in warnings)
        assert scored_profiles == len(s) and profiles >= scored_profiles
        results, errors = refresh_all(conn, SEGMENTS_DIR)
        assert not errors
        built = {r.slug: r.members for r in results}
        listed = {r["slug"]: r for r in list_segments(conn, SEGMENTS_DIR) if r["slug"]}
    assert {"lapsing_repeat_buyers", "one_and_done", "top_spenders"} <= set(built)
    assert built["top_spenders"] > 0 and built["lapsing_repeat_buyers"] > 0
    assert "at_risk_subscribers" not in built and "vip_customers" not in built
    assert listed["at_risk_subscribers"]["status"] == "skipped"
    assert "needs a shop with subscriptions" in listed["at_risk_subscribers"]["note"]


def test_a_handful_of_buyers_is_refused_with_what_to_do(warehouse_url, tmp_path):
    """Below ten buyers not even BG/NBD can be fitted: the churn step says so and what to do,
    as the project's own error, not a bare ValueError from the fit."""
    from benchmarks.bench_churn_cdnow import land
    from orchestration.churn import run as churn_run
    from orchestration.churn.config import load_config
    from orchestration.errors import CdpError

    tiny = tmp_path / "cdnow_tiny.txt.gz"
    with gzip.open(SAMPLE, "rt") as src, gzip.open(tiny, "wt") as dst:
        dst.writelines(line for line in src if int(line.split()[0]) <= 60)
    land(warehouse_url, tiny)
    with pytest.raises(CdpError, match=r"too few customers to score churn at all .*cdp import"):
        churn_run.train_model(warehouse_url, load_config({}), tmp_path)
