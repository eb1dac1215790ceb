"""Churn test fixtures: synthetic snapshots for the pure logic, and a demo warehouse (landed +
dbt built) for the end-to-end tests, in a database of its own on the session server."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from orchestration.churn.model import HISTORY_FEATURES, RAW_FEATURES
from orchestration.runtime.db import with_database

SCALE = 0.3
SEED = 7
AS_OF = date(2026, 11, 20)


def synthetic_snapshots(n: int = 3000, cutoffs: int = 4, seed: int = 0) -> pd.DataFrame:
    """Labelled snapshots whose churn depends on recency, skips and engagement decline."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(cutoffs):
        f = pd.DataFrame(
            {c: rng.poisson(3, n).astype(float) for c in (*RAW_FEATURES, *HISTORY_FEATURES)}
        )
        f["days_since_last_order"] = rng.integers(1, 400, n).astype(float)
        f["orders_count"] = rng.integers(1, 12, n).astype(float)
        f["avg_days_between_orders"] = np.where(
            f["orders_count"] > 1, rng.uniform(25, 90, n), np.nan
        )
        f["subscription_interval_days"] = np.where(rng.random(n) < 0.4, 30.0, np.nan)
        f["monetary_value"] = rng.gamma(2, 150, n)
        f["monetary_365d"] = f["monetary_value"] * rng.uniform(0.2, 1, n)
        f["average_order_value"] = f["monetary_value"] / f["orders_count"]
        f["csat_avg"] = rng.uniform(1, 5, n)
        f["has_unsubscribed"] = rng.random(n) < 0.1
        f["subscription_status"] = np.where(
            f["subscription_interval_days"].notna(), "active", "never"
        )
        interval = f["subscription_interval_days"].fillna(f["avg_days_between_orders"]).fillna(60)
        logit = (
            1.5 * np.log(f["days_since_last_order"] / interval)
            + 0.6 * f["subscription_skips_90d"]
            - 0.25 * (f["email_opens_90d"] - f["email_opens_prior_90d"])
            - 1.0
        )
        f["churned"] = rng.random(n) < 1 / (1 + np.exp(-logit))
        f["customer_id"] = [f"c{i}" for i in range(n)]
        f["cutoff_date"] = date(2026, 1, 1) + timedelta(days=30 * k)
        f["is_buyer"] = True
        f["is_subscriber"] = f["subscription_status"] == "active"
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="session")
def churn_warehouse(server_url):
    """A scale-0.3 demo landed and `dbt build` run on it; yields the database URL."""
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import load_keys
    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse
    from orchestration.runtime.settings import load_settings
    from orchestration.sources.demo_landing import land_demo
    from orchestration.warehouse.project import run_dbt

    name = f"cdp_test_churn_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    try:
        cfg = load_settings()
        with db.connect(url) as conn:
            ensure_warehouse(conn)
        land_demo(
            url,
            seed=SEED,
            scale=SCALE,
            as_of=AS_OF,
            keys=load_keys(cfg.pii_key, cfg.keys_dir),
            blocklist=load_blocklist(),
        )
        proc = run_dbt(["build", "--exclude", "customer_profiles+"], url, check=False)
        assert proc.returncode == 0, proc.stdout[-5000:]
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
