"""Fixtures for the connector tests: the demo data set the fakes serve, and a warehouse with the
same data landed directly by the generator, to compare against."""

from __future__ import annotations

import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `import fakes`

SEED, SCALE, AS_OF = 7, 0.05, date(2026, 11, 20)


@pytest.fixture(scope="session")
def demo_data():
    from orchestration.sources.demo import DemoConfig, generate_demo

    return generate_demo(DemoConfig(seed=SEED, scale=SCALE, as_of=AS_OF))


@pytest.fixture(scope="session")
def next_day_data():
    from orchestration.sources.demo import DemoConfig, generate_demo

    cfg = DemoConfig(seed=SEED, scale=SCALE, as_of=AS_OF, since=AS_OF, through=AS_OF + timedelta(1))
    return generate_demo(cfg)


@pytest.fixture(scope="session")
def vault():
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import load_keys
    from orchestration.runtime.settings import load_settings

    cfg = load_settings()
    return load_keys(cfg.pii_key, cfg.keys_dir), load_blocklist()


def make_db(server_url: str) -> str:
    import psycopg

    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse

    name = f"cdp_conn_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = db.with_database(server_url, name)
    with db.connect(url) as conn:
        ensure_warehouse(conn)
    return url


def drop_db(server_url: str, url: str) -> None:
    import psycopg

    name = url.split("?")[0].rsplit("/", 1)[-1]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def generator_db(server_url, demo_data, vault):
    """The demo data set landed directly by the generator's path (load_frames)."""
    from orchestration.sources.landing import load_frames
    from orchestration.sources.schemas import BY_NAME

    url = make_db(server_url)
    keys, blocklist = vault
    load_frames(
        url, [(BY_NAME[n], f) for n, f in demo_data.tables.items()], keys=keys, blocklist=blocklist
    )
    yield url
    drop_db(server_url, url)


@pytest.fixture
def live_db(server_url):
    url = make_db(server_url)
    yield url
    drop_db(server_url, url)
