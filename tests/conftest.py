"""Shared fixtures: a real PostgreSQL for every database test, never a mock.

The server is the one CDP_DATABASE_URL names (CI points it at the machine's PostgreSQL 15
service) or else an embedded PostgreSQL 18 started for this test session under a temporary
CDP_HOME and stopped at the end. Each test module that needs a warehouse gets its own fresh
database on that server, dropped afterwards. The user's own ./.cdp is never touched."""

from __future__ import annotations

import base64
import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

# Isolate the whole test session before anything reads settings.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="cdp-test-"))
_EXTERNAL_URL = os.environ.get("CDP_DATABASE_URL") or None
os.environ["CDP_HOME"] = str(_SESSION_HOME)
os.environ["DAGSTER_HOME"] = str(_SESSION_HOME / "dagster")
os.environ["CDP_PII_KEY"] = base64.b64encode(b"cdp-lite-test-key-32-bytes-long!").decode()
os.environ.pop("CDP_DATABASE_URL", None)  # set per database below

TEST_SEED = 7
TEST_AS_OF = "2026-11-20"


def pytest_collection_modifyitems(items):
    # tests that use a database fixture are the "db" tests CI reruns on PostgreSQL 15
    for item in items:
        if {"server_url", "warehouse_url", "fresh_db", "demo_warehouse"} & set(item.fixturenames):
            item.add_marker(pytest.mark.db)


def pytest_configure(config):
    config.addinivalue_line("markers", "db: talks to a real PostgreSQL server")


@pytest.fixture(scope="session")
def server_url():
    """A URL to the test server's `postgres` database."""
    from orchestration.runtime import embedded

    if _EXTERNAL_URL:
        from orchestration.runtime.db import with_database

        yield with_database(_EXTERNAL_URL, "postgres")
        return
    status = embedded.start(_SESSION_HOME / "pg")
    try:
        yield status.url("postgres")
    finally:
        embedded.stop(_SESSION_HOME / "pg")


def _create_db(server_url: str, prefix: str) -> str:
    import psycopg

    from orchestration.runtime.db import with_database

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return with_database(server_url, name)


def _drop_db(server_url: str, url: str) -> None:
    import psycopg

    name = url.split("?")[0].rsplit("/", 1)[-1]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def pipeline_environment(server_url: str, home: Path, prefix: str):
    """A fresh warehouse database, with CDP_DATABASE_URL, CDP_HOME and DAGSTER_HOME pointing this
    process at it and at ``home`` (for tests that run the pipeline in-process); yields the URL,
    then restores the environment and drops the database."""
    from orchestration.runtime.settings import settings

    url = _create_db(server_url, prefix)
    saved = {k: os.environ.get(k) for k in ("CDP_DATABASE_URL", "CDP_HOME", "DAGSTER_HOME")}
    os.environ.update(
        {"CDP_DATABASE_URL": url, "CDP_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    )
    settings.cache_clear()
    try:
        yield url
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        settings.cache_clear()
        _drop_db(server_url, url)


@pytest.fixture
def fresh_db(server_url, monkeypatch):
    """An empty warehouse database for one test; CDP_DATABASE_URL points at it."""
    from orchestration.runtime.settings import settings

    url = _create_db(server_url, "cdp_test")
    monkeypatch.setenv("CDP_DATABASE_URL", url)
    settings.cache_clear()
    yield url
    settings.cache_clear()
    _drop_db(server_url, url)


@pytest.fixture
def warehouse_url(fresh_db):
    """A fresh warehouse with CDP Lite's schemas and tables created."""
    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse

    with db.connect(fresh_db) as conn:
        ensure_warehouse(conn)
    return fresh_db


@pytest.fixture(scope="session")
def demo_warehouse(server_url):
    """A warehouse with a small demo landed (scale 0.1, fixed seed and as-of), shared by the
    tests that only read it. Yields (url, summary)."""
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import load_keys
    from orchestration.runtime.settings import load_settings
    from orchestration.sources.demo_landing import land_demo

    url = _create_db(server_url, "cdp_test_demo")
    cfg = load_settings()
    summary = land_demo(
        url,
        seed=TEST_SEED,
        scale=0.1,
        as_of=__import__("datetime").date.fromisoformat(TEST_AS_OF),
        keys=load_keys(cfg.pii_key, cfg.keys_dir),
        blocklist=load_blocklist(),
    )
    yield url, summary
    _drop_db(server_url, url)
