"""A warehouse with a small demo landed and `dbt build` run on it, shared by the warehouse tests.

Uses the session server from tests/conftest.py (embedded PostgreSQL, or CDP_DATABASE_URL in CI)
and a database of its own, dropped at the end."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date

import psycopg
import pytest

from orchestration.runtime.db import with_database

SCALE = 0.2
SEED = 7
AS_OF = date(2026, 11, 20)


@dataclass
class BuiltWarehouse:
    url: str
    scale: float
    first_build: dict  # run_results.json of the first `dbt build`
    identities_after_first_build: dict[str, str]  # node_key -> customer_id


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def built_warehouse(server_url):
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import load_keys
    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse
    from orchestration.runtime.settings import load_settings
    from orchestration.sources.demo_landing import land_demo
    from orchestration.warehouse.project import DBT_PROJECT_DIR, run_dbt

    name = f"cdp_test_warehouse_{uuid.uuid4().hex[:8]}"
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
        proc = run_dbt(["build"], url, check=False)
        results = json.loads((DBT_PROJECT_DIR / "target" / "run_results.json").read_text())
        assert proc.returncode == 0, proc.stdout[-5000:]
        with db.connect(url) as conn:
            ids = dict(conn.execute("select node_key, customer_id from marts.customer_identities"))
        yield BuiltWarehouse(url, SCALE, results, ids)
    finally:
        _drop(server_url, name)
