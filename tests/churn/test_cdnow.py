"""Churn on real data no one here wrote: the CDNOW sample (2,357 customers' CD purchases,
1997-98; the 1/10 sample of the master file that ships in the ``lifetimes`` wheel) landed as
Shopify orders, built, trained at the standard cutoffs and scored. Whatever the model's quality,
the champion is the best candidate on the holdout and every eligible customer gets a score and a
profile. benchmarks/bench_churn_cdnow.py runs the same on the full master file.

data/cdnow_sample.txt.gz is lifetimes' ``CDNOW_sample.txt`` (MIT-licensed package; the CDNOW
data set is the one Fader & Hardie distribute for research) gzipped, unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.runtime import db

pytestmark = pytest.mark.db

SAMPLE = Path(__file__).parent / "data" / "cdnow_sample.txt.gz"
CANDIDATES = {"model", "recency_baseline", "rfm_baseline", "bgnbd_baseline"}


def test_cdnow_lands_trains_picks_the_best_candidate_and_scores_everyone(warehouse_url, tmp_path):
    from benchmarks.bench_churn_cdnow import land
    from orchestration.churn import run as churn_run
    from orchestration.churn.config import load_config
    from orchestration.warehouse.project import run_dbt

    url = warehouse_url
    landed = land(url, SAMPLE)
    assert landed["customers"] == 2357 and landed["loaded"] == landed["purchases"] == 6919
    assert landed["rejected"] == 0
    cfg = load_config({})
    trained = churn_run.train_model(url, cfg, tmp_path)
    t, v = trained.trained, trained.verdict
    assert t.cutoffs.scoring.isoformat() == "1998-07-01"
    assert t.cutoffs.holdout.isoformat() == "1998-04-02"
    assert set(t.metrics) == CANDIDATES
    best = max(m["roc_auc"] for m in t.metrics.values())
    assert t.metrics[t.champion]["roc_auc"] == best == v.champion_roc_auc
    assert v.champion_roc_auc >= v.best_baseline_roc_auc
    # real purchase histories carry signal: every candidate but plain recency well above chance
    assert min(t.metrics[c]["roc_auc"] for c in CANDIDATES - {"recency_baseline"}) > 0.65
    scored = churn_run.score(url, cfg)
    assert scored.champion == t.champion
    assert scored.scores["churn_probability"].between(0, 1).all()
    run_dbt(["run", "--select", "+customer_profiles"], url)
    with db.connect(url) as conn:
        eligible, scores, profiles = conn.execute(
            """select
                 (select count(*) from marts.churn_features
                  where is_subscriber or (is_buyer and days_since_last_order <= 180)),
                 (select count(*) from ml.churn_scores),
                 (select count(churn_risk_score) from marts.customer_profiles)"""
        ).fetchone()
    assert eligible == scores == profiles == len(scored.scores) > 300
