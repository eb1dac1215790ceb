"""The cdp command line, run as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def cdp(*args, env_extra=None, timeout=120):
    import os

    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [str(BIN / "cdp"), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_db_url_prints_only_the_url_and_psql_can_use_it(fresh_db):
    proc = cdp("db", "url", env_extra={"CDP_DATABASE_URL": fresh_db})
    assert proc.returncode == 0
    assert proc.stdout.strip() == fresh_db
    query = cdp("db", "psql", "-tAc", "select 40 + 2", env_extra={"CDP_DATABASE_URL": fresh_db})
    assert query.stdout.strip() == "42", query.stderr


def test_wrong_database_url_is_a_clear_error_without_traceback():
    proc = cdp("db", "status", env_extra={"CDP_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert proc.returncode == 1
    assert "127.0.0.1:1/x" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_rejects_a_bad_date():
    proc = cdp("demo", "--as-of", "25/11/2026")
    assert proc.returncode == 1 and "YYYY-MM-DD" in proc.stderr
